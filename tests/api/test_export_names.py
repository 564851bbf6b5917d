"""Exports name the people and assets a risk points at (owner's email, asset names), next to
their ids, so that a spreadsheet reads without look-ups; the file still imports back."""

from __future__ import annotations

import csv
import io

import httpx
from openpyxl import load_workbook

from tests.conftest import Account


async def _setup(client: httpx.AsyncClient, admin: Account) -> str:
    h = admin.in_tenant()
    asset_ids = []
    for name in ("Payroll server", "=HYPERLINK(evil)"):
        made = await client.post(
            "/api/v1/assets",
            json={"name": name, "type": "server", "criticality": "HIGH"},
            headers=h,
        )
        assert made.status_code == 201, made.text
        asset_ids.append(made.json()["id"])
    risk = await client.post(
        "/api/v1/risks",
        json={"title": "Named export", "impact": 3, "probability": 3, "asset_ids": asset_ids},
        headers=h,
    )
    assert risk.status_code == 201, risk.text
    return str(risk.json()["id"])


async def test_csv_and_xlsx_carry_owner_emails_and_asset_names(
    client: httpx.AsyncClient, admin: Account
) -> None:
    risk_id = await _setup(client, admin)
    h = admin.in_tenant()
    exported = await client.get("/api/v1/risks/export?format=csv", headers=h)
    assert exported.status_code == 200
    [row] = list(csv.DictReader(io.StringIO(exported.text)))
    assert row["id"] == risk_id and row["owner_email"] == admin.email
    names = row["asset_names"]
    assert "Payroll server" in names and "=HYPERLINK(evil)" in names
    assert not names.startswith(("=", "+", "-", "@"))  # a spreadsheet never runs it

    xlsx = await client.get("/api/v1/risks/export?format=xlsx", headers=h)
    sheet = load_workbook(io.BytesIO(xlsx.content), read_only=True).active
    header, values = list(sheet.iter_rows(values_only=True))[:2]
    data = dict(zip(header, values, strict=True))
    assert data["owner_email"] == admin.email
    assert "Payroll server" in str(data["asset_names"])
    assert not str(data["asset_names"]).startswith("=")  # never a formula

    back = await client.post(
        "/api/v1/risks/import?dry_run=true",
        files={"file": ("risks.csv", exported.content, "text/csv")},
        headers=h,
    )
    assert back.status_code == 200, back.text
    assert back.json()["errors"] == []
