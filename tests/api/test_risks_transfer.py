"""Export (CSV/JSON/XLSX, streamed), import (dry run, per-row errors, round trip) and bulk."""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import AsyncGenerator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from openpyxl import Workbook, load_workbook
from sqlalchemy import update

from openrisk.rbac.catalogue import ANALYST
from openrisk.risks import transfer
from openrisk.risks.enums import SortField, SortOrder
from openrisk.risks.models import Risk
from openrisk.risks.queries import RiskFilters
from openrisk.risks.schemas import ExportFormat
from tests.api.test_risks_helpers import RISKS, assert_problem, member, new_asset, new_risk
from tests.conftest import Account, register


async def _with_field(client: httpx.AsyncClient, admin: Account) -> None:
    response = await client.post(
        "/api/v1/custom-fields",
        json={"name": "bu", "label": "BU", "type": "choice", "options": ["Retail", "Corp"]},
        headers=admin.headers,
    )
    assert response.status_code == 201


async def test_export_formats(client: httpx.AsyncClient, admin: Account) -> None:
    await _with_field(client, admin)
    asset = await new_asset(client, admin)
    a = await new_risk(
        client,
        admin,
        title="=HYPERLINK(evil)",
        tags=["x", "y"],
        asset_ids=[asset["id"]],
        custom_fields={"bu": "Retail"},
    )
    b = await new_risk(client, admin, status="ACTIVE")

    response = await client.get(
        f"{RISKS}/export?format=csv&sort=created_at&order=asc", headers=admin.headers
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert [r["id"] for r in rows] == [a["id"], b["id"]]
    assert rows[0]["title"] == "'=HYPERLINK(evil)"  # formula neutralised
    assert rows[0]["tags"] == "x;y"
    assert rows[0]["asset_ids"] == asset["id"]
    assert rows[0]["cf_bu"] == "Retail"
    assert rows[0]["score"] == "9.0"

    as_json = await client.get(f"{RISKS}/export?format=json&status=ACTIVE", headers=admin.headers)
    assert as_json.headers["content-type"].startswith("application/json")
    assert [r["id"] for r in as_json.json()] == [b["id"]]

    xlsx = await client.get(f"{RISKS}/export?format=xlsx", headers=admin.headers)
    assert xlsx.status_code == 200
    sheet = load_workbook(io.BytesIO(xlsx.content), read_only=True).worksheets[0]
    table = list(sheet.iter_rows(values_only=True))
    assert table[0][:3] == ("id", "title", "description")
    assert "cf_bu" in table[0]
    assert len(table) == 3

    empty = await client.get(f"{RISKS}/export?format=json&status=CLOSED", headers=admin.headers)
    assert empty.json() == []
    header_only = await client.get(f"{RISKS}/export?status=CLOSED", headers=admin.headers)
    assert header_only.text.startswith("id,title")
    assert_problem(
        await client.get(f"{RISKS}/export?format=pdf", headers=admin.headers), 422, "format"
    )


def _import_file(count: int, *, prefix: str = "Risk") -> bytes:
    """A CSV of ``count`` new risks, every fifth title a would-be formula."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["title", "impact", "probability", "tags", "cf_bu"])
    for n in range(count):
        title = f"=SUM({n})" if n % 5 == 0 else f"{prefix} {n:05d}"
        writer.writerow([title, 1 + n % 5, 1 + n % 3, f"t{n % 7};bulk", ("Retail", "Corp")[n % 2]])
    return buffer.getvalue().encode()


async def test_export_of_more_rows_than_a_batch_in_every_format(
    client: httpx.AsyncClient, admin: Account
) -> None:
    """1,200 risks (more than two export batches) arrive whole, in order, in each format."""
    await _with_field(client, admin)
    imported = await client.post(
        f"{RISKS}/import",
        files={"file": ("many.csv", _import_file(1_200), "text/csv")},
        headers=admin.headers,
    )
    assert imported.status_code == 200, imported.text
    assert imported.json()["created"] == 1_200
    expected = sorted(imported.json()["ids"])
    query = "sort=title&order=asc&tag=bulk"

    as_csv = await client.get(f"{RISKS}/export?format=csv&{query}", headers=admin.headers)
    rows = list(csv.DictReader(io.StringIO(as_csv.text)))
    assert sorted(r["id"] for r in rows) == expected
    titles = [r["title"] for r in rows]
    assert titles == sorted(titles, key=lambda t: t.removeprefix("'"))
    assert sum(t.startswith("'=SUM(") for t in titles) == 240  # every formula neutralised
    assert {r["cf_bu"] for r in rows} == {"Retail", "Corp"}

    as_json = (
        await client.get(f"{RISKS}/export?format=json&{query}", headers=admin.headers)
    ).json()
    assert sorted(r["id"] for r in as_json) == expected
    assert [r["id"] for r in as_json] == [r["id"] for r in rows]
    assert all(r["tags"][-1] == "bulk" for r in as_json)

    xlsx = await client.get(f"{RISKS}/export?format=xlsx&{query}", headers=admin.headers)
    workbook = load_workbook(io.BytesIO(xlsx.content), read_only=True)
    table = list(workbook.worksheets[0].iter_rows(values_only=True))
    header = list(table[0])
    assert header[:2] == ["id", "title"] and "cf_bu" in header
    assert [row[0] for row in table[1:]] == [r["id"] for r in rows]
    assert all(isinstance(row[header.index("impact")], int) for row in table[1:])
    assert sum(str(row[1]).startswith("'=SUM(") for row in table[1:]) == 240


async def test_round_trip_csv(client: httpx.AsyncClient, admin: Account) -> None:
    await _with_field(client, admin)
    original = await new_risk(
        client, admin, tags=["a"], custom_fields={"bu": "Corp"}, title="-1 lag"
    )
    exported = (await client.get(f"{RISKS}/export?format=csv", headers=admin.headers)).content
    # re-importing the export changes nothing (same versions)
    same = await client.post(
        f"{RISKS}/import",
        files={"file": ("risks.csv", exported, "text/csv")},
        headers=admin.headers,
    )
    assert same.status_code == 200, same.text
    assert (same.json()["created"], same.json()["updated"], same.json()["failed"]) == (0, 1, 0)
    after = (await client.get(f"{RISKS}/{original['id']}", headers=admin.headers)).json()
    assert after["version"] == original["version"]
    assert after["title"] == "-1 lag"
    # into another tenant: ids are unknown there, so rows are created; owners must be members
    other = await register(client, tenant_name="Import target")
    await _with_field(client, other)
    refused = await client.post(
        f"{RISKS}/import",
        files={"file": ("risks.csv", exported, "text/csv")},
        headers=other.headers,
    )
    assert_problem(refused, 422)
    assert refused.json()["errors"] == [
        {"row": 2, "field": "owner_id", "message": "must be a member of this tenant"}
    ]
    rows = list(csv.DictReader(io.StringIO(exported.decode())))
    for row in rows:
        row["owner_id"] = ""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    created = await client.post(
        f"{RISKS}/import",
        files={"file": ("risks.csv", buffer.getvalue().encode(), "text/csv")},
        headers=other.headers,
    )
    assert created.status_code == 200, created.text
    assert created.json()["created"] == 1
    [copy] = (await client.get(RISKS, headers=other.headers)).json()["items"]
    assert copy["id"] != original["id"]
    assert (copy["title"], copy["tags"], copy["custom_fields"]) == ("-1 lag", ["a"], {"bu": "Corp"})
    assert copy["source"] == "IMPORT"


async def test_import_errors_and_dry_run(client: httpx.AsyncClient, admin: Account) -> None:
    content = (
        "title,impact,probability,status,tags,owner_id\n"
        "Good one,3,4,ACTIVE,a;b,\n"
        ",3,4,,,\n"
        "Bad impact,9,4,,,\n"
        "Bad status,1,1,OPEN,,\n"
        f"Bad owner,1,1,,,{uuid.uuid4()}\n"
    ).encode()
    dry = await client.post(
        f"{RISKS}/import?dry_run=true",
        files={"file": ("r.csv", content, "text/csv")},
        headers=admin.headers,
    )
    assert dry.status_code == 200
    body = dry.json()
    assert (body["dry_run"], body["committed"], body["total_rows"], body["failed"]) == (
        True,
        False,
        5,
        4,
    )
    assert {(e["row"], e["field"]) for e in body["errors"]} == {
        (3, "title"),
        (4, "impact"),
        (5, "status"),
        (6, "owner_id"),
    }
    real = await client.post(
        f"{RISKS}/import", files={"file": ("r.csv", content, "text/csv")}, headers=admin.headers
    )
    assert_problem(real, 422)
    assert {e["row"] for e in real.json()["errors"]} == {3, 4, 5, 6}
    assert (await client.get(RISKS, headers=admin.headers)).json()["total"] == 0
    good = b"title,impact,probability\nGood one,3,4\nAnother,1,2\n"
    dry_ok = await client.post(
        f"{RISKS}/import?dry_run=1",
        files={"file": ("r.csv", good, "text/csv")},
        headers=admin.headers,
    )
    assert dry_ok.json()["created"] == 2
    assert (await client.get(RISKS, headers=admin.headers)).json()["total"] == 0
    done = await client.post(
        f"{RISKS}/import", files={"file": ("r.csv", good, "text/csv")}, headers=admin.headers
    )
    assert done.json()["committed"] is True
    assert len(done.json()["ids"]) == 2
    listed = (await client.get(f"{RISKS}?sort=score", headers=admin.headers)).json()
    assert [r["score"] for r in listed["items"]] == [12.0, 2.0]


async def test_import_xlsx_and_bad_files(client: httpx.AsyncClient, admin: Account) -> None:
    workbook = Workbook()
    sheet = workbook.active
    sheet.append(["Title", "Impact", "Probability", "Review_Date"])
    sheet.append(["From Excel", 4, 4, None])
    sheet.append(["Floats", 2.0, 3.0, "2030-05-01"])
    buffer = io.BytesIO()
    workbook.save(buffer)
    response = await client.post(
        f"{RISKS}/import",
        files={"file": ("r.xlsx", buffer.getvalue(), "application/octet-stream")},
        headers=admin.headers,
    )
    assert response.status_code == 200, response.text
    assert response.json()["created"] == 2
    for name, content in (
        ("r.xlsx", b"PK\x03\x04not really a zip"),
        ("r.csv", b"\xff\xfe\x00garbage"),
        ("r.csv", b""),
        ("r.csv", b"name,impact\nx,1\n"),
    ):
        bad = await client.post(
            f"{RISKS}/import", files={"file": (name, content, "text/csv")}, headers=admin.headers
        )
        assert_problem(bad, 422, "file")
    assert_problem(await client.post(f"{RISKS}/import", headers=admin.headers), 422, "file")


async def test_bulk_update_assign_delete_with_per_row_results(
    app: FastAPI, client: httpx.AsyncClient, admin: Account
) -> None:
    analyst = await member(app, client, admin, ANALYST)
    mine = await new_risk(client, analyst, impact=1, probability=1, tags=["old"])
    theirs = await new_risk(client, admin, impact=1, probability=1)
    missing = str(uuid.uuid4())
    response = await client.post(
        f"{RISKS}/bulk",
        json={
            "action": "update",
            "ids": [mine["id"], theirs["id"], missing, mine["id"]],
            "changes": {
                "impact": 5,
                "status": "ACTIVE",
                "add_tags": ["New"],
                "remove_tags": ["old"],
            },
        },
        headers=analyst.in_tenant(),
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["succeeded"], body["failed"]) == (1, 3)
    assert [(r["index"], r["code"]) for r in body["results"]] == [
        (0, 200),
        (1, 403),
        (2, 404),
        (3, 422),
    ]
    updated = (await client.get(f"{RISKS}/{mine['id']}", headers=admin.headers)).json()
    assert (updated["impact"], updated["score"], updated["status"], updated["tags"]) == (
        5,
        5.0,
        "ACTIVE",
        ["new"],
    )
    history = (await client.get(f"{RISKS}/{mine['id']}/history", headers=admin.headers)).json()
    assert history["items"][0]["action"] == "STATUS_CHANGE"

    # assign needs risk:assign (Analysts lack it): the whole request is refused
    assign = {"action": "assign", "ids": [mine["id"]], "owner_id": admin.user_id}
    assert_problem(
        await client.post(f"{RISKS}/bulk", json=assign, headers=analyst.in_tenant()), 403
    )
    done = await client.post(f"{RISKS}/bulk", json=assign, headers=admin.headers)
    assert done.json()["succeeded"] == 1
    assert (await client.get(f"{RISKS}/{mine['id']}", headers=admin.headers)).json()[
        "owner_id"
    ] == admin.user_id

    deleted = await client.post(
        f"{RISKS}/bulk",
        json={"action": "delete", "ids": [mine["id"], theirs["id"]]},
        headers=admin.headers,
    )
    assert deleted.json()["succeeded"] == 2
    assert (await client.get(RISKS, headers=admin.headers)).json()["total"] == 0

    for body_, field in (
        ({"action": "update", "ids": [theirs["id"]]}, "changes"),
        ({"action": "update", "ids": [theirs["id"]], "changes": {}}, "changes"),
        ({"action": "assign", "ids": [theirs["id"]]}, "owner_id"),
        ({"action": "explode", "ids": [theirs["id"]]}, "action"),
        ({"action": "delete", "ids": []}, "ids"),
        ({"action": "delete", "ids": ["x"]}, "ids.0"),
    ):
        assert_problem(
            await client.post(f"{RISKS}/bulk", json=body_, headers=admin.headers), 422, field
        )


async def test_csv_cells_formatted_by_postgresql_equal_the_general_path(
    app: FastAPI, client: httpx.AsyncClient, admin: Account, database_url: str
) -> None:
    """On PostgreSQL the CSV export's cells come formatted from SQL; every byte must be what the
    general (Python) path writes for the same risks: owners, assets, tags, custom fields of each
    type, formula-looking text, missing values, timestamps with and without microseconds."""
    for name, kind, extra in (
        ("bu", "choice", {"options": ["Retail", "Corp"]}),
        ("loss", "number", {}),
        ("regulated", "boolean", {}),
        ("audit", "date", {}),
        ("note", "text", {}),
    ):
        defined = await client.post(
            "/api/v1/custom-fields",
            json={"name": name, "label": name, "type": kind, **extra},
            headers=admin.headers,
        )
        assert defined.status_code == 201, defined.text
    first, second = await new_asset(client, admin), await new_asset(client, admin, name="=cmd|x")
    await new_risk(
        client,
        admin,
        title="=HYPERLINK(x)",
        description='-2+3, "quoted"\nnext line',
        tags=["b", "a;c"],
        frameworks=["ISO27001"],
        asset_ids=[first["id"], second["id"]],
        owner_id=admin.user_id,
        review_date="2031-02-03",
        custom_fields={"bu": "Retail", "loss": "2.5", "regulated": True, "audit": "2030-01-15"},
    )
    await new_risk(client, admin, custom_fields={"loss": "25000", "regulated": False, "note": "@x"})
    await new_risk(client, admin, title="Plain", description="")
    async with app.state.db.session() as session:  # a timestamp without microseconds
        await session.execute(
            update(Risk)
            .where(Risk.tenant_id == uuid.UUID(admin.tenant_id), Risk.title == "Plain")
            .values(updated_at=datetime(2030, 5, 6, 7, 8, 9, tzinfo=UTC))
        )
        await session.commit()
    query = {
        "tenant_id": uuid.UUID(admin.tenant_id),
        "filters": RiskFilters(),
        "sort": SortField.CREATED_AT,
        "order": SortOrder.ASC,
    }
    general = transfer._CsvExport()
    expected = b"".join(
        [general.rows(*batch) async for batch in transfer._batches(app.state.db, **query)]
    )
    exported = await client.get(
        f"{RISKS}/export?format=csv&sort=created_at&order=asc", headers=admin.headers
    )
    assert exported.status_code == 200
    assert exported.content == expected
    assert expected.count(b"\r\n") >= 4 and b"'=HYPERLINK(x)" in expected
    if database_url.startswith("postgresql"):
        cells = transfer._CsvExport()
        by_sql = b"".join(
            [cells.cells(*batch) async for batch in transfer._cell_batches(app.state.db, **query)]
        )
        assert by_sql == expected


@pytest.mark.parametrize("fmt", [ExportFormat.csv, ExportFormat.json])  # a chunk per page
async def test_an_export_closed_half_way_gives_its_connection_back(
    app: FastAPI,
    client: httpx.AsyncClient,
    admin: Account,
    monkeypatch: pytest.MonkeyPatch,
    fmt: ExportFormat,
) -> None:
    """A client that goes away mid-download closes the stream while the next page is being
    read ahead: that read stops and the snapshot's connection returns to the pool."""
    monkeypatch.setattr(transfer, "BATCH", 2)
    for _ in range(7):
        await new_risk(client, admin)
    engine = app.state.db.engine
    idle = engine.pool.checkedout()

    def export() -> AsyncGenerator[bytes, None]:
        return transfer.export_stream(
            app.state.db,
            tenant_id=uuid.UUID(admin.tenant_id),
            filters=RiskFilters(),
            sort=SortField.CREATED_AT,
            order=SortOrder.ASC,
            fmt=fmt,
        )

    stream = export()
    chunks = [await anext(stream) for _ in range(2)]  # the first page is out, the next one read
    assert all(chunks) and engine.pool.checkedout() == idle + 1
    await stream.aclose()
    assert engine.pool.checkedout() == idle
    whole = b"".join([c async for c in export()])
    assert len(whole) > sum(len(c) for c in chunks)
    assert engine.pool.checkedout() == idle


async def test_an_imported_update_records_the_changes_the_api_records(
    client: httpx.AsyncClient, admin: Account
) -> None:
    """The same change made through ``PATCH`` and through an import row leaves the same
    history entry and audit changes (the import applies rows in memory, by its own path)."""
    low, high = await new_asset(client, admin, "LOW"), await new_asset(client, admin, "CRITICAL")
    fields = {
        "impact": 2,
        "probability": 3,
        "tags": ["cloud", "legacy"],
        "frameworks": ["ISO27001"],
        "asset_ids": [low["id"]],
        "target": {"impact": 1, "probability": 1},
    }
    patched, imported = (
        await new_risk(client, admin, **fields),
        await new_risk(client, admin, **fields),
    )
    for risk in (patched, imported):  # the same title, so that only the change differs
        response = await client.patch(
            f"{RISKS}/{risk['id']}",
            json={"title": "Shared title"},
            headers={**admin.headers, "If-Match": str(risk["version"])},
        )
        assert response.status_code == 200, response.text
    change = {
        "title": "Vendor outage",
        "impact": 5,
        "probability": 3,
        "status": "ACTIVE",
        "tags": ["cloud", "vendor"],
        "asset_ids": [low["id"], high["id"]],
        "review_date": "2027-01-15",
        "description": "The vendor's region went down",
        "treatment": "TRANSFER",
        "frameworks": ["NIST-CSF"],
        "external_id": "VEND-7",
    }
    response = await client.patch(f"{RISKS}/{patched['id']}", json=change, headers=admin.headers)
    assert response.status_code == 200, response.text
    row = {
        **change,
        "tags": "cloud;vendor",
        "asset_ids": f"{low['id']};{high['id']}",
        "frameworks": "NIST-CSF",
    }
    content = "id," + ",".join(row) + "\n" + imported["id"] + "," + ",".join(map(str, row.values()))
    response = await client.post(
        f"{RISKS}/import",
        files={"file": ("update.csv", content.encode(), "text/csv")},
        headers=admin.headers,
    )
    assert response.status_code == 200, response.text
    assert response.json()["updated"] == 1

    async def recorded(risk_id: str) -> tuple[Any, Any, Any]:
        history = await client.get(f"{RISKS}/{risk_id}/history", headers=admin.headers)
        entry = history.json()["items"][0]
        audit = await client.get(
            "/api/v1/audit-events", params={"resource": "risk"}, headers=admin.headers
        )
        changes = next(e for e in audit.json()["items"] if e["resource_id"] == risk_id)["changes"]
        detail = (await client.get(f"{RISKS}/{risk_id}", headers=admin.headers)).json()
        levels = {
            k: v
            for k, v in detail.items()
            if k not in {"id", "version", "created_at", "updated_at", "source"}
        }
        return (
            {k: v for k, v in entry.items() if k in {"action", "changes", "score", "severity"}},
            changes,
            levels,
        )

    via_api, via_import = await recorded(patched["id"]), await recorded(imported["id"])
    assert via_import == via_api
    # the labels that filters read moved alike: the kept tag stays, the dropped ones are gone
    for label, carried in (
        ({"tag": "cloud"}, True),
        ({"tag": "vendor"}, True),
        ({"tag": "legacy"}, False),
        ({"framework": "NIST-CSF"}, True),
        ({"framework": "ISO27001"}, False),
    ):
        listed = await client.get(RISKS, params=label, headers=admin.headers)
        found = {item["id"] for item in listed.json()["items"]}
        assert (patched["id"] in found, imported["id"] in found) == (carried, carried), label
    assert via_api[0]["changes"]["score"]["after"] > via_api[0]["changes"]["score"]["before"]
