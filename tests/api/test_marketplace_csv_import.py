"""The csv-import connector: sync imports a CSV through the register's importer."""

from __future__ import annotations

from typing import Any

import httpx
from fastapi import FastAPI

from openrisk.rbac.catalogue import MANAGER
from tests.api.rbac_helpers import member_with_role
from tests.conftest import Account

API = "/api/v1/marketplace"
CSV = (
    "title,description,impact,probability,status,tags\r\n"
    "Supplier breach,Third party leaks data,4,3,ACTIVE,supply-chain;gdpr\r\n"
    "Insider threat,,3,2,DRAFT,\r\n"
)


async def install_csv_app(
    client: httpx.AsyncClient, account: Account, **config: Any
) -> dict[str, Any]:
    response = await client.post(
        f"{API}/apps",
        json={"connector_id": "csv-import", "name": "Quarterly import", "configuration": config},
        headers=account.in_tenant(),
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def risk_titles(client: httpx.AsyncClient, account: Account) -> list[str]:
    listed = await client.get(
        "/api/v1/risks?page_size=100&sort=title&order=asc", headers=account.in_tenant()
    )
    return [r["title"] for r in listed.json()["items"]]


async def test_sync_imports_an_uploaded_csv(client: httpx.AsyncClient, admin: Account) -> None:
    installed = await install_csv_app(client, admin)
    sync = await client.post(
        f"{API}/apps/{installed['id']}/sync",
        files={"file": ("risks.csv", CSV.encode(), "text/csv")},
        headers=admin.in_tenant(),
    )
    assert sync.status_code == 200, sync.text
    body = sync.json()
    assert body["status"] == "success"
    assert (body["data"]["created"], body["data"]["failed"]) == (2, 0)
    assert body["data"]["source"] == "risks.csv"
    assert body["app"]["last_sync_status"] == "success"
    assert body["app"]["last_sync_at"] is not None
    assert await risk_titles(client, admin) == ["Insider threat", "Supplier breach"]

    logs = (
        await client.get(
            f"{API}/apps/{installed['id']}/logs?action=sync", headers=admin.in_tenant()
        )
    ).json()["items"]
    assert logs[0]["status"] == "success" and logs[0]["data"]["created"] == 2
    audit = (
        await client.get("/api/v1/audit-events?action=app.sync", headers=admin.in_tenant())
    ).json()
    assert audit["total"] == 1


async def test_sync_uses_the_configured_csv_text_and_dry_run(
    client: httpx.AsyncClient, admin: Account
) -> None:
    dry = await install_csv_app(client, admin, csv_text=CSV, dry_run=True)
    result = (await client.post(f"{API}/apps/{dry['id']}/sync", headers=admin.in_tenant())).json()
    assert result["status"] == "success"
    assert result["detail"].startswith("validated 2 row(s)")
    assert result["data"]["committed"] is False
    assert await risk_titles(client, admin) == []

    real = await client.patch(
        f"{API}/apps/{dry['id']}",
        json={"configuration": {"dry_run": False}},
        headers=admin.in_tenant(),
    )
    assert real.json()["configuration"] == {"csv_text": CSV, "dry_run": False}
    imported = (await client.post(f"{API}/apps/{dry['id']}/sync", headers=admin.in_tenant())).json()
    assert imported["data"]["created"] == 2
    assert len(await risk_titles(client, admin)) == 2


async def test_invalid_rows_fail_the_sync_and_import_nothing(
    client: httpx.AsyncClient, admin: Account
) -> None:
    installed = await install_csv_app(client, admin)
    bad = "title,impact,probability\r\nFine,3,3\r\nBroken,9,1\r\n"
    sync = await client.post(
        f"{API}/apps/{installed['id']}/sync",
        files={"file": ("bad.csv", bad.encode(), "text/csv")},
        headers=admin.in_tenant(),
    )
    assert sync.status_code == 200
    body = sync.json()
    assert body["status"] == "failure"
    assert body["app"]["status"] == "error"
    assert body["data"]["errors"][0]["row"] == 3
    assert body["data"]["errors"][0]["field"] == "impact"
    assert await risk_titles(client, admin) == []

    nothing = await client.post(f"{API}/apps/{installed['id']}/sync", headers=admin.in_tenant())
    assert nothing.status_code == 422
    assert nothing.json()["errors"][0]["field"] == "file"

    not_csv = await client.post(
        f"{API}/apps/{installed['id']}/sync",
        files={"file": ("x.csv", b"\xff\xfe\x00garbage", "text/csv")},
        headers=admin.in_tenant(),
    )
    assert not_csv.json()["status"] == "failure"


async def test_the_register_report_imports_through_the_connector(
    app: FastAPI, client: httpx.AsyncClient, admin: Account
) -> None:
    """A register report (CSV) of one tenant, imported by a Manager with the connector."""
    h = admin.in_tenant()
    for title, impact in (("Report row one", 5), ("Report row two", 2)):
        made = await client.post(
            "/api/v1/risks", json={"title": title, "impact": impact, "probability": 3}, headers=h
        )
        assert made.status_code == 201
    report = (
        await client.post("/api/v1/reports", json={"kind": "register", "format": "csv"}, headers=h)
    ).json()
    content = (await client.get(report["download_url"], headers=h)).content

    target = (
        await client.post("/api/v1/tenants", json={"name": "Imported"}, headers=admin.headers)
    ).json()["id"]
    manager = await member_with_role(app, client, admin, MANAGER)
    manager.tenant_id = admin.tenant_id
    installed = await install_csv_app(client, admin)
    sync = await client.post(
        f"{API}/apps/{installed['id']}/sync",
        files={"file": (report["filename"], content, "text/csv")},
        headers=manager.in_tenant(),
    )
    assert sync.json()["status"] == "success", sync.text
    assert sync.json()["data"]["updated"] == 2  # same tenant: the rows update their risks

    other = await client.post(
        f"{API}/apps",
        json={"connector_id": "csv-import", "configuration": {}},
        headers=admin.in_tenant(target),
    )
    copied = await client.post(
        f"{API}/apps/{other.json()['id']}/sync",
        files={"file": (report["filename"], content, "text/csv")},
        headers=admin.in_tenant(target),
    )
    assert copied.json()["data"]["created"] == 2, copied.text
    titles = await client.get("/api/v1/risks?sort=title&order=asc", headers=admin.in_tenant(target))
    assert [r["title"] for r in titles.json()["items"]] == ["Report row one", "Report row two"]
