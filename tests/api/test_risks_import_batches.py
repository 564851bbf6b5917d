"""Imports larger than one batch: every risk, label, asset link, history and audit row arrives,
for new rows and for updates (rows with an id), and a refused import leaves nothing behind."""

from __future__ import annotations

import csv
import io
import uuid
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

from openrisk.audit.models import AuditEvent
from openrisk.core.db.tenancy import bind_session_to_tenant
from openrisk.core.errors import PreconditionFailed
from openrisk.core.outbox import OutboxRow
from openrisk.risks import batch, commands, reads, transfer
from openrisk.risks.models import Risk, RiskAsset, RiskCellCount, RiskHistory, RiskLabel
from tests.api.test_risks_helpers import RISKS, csv_file, new_asset
from tests.conftest import Account

ROWS = 1_200
SMALL_CHUNK = 500  # rows per chunk in these tests: three chunks, the last one partly filled


@pytest.fixture(autouse=True)
def _small_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(transfer, "CHUNK", SMALL_CHUNK)
    monkeypatch.setattr(batch, "STAGED_UPDATES", 400)


@pytest.fixture
def _events_received(monkeypatch: pytest.MonkeyPatch) -> None:
    """The import writes its rows' webhook events, as when the tenant has a webhook app (these
    tests check that a refused import leaves none of them behind)."""

    async def wanted(*_: Any) -> bool:
        return True

    monkeypatch.setattr(transfer, "_events_wanted", wanted)


async def _import(
    client: httpx.AsyncClient, admin: Account, content: bytes, **params: str
) -> httpx.Response:
    return await client.post(
        f"{RISKS}/import",
        params=params,
        files={"file": ("batch.csv", content, "text/csv")},
        headers=admin.headers,
    )


async def _counts(app: FastAPI, tenant_id: str) -> dict[str, Any]:
    tenant = uuid.UUID(tenant_id)
    async with app.state.db.session() as session:

        async def count(model: Any, *where: Any) -> int:
            found = await session.scalar(
                select(func.count()).select_from(model).where(model.tenant_id == tenant, *where)
            )
            return int(found or 0)

        cells = await session.scalar(
            select(func.coalesce(func.sum(RiskCellCount.n), 0)).where(
                RiskCellCount.tenant_id == tenant
            )
        )
        return {
            "risks": await count(Risk, Risk.deleted_at.is_(None)),
            "version 2": await count(Risk, Risk.version == 2),
            "labels": await count(RiskLabel),
            "tag second": await count(RiskLabel, RiskLabel.value == "second"),
            "links": await count(RiskAsset),
            "creates": await count(RiskHistory, RiskHistory.action == "CREATE"),
            "updates": await count(RiskHistory, RiskHistory.action != "CREATE"),
            "audited creates": await count(AuditEvent, AuditEvent.action == "risk.create"),
            "audited updates": await count(AuditEvent, AuditEvent.action == "risk.update"),
            "imports": await count(AuditEvent, AuditEvent.action == "risk.import"),
            "matrix": int(cells or 0),
        }


async def test_import_of_more_rows_than_a_batch_writes_every_row(
    app: FastAPI, client: httpx.AsyncClient, admin: Account
) -> None:
    field = await client.post(
        "/api/v1/custom-fields",
        json={"name": "bu", "label": "BU", "type": "choice", "options": ["Retail", "Corp"]},
        headers=admin.headers,
    )
    assert field.status_code == 201, field.text
    asset = await new_asset(client, admin, criticality="HIGH")
    new = [
        {
            "title": f"Batch risk {n:04d}",
            "impact": 1 + n % 5,
            "probability": 1 + n % 3,
            "tags": f"t{n % 7};bulk",
            "cf_bu": ("Retail", "Corp")[n % 2],
            "asset_ids": asset["id"] if n % 4 == 0 else "",
        }
        for n in range(ROWS)
    ]
    dry = await _import(client, admin, csv_file(new), dry_run="true")
    assert dry.status_code == 200, dry.text
    assert (dry.json()["created"], dry.json()["committed"]) == (ROWS, False)
    assert (await _counts(app, admin.tenant_id))["risks"] == 0  # a dry run writes nothing

    created = await _import(client, admin, csv_file(new))
    assert created.status_code == 200, created.text
    assert (created.json()["created"], len(set(created.json()["ids"]))) == (ROWS, ROWS)
    counts = await _counts(app, admin.tenant_id)
    assert counts == {
        "risks": ROWS,
        "version 2": 0,
        "labels": ROWS * 3,  # two tags and one custom field value each
        "tag second": 0,
        "links": ROWS // 4,
        "creates": ROWS,
        "updates": 0,
        "audited creates": ROWS,
        "audited updates": 0,
        "imports": 1,
        "matrix": ROWS,
    }
    listed = await client.get(f"{RISKS}?tag=bulk&cf_bu=Corp&page_size=1", headers=admin.headers)
    assert listed.json()["total"] == ROWS // 2
    linked = await client.get(f"{RISKS}?asset_id={asset['id']}&page_size=1", headers=admin.headers)
    assert linked.json()["total"] == ROWS // 4

    exported = await client.get(f"{RISKS}/export?format=csv", headers=admin.headers)
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    assert len(rows) == ROWS
    changed = [
        {
            "id": r["id"],
            "version": r["version"],
            "title": r["title"] + " (reviewed)",
            "impact": "5",
            "probability": r["probability"],
            "tags": "second",
            "cf_bu": r["cf_bu"],
            "asset_ids": asset["id"],
        }
        for r in rows
    ]
    updated = await _import(client, admin, csv_file(changed))
    assert updated.status_code == 200, updated.text
    assert (updated.json()["created"], updated.json()["updated"]) == (0, ROWS)
    counts = await _counts(app, admin.tenant_id)
    assert counts == {
        "risks": ROWS,
        "version 2": ROWS,
        "labels": ROWS * 2,  # one tag and one custom field value each
        "tag second": ROWS,
        "links": ROWS,
        "creates": ROWS,
        "updates": ROWS,
        "audited creates": ROWS,
        "audited updates": ROWS,
        "imports": 2,
        "matrix": ROWS,
    }
    one = (await client.get(f"{RISKS}/{rows[7]['id']}", headers=admin.headers)).json()
    assert (one["title"], one["impact"], one["tags"]) == (
        rows[7]["title"] + " (reviewed)",
        5,
        ["second"],
    )
    assert one["asset_ids"] == [asset["id"]] and one["score"] > 5 * int(rows[7]["probability"])
    history = (await client.get(f"{RISKS}/{rows[7]['id']}/history", headers=admin.headers)).json()
    assert [h["action"] for h in history["items"]] == ["UPDATE", "CREATE"]
    assert history["items"][0]["changes"]["title"]["after"] == rows[7]["title"] + " (reviewed)"

    # the same file again carries the old versions: every row is refused, nothing changes
    stale = await _import(client, admin, csv_file(changed))
    assert stale.status_code == 422
    errors = stale.json()["errors"]
    assert len(errors) == ROWS and {e["field"] for e in errors} == {"version"}
    assert await _counts(app, admin.tenant_id) == counts


async def test_chunks_that_move_different_columns_each_write_theirs(
    app: FastAPI, client: httpx.AsyncClient, admin: Account
) -> None:
    """An update writes only the columns its rows moved: a chunk that retitles, one that
    raises the impact and one whose rows change either the probability or a tag each stage
    other columns, in one transaction; every value, score, count and label is as asked."""
    plain = _plain_rows(ROWS, impact=1, probability=2, tags="kept;old")
    ids = (await _import(client, admin, csv_file(plain))).json()["ids"]

    def change(n: int) -> dict[str, Any]:
        row = {"id": ids[n], **plain[n]}
        if n < SMALL_CHUNK:
            row["title"] = f"Retitled {n}"
        elif n < 2 * SMALL_CHUNK:
            row["impact"] = 4
        elif n % 2:
            row["probability"] = 5
        else:
            row["tags"] = "kept;new"
        return row

    updated = await _import(client, admin, csv_file([change(n) for n in range(ROWS)]))
    assert updated.status_code == 200, updated.text
    exported = await client.get(f"{RISKS}/export?format=csv", headers=admin.headers)
    by_id = {r["id"]: r for r in csv.DictReader(io.StringIO(exported.text))}
    for n in (0, SMALL_CHUNK, 2 * SMALL_CHUNK - 1, 2 * SMALL_CHUNK, ROWS - 1):
        row, wanted = by_id[ids[n]], change(n)
        assert (row["title"], row["impact"], row["probability"], row["tags"], row["version"]) == (
            wanted["title"],
            str(wanted["impact"]),
            str(wanted["probability"]),
            wanted["tags"],
            "2",
        )
    scores = {(r["impact"], r["probability"]): r["score"] for r in by_id.values()}
    assert len({scores[("1", "2")], scores[("4", "2")], scores[("1", "5")]}) == 3
    matrix = (await client.get("/api/v1/dashboard/matrix", headers=admin.headers)).json()
    cells = {(c["impact"], c["probability"]): c["count"] for c in matrix["cells"] if c["count"]}
    rest = (ROWS - 2 * SMALL_CHUNK) // 2  # the last chunk's rows of each kind
    assert cells == {(1, 2): SMALL_CHUNK + rest, (4, 2): SMALL_CHUNK, (1, 5): rest}
    tagged = await client.get(f"{RISKS}?tag=old&page_size=1", headers=admin.headers)
    assert tagged.json()["total"] == 2 * SMALL_CHUNK + rest


async def test_a_risk_named_twice_in_a_file_is_refused(
    client: httpx.AsyncClient, admin: Account
) -> None:
    created = await _import(
        client, admin, csv_file([{"title": "Once", "impact": 2, "probability": 2}])
    )
    risk_id = created.json()["ids"][0]
    twice = [
        {"id": risk_id, "title": "First", "impact": 2, "probability": 2},
        {"id": risk_id, "title": "Second", "impact": 3, "probability": 2},
    ]
    refused = await _import(client, admin, csv_file(twice))
    assert refused.status_code == 422
    assert [(e["row"], e["field"]) for e in refused.json()["errors"]] == [(3, "id")]
    after = (await client.get(f"{RISKS}/{risk_id}", headers=admin.headers)).json()
    assert (after["title"], after["version"]) == ("Once", 1)


async def _read_risks(app: FastAPI, tenant_id: str, ids: list[str]) -> list[Risk]:
    """The risks as stored now (the API's answers may come from the response cache, which
    writes made straight through ``risks.batch`` do not invalidate)."""
    async with app.state.db.session() as session:
        await bind_session_to_tenant(session, uuid.UUID(tenant_id))
        found = await session.execute(
            select(*batch.RISKS.c).where(batch.RISKS.c.id.in_([uuid.UUID(i) for i in ids]))
        )
        by_id = {row.id: batch.transient(row._mapping) for row in found}
    return [by_id[uuid.UUID(i)] for i in ids]


async def _search(app: FastAPI, tenant_id: str, q: str) -> list[str]:
    async with app.state.db.session() as session:
        await bind_session_to_tenant(session, uuid.UUID(tenant_id))
        hits, _ = await reads.search_risks(session, tenant_id=uuid.UUID(tenant_id), q=q)
    return sorted(str(item.risk.id) for item, _ in hits)


def _retitled(risk: Risk, title: str) -> batch.Changed:
    read = risk.version
    risk.title, risk.version = title, read + 1
    return batch.Changed(risk, read, {}, {"title": {"before": None, "after": title}}, [], False)


async def test_a_batch_of_updates_with_one_risk_changed_meanwhile_writes_none(
    app: FastAPI, client: httpx.AsyncClient, admin: Account
) -> None:
    """The batched UPDATE is guarded by the version each row was read at: one risk changed
    after the read refuses the whole batch (412), and the other risks keep their values."""
    content = csv_file([{"title": f"Guarded {n}", "impact": 2, "probability": 3} for n in range(3)])
    ids = (await _import(client, admin, content)).json()["ids"]
    risks = await _read_risks(app, admin.tenant_id, ids)
    patched = await client.patch(
        f"{RISKS}/{ids[1]}", json={"title": "Edited meanwhile"}, headers=admin.headers
    )
    assert patched.status_code == 200, patched.text
    changed = [_retitled(r, f"Quarterly review {n}") for n, r in enumerate(risks)]
    async with app.state.db.session() as session:
        await bind_session_to_tenant(session, uuid.UUID(admin.tenant_id))
        with pytest.raises(PreconditionFailed):
            await batch.update_risks(session, changed)
        await session.rollback()
    stored = await _read_risks(app, admin.tenant_id, ids)
    assert [(r.title, r.version) for r in stored] == [
        ("Guarded 0", 1),
        ("Edited meanwhile", 2),
        ("Guarded 2", 1),
    ]

    async with app.state.db.session() as session:
        await bind_session_to_tenant(session, uuid.UUID(admin.tenant_id))
        await batch.update_risks(
            session, [_retitled(r, f"Quarterly review {n}") for n, r in enumerate(stored)]
        )
        await session.commit()
    after = await _read_risks(app, admin.tenant_id, ids)
    assert [(r.title, r.version) for r in after] == [
        ("Quarterly review 0", 2),
        ("Quarterly review 1", 3),
        ("Quarterly review 2", 2),
    ]
    assert await _search(app, admin.tenant_id, "quarterly") == sorted(ids)
    assert await _search(app, admin.tenant_id, "guarded") == []


def _plain_rows(count: int, **overrides: Any) -> list[dict[str, Any]]:
    return [
        {"title": f"Piped risk {n:04d}", "impact": 1 + n % 5, "probability": 1 + n % 3} | overrides
        for n in range(count)
    ]


async def test_a_chunk_is_validated_while_the_one_before_it_is_written(
    monkeypatch: pytest.MonkeyPatch, client: httpx.AsyncClient, admin: Account
) -> None:
    """The import validates chunk N while the database writes chunk N - 1 (its wall time is
    then about the larger of the two, not their sum): rows of the second chunk are parsed
    while the first chunk's insert is still in flight, and every row still arrives."""
    log: list[str] = []
    sort_row, write_created = transfer._sort_row, commands.write_created

    def logged_sort_row(state: Any, found: Any, row: Any, *lists: Any) -> None:
        log.append(f"row {(int(row['__row__']) - 2) // SMALL_CHUNK}")
        sort_row(state, found, row, *lists)

    async def logged_insert(session: Any, **kwargs: Any) -> None:
        chunk = len([e for e in log if e.startswith("insert start")])
        log.append(f"insert start {chunk}")
        await write_created(session, **kwargs)
        log.append(f"insert end {chunk}")

    monkeypatch.setattr(transfer, "_sort_row", logged_sort_row)
    monkeypatch.setattr(commands, "write_created", logged_insert)
    done = await _import(client, admin, csv_file(_plain_rows(ROWS)))
    assert done.status_code == 200, done.text
    assert done.json()["created"] == ROWS
    during_first_insert = log[log.index("insert start 0") : log.index("insert end 0")]
    assert "row 1" in during_first_insert, log[:5]
    assert [e for e in log if e.startswith("insert end")] == [
        "insert end 0",
        "insert end 1",
        "insert end 2",
    ]


@pytest.mark.usefixtures("_events_received")
async def test_an_invalid_row_in_the_last_chunk_leaves_nothing_of_the_written_chunks(
    app: FastAPI, client: httpx.AsyncClient, admin: Account
) -> None:
    """The first two chunks are written while the third is validated; its invalid row refuses
    the whole file, and nothing of the first two remains."""
    rows = _plain_rows(ROWS)
    rows[1_100]["impact"] = 9
    refused = await _import(client, admin, csv_file(rows))
    assert refused.status_code == 422, refused.text
    assert [(e["row"], e["field"]) for e in refused.json()["errors"]] == [(1_102, "impact")]
    counts = await _counts(app, admin.tenant_id)
    assert (counts["risks"], counts["creates"], counts["audited creates"]) == (0, 0, 0)
    assert await _outbox_rows(app, admin.tenant_id) == 0


async def _outbox_rows(app: FastAPI, tenant_id: str) -> int:
    async with app.state.db.session() as session:
        found = await session.scalar(
            select(func.count())
            .select_from(OutboxRow)
            .where(OutboxRow.tenant_id == uuid.UUID(tenant_id))
        )
    return int(found or 0)


@pytest.mark.usefixtures("_events_received")
async def test_a_write_that_fails_mid_import_leaves_nothing_and_the_next_import_works(
    monkeypatch: pytest.MonkeyPatch, app: FastAPI, client: httpx.AsyncClient, admin: Account
) -> None:
    """The second chunk's write fails (as when a risk changed meanwhile) while the third is
    being validated: the import answers that error, nothing of it is stored, and the
    connection it used serves the next import."""
    write_created = commands.write_created
    calls = 0

    async def failing_second(session: Any, **kwargs: Any) -> None:
        nonlocal calls
        calls += 1
        await write_created(session, **kwargs)
        if calls == 2:
            raise PreconditionFailed(batch.CHANGED_MEANWHILE)

    monkeypatch.setattr(commands, "write_created", failing_second)
    failed = await _import(client, admin, csv_file(_plain_rows(ROWS)))
    assert failed.status_code == 412, failed.text
    assert calls == 2  # the third chunk was never written
    counts = await _counts(app, admin.tenant_id)
    assert (counts["risks"], counts["creates"], counts["audited creates"]) == (0, 0, 0)
    assert await _outbox_rows(app, admin.tenant_id) == 0

    monkeypatch.setattr(commands, "write_created", write_created)
    again = await _import(client, admin, csv_file(_plain_rows(ROWS)))
    assert again.status_code == 200, again.text
    assert (await _counts(app, admin.tenant_id))["risks"] == ROWS
