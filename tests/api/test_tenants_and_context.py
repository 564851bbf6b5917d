"""Tenant context resolution: X-Tenant-ID by id or slug, default membership, 404."""

from __future__ import annotations

from typing import Annotated

import httpx
import pytest
from fastapi import Depends, FastAPI

from openrisk.auth.deps import require
from openrisk.core.context import RequestContext
from tests.conftest import Account, register

PROBE = "/api/v1/test-probe/context"


@pytest.fixture(scope="session", autouse=True)
def probe_route(app: FastAPI) -> None:
    """A route guarded like every tenant route, answering what the context resolved to."""
    if any(getattr(r, "path", None) == PROBE for r in app.routes):
        return

    @app.get(PROBE)
    async def probe(
        context: Annotated[RequestContext, Depends(require("risk:read"))],
    ) -> dict[str, object]:
        return {
            "tenant_id": str(context.tenant_id),
            "role": context.role_name,
            "can_delete": context.has("risk:delete"),
        }

    app.openapi_schema = None


async def test_default_membership_is_used_without_a_header(
    client: httpx.AsyncClient, admin: Account
) -> None:
    response = await client.get(PROBE, headers=admin.headers)
    assert response.status_code == 200
    assert response.json() == {"tenant_id": admin.tenant_id, "role": "Admin", "can_delete": True}


async def test_tenant_can_be_named_by_id_or_slug(client: httpx.AsyncClient, admin: Account) -> None:
    created = await client.post(
        "/api/v1/tenants", json={"name": "Second Org"}, headers=admin.headers
    )
    assert created.status_code == 201
    second = created.json()
    by_id = await client.get(PROBE, headers=admin.in_tenant(second["id"]))
    by_slug = await client.get(PROBE, headers=admin.in_tenant(second["slug"]))
    assert by_id.json()["tenant_id"] == by_slug.json()["tenant_id"] == second["id"]

    listed = (await client.get("/api/v1/tenants", headers=admin.headers)).json()
    assert listed["total"] == 2
    assert {t["id"] for t in listed["items"]} == {admin.tenant_id, second["id"]}


async def test_non_member_gets_404_for_another_tenant(
    client: httpx.AsyncClient, admin: Account
) -> None:
    outsider = await register(client, tenant_name="Other Corp")
    for headers in (outsider.in_tenant(admin.tenant_id), outsider.in_tenant("no-such-tenant")):
        response = await client.get(PROBE, headers=headers)
        assert response.status_code == 404
        assert response.headers["content-type"] == "application/problem+json"
    direct = await client.get(f"/api/v1/tenants/{admin.tenant_id}", headers=outsider.headers)
    assert direct.status_code == 404
    own = await client.get(f"/api/v1/tenants/{admin.tenant_id}", headers=admin.headers)
    assert own.status_code == 200
    assert own.json()["id"] == admin.tenant_id


async def test_missing_credentials_are_401(client: httpx.AsyncClient) -> None:
    response = await client.get(PROBE)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"


async def test_admin_renames_suspends_and_deletes_a_tenant(
    client: httpx.AsyncClient, admin: Account
) -> None:
    url = f"/api/v1/tenants/{admin.tenant_id}"
    renamed = await client.patch(url, json={"name": "Renamed Corp"}, headers=admin.headers)
    assert renamed.status_code == 200 and renamed.json()["name"] == "Renamed Corp"
    stats = (await client.get(f"{url}/stats", headers=admin.headers)).json()
    assert stats["members"] == 1 and stats["audit_events"] >= 1

    suspended = await client.patch(url, json={"status": "suspended"}, headers=admin.headers)
    assert suspended.status_code == 200
    # a suspended tenant refuses work on the very next request
    assert (await client.get(PROBE, headers=admin.in_tenant())).status_code == 403

    assert (await client.delete(url, headers=admin.headers)).status_code == 403
    # only the tenant's own administration reaches it, to reactivate it
    reactivated = await client.patch(url, json={"status": "active"}, headers=admin.headers)
    assert reactivated.status_code == 200
    assert (await client.get(PROBE, headers=admin.in_tenant())).status_code == 200


async def test_viewer_cannot_change_the_tenant(
    app: FastAPI, client: httpx.AsyncClient, admin: Account
) -> None:
    from openrisk.rbac.catalogue import VIEWER
    from tests.api.rbac_helpers import member_with_role

    viewer = await member_with_role(app, client, admin, VIEWER)
    url = f"/api/v1/tenants/{admin.tenant_id}"
    assert (await client.patch(url, json={"name": "x"}, headers=viewer.headers)).status_code == 403
    assert (await client.delete(url, headers=viewer.headers)).status_code == 403
    assert (await client.get(url, headers=viewer.headers)).status_code == 200


async def test_deleting_a_tenant_removes_it_for_its_members(
    client: httpx.AsyncClient, admin: Account
) -> None:
    extra = (
        await client.post("/api/v1/tenants", json={"name": "Short Lived"}, headers=admin.headers)
    ).json()
    url = f"/api/v1/tenants/{extra['id']}"
    assert (await client.delete(url, headers=admin.headers)).status_code == 204
    assert (await client.get(url, headers=admin.headers)).status_code == 404
    assert (await client.get(PROBE, headers=admin.in_tenant(extra["id"]))).status_code == 404
