"""Exports name the people and assets a risk points at (owner's email, asset names), next to
their ids, so that a spreadsheet reads without look-ups; the file still imports back."""

from __future__ import annotations

import csv
import io

import httpx
import pytest
from fastapi import FastAPI
from openpyxl import load_workbook

from openrisk.rbac.catalogue import MANAGER
from openrisk.risks import transfer
from tests.api.test_risks_helpers import member, new_asset, new_risk
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


async def test_every_page_of_an_export_names_its_owners_and_assets(
    app: FastAPI, client: httpx.AsyncClient, admin: Account, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Names read on one page are reused on the next; ids first seen later are still named."""
    monkeypatch.setattr(transfer, "BATCH", 2)  # seven risks: four pages
    manager = await member(app, client, admin, MANAGER)
    first, second, third = [
        (await new_asset(client, admin, name=name))["id"] for name in ("Alpha", "Beta", "Gamma")
    ]
    # page 1: Alpha, admin | page 2: Alpha + Beta, manager | page 3: Gamma | page 4: nothing
    links = [[first], [first], [first, second], [second], [third], [third], []]
    owners = [admin, admin, manager, manager, admin, manager, admin]
    for n, (assets, owner) in enumerate(zip(links, owners, strict=True)):
        await new_risk(
            client, admin, title=f"Page row {n}", asset_ids=assets, owner_id=owner.user_id
        )
    exported = await client.get(
        "/api/v1/risks/export?format=csv&sort=title&order=asc", headers=admin.in_tenant()
    )
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    names = {first: "Alpha", second: "Beta", third: "Gamma"}
    assert [r["title"] for r in rows] == [f"Page row {n}" for n in range(7)]
    for row, assets, owner in zip(rows, links, owners, strict=True):
        assert row["owner_email"] == owner.email
        assert sorted(row["asset_names"].split(";") if assets else []) == sorted(
            names[a] for a in assets
        )
