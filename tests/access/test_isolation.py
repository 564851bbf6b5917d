"""Tenant isolation generated from the route table.

For every route and method that takes a tenant-owned id, an Admin of tenant B using tenant A's
ids gets 404; and no list, search, export or dashboard answer in B contains anything of A.
"""

from __future__ import annotations

import uuid

import httpx
from fastapi import FastAPI

from tests.access.world import (
    API,
    GLOBAL_PARAMS,
    Tenant,
    fill_path,
    path_params,
    request,
    tenant_routes,
)
from tests.conftest import register


def _takes_tenant_owned_id(path: str) -> bool:
    return any(p not in GLOBAL_PARAMS for p in path_params(path))


async def test_another_tenants_ids_are_404_on_every_route_and_method(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    marker = f"alpha{uuid.uuid4().hex[:6]}"
    alpha = Tenant(app, client, await register(client, tenant_name="Alpha"), marker)
    beta_admin = await register(client, tenant_name="Beta")
    checked = []
    for method, route in tenant_routes():
        if not _takes_tenant_owned_id(route.path):
            continue
        url = await fill_path(alpha, route.path, None)
        response = await request(client, method, route.path, url, beta_admin)
        assert response.status_code == 404, (
            method,
            route.path,
            response.status_code,
            response.text,
        )
        assert marker not in response.text
        checked.append((method, route.path))
    assert len(checked) >= 40  # the register, marketplace, reports and access routes


async def test_bulk_actions_on_another_tenants_risks_touch_nothing(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    alpha = Tenant(app, client, await register(client), "alpha")
    beta = await register(client)
    risk_id = await alpha.risk()
    response = await request(
        client, "POST", f"{API}/risks/bulk", f"{API}/risks/bulk", beta, extra_ids=[risk_id]
    )
    assert response.status_code in (200, 207)
    assert [(r["status"], r["code"]) for r in response.json()["results"]] == [("error", 404)]
    still_there = await client.get(f"{API}/risks/{risk_id}", headers=alpha.admin.in_tenant())
    assert still_there.status_code == 200


async def test_lists_searches_exports_and_dashboards_show_nothing_of_another_tenant(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    marker = f"alpha{uuid.uuid4().hex[:6]}"
    alpha = Tenant(app, client, await register(client, tenant_name="Alpha"), marker)
    alpha_ids = [
        await alpha.risk(),
        await alpha.quantified_risk(),
        await alpha.mitigation(),
        await alpha.asset(),
        await alpha.custom_field(),
        await alpha.role(),
        await alpha.token(),
        await alpha.app_id(),
        await alpha.report(),
        await alpha.deleted_risk(),  # the bin lists nothing of another tenant either
    ]
    beta = Tenant(app, client, await register(client, tenant_name="Beta"), "beta")
    await beta.risk()
    await beta.quantified_risk()
    await beta.asset()
    listed = 0
    for method, route in tenant_routes():
        if method != "GET" or path_params(route.path):
            continue
        params = {"q": marker} if route.path.endswith(("/risks", "/search")) else {}
        response = await client.get(route.path, params=params, headers=beta.admin.in_tenant())
        assert response.status_code == 200, (route.path, response.text)
        assert marker not in response.text, route.path
        assert not any(i in response.text for i in alpha_ids), route.path
        listed += 1
    assert listed >= 15
