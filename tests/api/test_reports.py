"""Reports: register and executive summary as CSV, XLSX and PDF, from tenant data."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import pytest_asyncio
from fastapi import FastAPI
from openpyxl import load_workbook
from pypdf import PdfReader

from openrisk.rbac.catalogue import ANALYST, VIEWER
from tests.api.rbac_helpers import member_with_role
from tests.conftest import Account, register

REPORTS = "/api/v1/reports"
FORMULA_TITLE = "=HYPERLINK(1) looks like a formula"
RISKS = [
    # title, impact, probability, status, tags → score 20, 16, 12, 4, 3: mean 11, global 56
    ("Ransomware on file servers", 5, 4, "ACTIVE", ["ransomware", "ops"]),
    ("Phishing of finance staff", 4, 4, "ACTIVE", ["phishing"]),
    ("Cloud vendor outage", 3, 4, "DRAFT", []),
    ("Laptop theft", 2, 2, "MITIGATED", ["endpoint"]),
    (FORMULA_TITLE, 1, 3, "ACTIVE", []),
]
GLOBAL_SCORE = 56


@dataclass
class Register:
    account: Account
    risk_ids: dict[str, str]


async def create_risk(
    client: httpx.AsyncClient,
    account: Account,
    title: str,
    impact: int,
    probability: int,
    status: str = "ACTIVE",
    tags: list[str] | None = None,
) -> str:
    response = await client.post(
        "/api/v1/risks",
        json={
            "title": title,
            "impact": impact,
            "probability": probability,
            "status": status,
            "tags": tags or [],
            "description": f"About {title}",
        },
        headers=account.in_tenant(),
    )
    assert response.status_code == 201, response.text
    risk_id: str = response.json()["id"]
    return risk_id


@pytest_asyncio.fixture
async def populated(client: httpx.AsyncClient, admin: Account) -> Register:
    ids = {}
    for title, impact, probability, status, tags in RISKS:
        ids[title] = await create_risk(client, admin, title, impact, probability, status, tags)
    h = admin.in_tenant()
    ransomware = ids["Ransomware on file servers"]
    for body in (
        {"title": "Offline backups", "due_date": "2020-01-15", "status": "PLANNED"},
        {"title": "EDR rollout", "due_date": "2099-06-30", "status": "IN_PROGRESS"},
    ):
        made = await client.post(f"/api/v1/risks/{ransomware}/mitigations", json=body, headers=h)
        assert made.status_code == 201, made.text
    done = await client.post(
        f"/api/v1/risks/{ids['Phishing of finance staff']}/mitigations",
        json={"title": "Phishing training", "due_date": "2020-01-01", "status": "DONE"},
        headers=h,
    )
    assert done.status_code == 201, done.text
    return Register(admin, ids)


async def generate(
    client: httpx.AsyncClient, account: Account, kind: str, fmt: str
) -> tuple[dict[str, Any], httpx.Response]:
    created = await client.post(
        REPORTS, json={"kind": kind, "format": fmt}, headers=account.in_tenant()
    )
    assert created.status_code == 201, created.text
    meta: dict[str, Any] = created.json()
    download = await client.get(meta["download_url"], headers=account.in_tenant())
    assert download.status_code == 200
    return meta, download


def pdf_text(content: bytes) -> str:
    reader = PdfReader(io.BytesIO(content))
    return "\n".join(page.extract_text() for page in reader.pages)


async def test_executive_pdf_shows_the_tenants_numbers(
    client: httpx.AsyncClient, populated: Register
) -> None:
    meta, download = await generate(client, populated.account, "executive", "pdf")
    assert meta["content_type"] == "application/pdf"
    assert meta["filename"].endswith(".pdf")
    assert meta["size_bytes"] == len(download.content)
    assert meta["summary"]["global_risk_score"] == GLOBAL_SCORE
    assert meta["summary"]["total_risks"] == 5
    assert meta["summary"]["by_severity"] == {"CRITICAL": 1, "HIGH": 1, "MEDIUM": 1, "LOW": 2}
    assert meta["summary"]["overdue_mitigations"] == 1
    assert download.headers["content-type"] == "application/pdf"
    assert "attachment" in download.headers["content-disposition"]
    assert download.content.startswith(b"%PDF")

    text = pdf_text(download.content)
    assert f"Global risk score: {GLOBAL_SCORE}/100 across 5 live risks" in " ".join(text.split())
    assert "mean score 11.00" in text
    for title in ("Ransomware on file servers", "Phishing of finance staff", "Offline backups"):
        assert title in text
    assert "Phishing training" not in text  # done: not overdue
    assert "EDR rollout" not in text  # due in the future


async def test_executive_top_risks_are_the_open_ones_like_the_dashboards(
    client: httpx.AsyncClient, populated: Register
) -> None:
    _, download = await generate(client, populated.account, "executive", "pdf")
    text = pdf_text(download.content)
    assert "Laptop theft" not in text  # MITIGATED: settled, as on the dashboard
    top = await client.get(
        "/api/v1/dashboard/top-risks?limit=10", headers=populated.account.in_tenant()
    )
    assert top.status_code == 200, top.text
    for item in top.json()["items"]:
        assert item["title"] in text


async def test_register_pdf_lists_every_risk(
    client: httpx.AsyncClient, populated: Register
) -> None:
    _, download = await generate(client, populated.account, "register", "pdf")
    text = " ".join(pdf_text(download.content).split())
    assert "5 live risks" in text
    for title, *_ in RISKS:
        assert title in text


async def test_register_csv_round_trips_through_the_import(
    client: httpx.AsyncClient, populated: Register
) -> None:
    account = populated.account
    meta, download = await generate(client, account, "register", "csv")
    assert download.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(download.text)))
    assert rows[0]["title"] == "Ransomware on file servers"  # by score
    assert {r["title"] for r in rows} == {t for t, *_ in RISKS} - {FORMULA_TITLE} | {
        "'" + FORMULA_TITLE
    }
    ransomware = next(r for r in rows if r["title"] == "Ransomware on file servers")
    assert (ransomware["score"], ransomware["severity"]) == ("20.00", "CRITICAL")
    assert (ransomware["mitigations"], ransomware["tags"]) == ("2", "ransomware;ops")

    # back into the same tenant: every row updates its risk, nothing is created
    same = await client.post(
        "/api/v1/risks/import",
        files={"file": (meta["filename"], download.content, "text/csv")},
        headers=account.in_tenant(),
    )
    assert same.status_code == 200, same.text
    assert (same.json()["created"], same.json()["updated"], same.json()["failed"]) == (0, 5, 0)

    # into another tenant of the same user: the same register, recreated
    second = await client.post("/api/v1/tenants", json={"name": "Copy Co"}, headers=account.headers)
    copy_id = second.json()["id"]
    imported = await client.post(
        "/api/v1/risks/import",
        files={"file": (meta["filename"], download.content, "text/csv")},
        headers=account.in_tenant(copy_id),
    )
    assert imported.status_code == 200, imported.text
    assert imported.json()["created"] == 5
    await assert_same_register(client, account, copy_id)


async def assert_same_register(
    client: httpx.AsyncClient, account: Account, copy_tenant: str
) -> None:
    def shape(items: list[dict[str, Any]]) -> set[tuple[Any, ...]]:
        return {
            (
                r["title"],
                r["impact"],
                r["probability"],
                float(r["score"]),
                r["severity"],
                r["status"],
                tuple(sorted(r["tags"])),
            )
            for r in items
        }

    original = await client.get("/api/v1/risks?page_size=100", headers=account.in_tenant())
    copied = await client.get("/api/v1/risks?page_size=100", headers=account.in_tenant(copy_tenant))
    assert shape(copied.json()["items"]) == shape(original.json()["items"])


async def test_register_xlsx_round_trips_through_the_import(
    client: httpx.AsyncClient, populated: Register
) -> None:
    account = populated.account
    meta, download = await generate(client, account, "register", "xlsx")
    assert download.headers["content-type"] == (
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    )
    sheet = load_workbook(io.BytesIO(download.content)).worksheets[0]
    header = [c.value for c in sheet[1]]
    assert header[:5] == ["id", "title", "description", "impact", "probability"]
    assert sheet.max_row == 6

    second = await client.post("/api/v1/tenants", json={"name": "Xlsx Co"}, headers=account.headers)
    copy_id = second.json()["id"]
    imported = await client.post(
        "/api/v1/risks/import",
        files={"file": (meta["filename"], download.content, meta["content_type"])},
        headers=account.in_tenant(copy_id),
    )
    assert imported.status_code == 200, imported.text
    assert (imported.json()["created"], imported.json()["failed"]) == (5, 0)
    await assert_same_register(client, account, copy_id)


async def test_executive_csv_and_xlsx(client: httpx.AsyncClient, populated: Register) -> None:
    _, as_csv = await generate(client, populated.account, "executive", "csv")
    lines = as_csv.text.splitlines()
    assert f"global_risk_score,{GLOBAL_SCORE}" in lines
    assert "total_risks,5" in lines and "mitigations_overdue,1" in lines
    assert "CRITICAL,1" in lines
    heatmap = lines.index("# Heatmap")
    assert lines[heatmap + 2] == "5,0,0,0,1,0"  # impact 5: one risk at probability 4

    _, as_xlsx = await generate(client, populated.account, "executive", "xlsx")
    workbook = load_workbook(io.BytesIO(as_xlsx.content))
    assert workbook.sheetnames == [
        "Summary",
        "Risks by severity",
        "Heatmap",
        "Top risks",
        "Overdue mitigations",
    ]
    summary = {row[0]: row[1] for row in workbook["Summary"].iter_rows(values_only=True) if row}
    assert summary["global_risk_score"] == GLOBAL_SCORE
    assert summary["total_risks"] == 5
    assert workbook["Heatmap"].cell(row=2, column=5).value == 1  # impact 5 × probability 4
    top = [r[1] for r in workbook["Top risks"].iter_rows(min_row=2, values_only=True)]
    assert top[0] == "Ransomware on file servers"
    overdue = [r[0] for r in workbook["Overdue mitigations"].iter_rows(min_row=2, values_only=True)]
    assert overdue == ["Offline backups"]


async def test_an_empty_register_still_reports(client: httpx.AsyncClient, admin: Account) -> None:
    meta, download = await generate(client, admin, "executive", "pdf")
    assert meta["summary"]["global_risk_score"] == 100
    text = " ".join(pdf_text(download.content).split())
    assert "Global risk score: 100/100 across 0 live risks" in text
    assert "No live risks." in text
    _, empty_csv = await generate(client, admin, "register", "csv")
    assert empty_csv.text.splitlines()[0].startswith("id,title,description")
    assert len(empty_csv.text.splitlines()) == 1


async def test_listing_filters_and_validation(client: httpx.AsyncClient, admin: Account) -> None:
    h = admin.in_tenant()
    first, _ = await generate(client, admin, "register", "csv")
    second, _ = await generate(client, admin, "executive", "xlsx")
    listed = (await client.get(REPORTS, headers=h)).json()
    assert [r["id"] for r in listed["items"]] == [second["id"], first["id"]]
    assert listed["total"] == 2
    only = (await client.get(f"{REPORTS}?kind=executive", headers=h)).json()
    assert [r["id"] for r in only["items"]] == [second["id"]]
    by_format = (await client.get(f"{REPORTS}?format=csv", headers=h)).json()
    assert [r["id"] for r in by_format["items"]] == [first["id"]]

    for body, field in (
        ({"kind": "weekly", "format": "pdf"}, "kind"),
        ({"kind": "register", "format": "docx"}, "format"),
        ({"format": "pdf"}, "kind"),
    ):
        response = await client.post(REPORTS, json=body, headers=h)
        assert response.status_code == 422
        assert {e["field"] for e in response.json()["errors"]} == {field}
    assert (await client.get(f"{REPORTS}?kind=weekly", headers=h)).status_code == 422
    missing = await client.get(f"{REPORTS}/00000000-0000-4000-8000-000000000099", headers=h)
    assert missing.status_code == 404
    assert (await client.get(f"{REPORTS}/not-a-uuid", headers=h)).status_code == 422

    audit = (await client.get("/api/v1/audit-events?action=report.create", headers=h)).json()
    assert audit["total"] == 2


async def test_reports_are_tenant_isolated(client: httpx.AsyncClient, populated: Register) -> None:
    mine = populated.account
    other = await register(client, tenant_name="Other Reports")
    await create_risk(client, other, "OTHER-TENANT-ONLY risk", 5, 5)
    meta, download = await generate(client, mine, "register", "csv")
    assert "OTHER-TENANT-ONLY" not in download.text

    theirs = other.in_tenant()
    assert (await client.get(meta["download_url"], headers=theirs)).status_code == 404
    assert (await client.get(REPORTS, headers=theirs)).json()["total"] == 0
    named = await client.get(meta["download_url"], headers=other.in_tenant(mine.tenant_id))
    assert named.status_code == 404
    their_meta, _ = await generate(client, other, "register", "csv")
    assert (await client.get(their_meta["download_url"], headers=mine.in_tenant())).status_code == (
        404
    )


@pytest.mark.parametrize("fmt", ["csv", "xlsx", "pdf"])
async def test_viewers_list_and_download_analysts_create(
    app: FastAPI, client: httpx.AsyncClient, admin: Account, fmt: str
) -> None:
    viewer = await member_with_role(app, client, admin, VIEWER)
    analyst = await member_with_role(app, client, admin, ANALYST)
    denied = await client.post(
        REPORTS, json={"kind": "executive", "format": fmt}, headers=viewer.in_tenant()
    )
    assert denied.status_code == 403
    meta, _ = await generate(client, analyst, "executive", fmt)
    assert meta["created_by"] == analyst.user_id
    assert (await client.get(REPORTS, headers=viewer.in_tenant())).json()["total"] == 1
    download = await client.get(meta["download_url"], headers=viewer.in_tenant())
    assert download.status_code == 200
    assert download.headers["content-type"].startswith(meta["content_type"].split(";")[0])


async def use_model(client: httpx.AsyncClient, admin: Account, **changes: Any) -> None:
    """The tenant's risk model with ``changes`` saved."""
    from tests.api.test_risk_model import body_of, current, put

    body = body_of(await current(client, admin), **changes)
    saved = await put(client, admin, body)
    assert saved.status_code == 200, saved.text


async def test_the_heatmap_is_the_tenants_grid_in_its_band_colours(
    client: httpx.AsyncClient, admin: Account
) -> None:
    from tests.api.test_risk_model import levels

    await use_model(
        client,
        admin,
        impact_levels=levels("Low", "Medium", "High", "Very high"),
        probability_levels=levels("Unlikely", "Possible", "Likely"),
        bands=[
            {"name": "LOW", "min_score": 0, "color": "#00aa00"},
            {"name": "HIGH", "min_score": 6, "color": "#ff0000"},
        ],
        review_days={},
        level_mapping={"impact": {"5": 4}, "probability": {"4": 3, "5": 3}},
    )
    await create_risk(client, admin, "Top corner", 4, 3)
    await create_risk(client, admin, "Low corner", 1, 2)
    matrix = (await client.get("/api/v1/dashboard/matrix", headers=admin.headers)).json()
    cells = {(c["impact"], c["probability"]): c["count"] for c in matrix["cells"]}

    _, as_csv = await generate(client, admin, "executive", "csv")
    lines = as_csv.text.splitlines()
    heatmap = lines.index("# Heatmap")
    assert lines[heatmap + 1] == "impact \\ probability,1,2,3"
    rows = lines[heatmap + 2 : heatmap + 6]
    assert rows == ["4,0,0,1", "3,0,0,0", "2,0,0,0", "1,0,1,0"]
    assert lines[heatmap + 6] == ""  # four impact levels, no more
    for row in rows:
        impact, *counts = (int(v) for v in row.split(","))
        assert counts == [cells[(impact, p)] for p in (1, 2, 3)]

    _, as_xlsx = await generate(client, admin, "executive", "xlsx")
    sheet = load_workbook(io.BytesIO(as_xlsx.content))["Heatmap"]
    assert sheet.max_row == 5 and sheet.max_column == 4
    assert sheet.cell(row=2, column=4).value == 1  # impact 4 × probability 3
    high = sheet.cell(row=2, column=4).fill.fgColor.rgb  # 12: HIGH, a tint of red
    low = sheet.cell(row=5, column=2).fill.fgColor.rgb  # 1: LOW, a tint of green
    assert high.upper().endswith("FF8C8C") and low.upper().endswith("8CD98C"), (high, low)

    _, as_pdf = await generate(client, admin, "executive", "pdf")
    assert "Impact \\ Probability" in pdf_text(as_pdf.content)


async def test_severity_counts_and_appetite_follow_the_tenants_bands(
    client: httpx.AsyncClient, admin: Account
) -> None:
    await use_model(
        client,
        admin,
        bands=[
            {"name": "MINOR", "min_score": 0, "color": "#00aa00"},
            {"name": "MODERATE", "min_score": 4, "color": "#ffaa00"},
            {"name": "SEVERE", "min_score": 9, "color": "#aa0000"},
        ],
        appetite_score=8,
        review_days={},
    )
    for title, impact, probability in (
        ("Data centre flood", 4, 3),  # 12 SEVERE, above appetite
        ("Supplier insolvency", 3, 3),  # 9 SEVERE, above appetite
        ("Badge cloning", 2, 2),  # 4 MODERATE
        ("Printer jam", 1, 1),  # 1 MINOR
    ):
        await create_risk(client, admin, title, impact, probability)

    meta, as_csv = await generate(client, admin, "executive", "csv")
    assert meta["summary"]["by_severity"] == {"SEVERE": 2, "MODERATE": 1, "MINOR": 1}
    assert list(meta["summary"]["by_severity"]) == ["SEVERE", "MODERATE", "MINOR"]
    assert meta["summary"]["above_appetite"] == 2
    lines = as_csv.text.splitlines()
    assert "above_appetite,2" in lines
    section = lines.index("# Risks by severity")
    assert lines[section + 2 : section + 5] == ["SEVERE,2", "MODERATE,1", "MINOR,1"]
    assert not any(line.startswith(("CRITICAL,", "HIGH,")) for line in lines)

    _, as_pdf = await generate(client, admin, "executive", "pdf")
    text = " ".join(pdf_text(as_pdf.content).split())
    assert "2 above appetite" in text and "SEVERE" in text
