"""Audit events: every mutation and login, filters, CSV export, append-only."""

from __future__ import annotations

import csv
import io

import httpx
from fastapi import FastAPI

from openrisk.app import iter_api_routes
from tests.conftest import Account, client_for


async def test_logins_and_role_changes_are_audited(
    app: FastAPI, client: httpx.AsyncClient, admin: Account
) -> None:
    async with client_for(app) as http:
        await http.post(
            "/api/v1/auth/login", json={"email": admin.email, "password": "nope-nope-1"}
        )
        await http.post(
            "/api/v1/auth/login", json={"email": admin.email, "password": admin.password}
        )
    h = admin.in_tenant()
    await client.post("/api/v1/roles", json={"name": "Audited", "level": 1}, headers=h)

    logins = (await client.get("/api/v1/audit-events?action=auth.login", headers=h)).json()
    outcomes = sorted(e["outcome"] for e in logins["items"])
    assert outcomes == ["failure", "success"]
    assert all(e["ip"] and e["request_id"] for e in logins["items"])

    roles = (await client.get("/api/v1/audit-events?resource=role", headers=h)).json()
    [event] = roles["items"]
    assert event["action"] == "role.create"
    assert event["actor_user_id"] == admin.user_id
    assert event["changes"]["name"] == {"before": None, "after": "Audited"}


async def test_export_is_csv_of_the_filtered_events(
    client: httpx.AsyncClient, admin: Account
) -> None:
    h = admin.in_tenant()
    await client.post("/api/v1/roles", json={"name": "Exported", "level": 1}, headers=h)
    response = await client.get("/api/v1/audit-events/export?resource=role", headers=h)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert [r["action"] for r in rows] == ["role.create"]


def test_audit_trail_has_no_write_routes() -> None:
    methods = {
        method
        for route in iter_api_routes()
        if route.path.startswith("/api/v1/audit-events")
        for method in route.methods
    }
    assert methods == {"GET"}


async def test_another_tenants_events_are_invisible(
    client: httpx.AsyncClient, admin: Account
) -> None:
    from tests.conftest import register

    other = await register(client)
    await client.post(
        "/api/v1/roles", json={"name": "Secret", "level": 1}, headers=other.in_tenant()
    )
    mine = (await client.get("/api/v1/audit-events", headers=admin.in_tenant())).json()
    assert all(e["tenant_id"] == admin.tenant_id for e in mine["items"])
    assert "Secret" not in str(mine)
