"""Assets: CRUD, validation, filters, permissions, tenant isolation, rescoring."""

from __future__ import annotations

import uuid

import httpx
from fastapi import FastAPI

from openrisk.rbac.catalogue import ANALYST, VIEWER
from tests.api.test_risks_helpers import ASSETS, RISKS, assert_problem, member, new_asset, new_risk
from tests.conftest import Account, register


async def test_asset_crud(client: httpx.AsyncClient, admin: Account) -> None:
    asset = await new_asset(client, admin, "HIGH", name="Payroll DB", owner="Finance IT")
    assert asset["criticality"] == "HIGH"
    assert asset["risk_count"] == 0
    url = f"{ASSETS}/{asset['id']}"
    await new_risk(client, admin, asset_ids=[asset["id"]])
    fetched = (await client.get(url, headers=admin.headers)).json()
    assert fetched["risk_count"] == 1
    patched = await client.patch(url, json={"name": "Payroll DB (prod)"}, headers=admin.headers)
    assert patched.status_code == 200
    assert patched.json()["name"] == "Payroll DB (prod)"
    assert (await client.delete(url, headers=admin.headers)).status_code == 204
    assert_problem(await client.get(url, headers=admin.headers), 404)


async def test_asset_validation(client: httpx.AsyncClient, admin: Account) -> None:
    for body, field in (
        ({"name": "", "type": "server"}, "name"),
        ({"name": "x", "type": ""}, "type"),
        ({"name": "x", "type": "server", "criticality": "EXTREME"}, "criticality"),
        ({"name": "x" * 201, "type": "server"}, "name"),
        ({"type": "server"}, "name"),
        ({"name": "x", "type": "server", "colour": "red"}, "colour"),
    ):
        assert_problem(await client.post(ASSETS, json=body, headers=admin.headers), 422, field)
    asset = await new_asset(client, admin)
    assert_problem(
        await client.patch(
            f"{ASSETS}/{asset['id']}", json={"criticality": None}, headers=admin.headers
        ),
        422,
        "criticality",
    )
    assert_problem(await client.get(f"{ASSETS}/not-a-uuid", headers=admin.headers), 422)


async def test_asset_list_filters_and_sort(client: httpx.AsyncClient, admin: Account) -> None:
    await new_asset(client, admin, "LOW", name="Laptop fleet", type="endpoint")
    await new_asset(client, admin, "CRITICAL", name="Core router", type="network")
    await new_asset(client, admin, "MEDIUM", name="CRM", type="application")
    listed = (
        await client.get(f"{ASSETS}?sort=criticality&order=desc", headers=admin.headers)
    ).json()
    assert [a["criticality"] for a in listed["items"]] == ["CRITICAL", "MEDIUM", "LOW"]
    assert listed["total"] == 3
    by_name = (await client.get(f"{ASSETS}?q=ROUT", headers=admin.headers)).json()
    assert [a["name"] for a in by_name["items"]] == ["Core router"]
    by_type = (
        await client.get(f"{ASSETS}?type=endpoint&type=network", headers=admin.headers)
    ).json()
    assert by_type["total"] == 2
    crit = (await client.get(f"{ASSETS}?criticality=LOW", headers=admin.headers)).json()
    assert [a["name"] for a in crit["items"]] == ["Laptop fleet"]
    wildcard = (await client.get(f"{ASSETS}?q=%25", headers=admin.headers)).json()
    assert wildcard["total"] == 0


async def test_asset_permissions_and_isolation(
    app: FastAPI, client: httpx.AsyncClient, admin: Account
) -> None:
    viewer = await member(app, client, admin, VIEWER)
    analyst = await member(app, client, admin, ANALYST)
    asset = await new_asset(client, admin)
    url = f"{ASSETS}/{asset['id']}"
    assert (await client.get(url, headers=viewer.in_tenant())).status_code == 200
    assert_problem(
        await client.post(ASSETS, json={"name": "x", "type": "y"}, headers=viewer.in_tenant()), 403
    )
    assert_problem(await client.patch(url, json={"name": "y"}, headers=viewer.in_tenant()), 403)
    assert (
        await client.patch(url, json={"name": "y"}, headers=analyst.in_tenant())
    ).status_code == 200
    assert_problem(await client.delete(url, headers=analyst.in_tenant()), 403)
    outsider = await register(client, tenant_name="Elsewhere")
    for method in ("GET", "PATCH", "DELETE"):
        body = {"name": "z"} if method == "PATCH" else None
        assert_problem(await client.request(method, url, json=body, headers=outsider.headers), 404)
    # linking another tenant's asset to a risk is refused
    response = await client.post(
        RISKS,
        json={"title": "x", "impact": 1, "probability": 1, "asset_ids": [asset["id"]]},
        headers=outsider.headers,
    )
    assert_problem(response, 422, "asset_ids")
    assert_problem(await client.get(f"{ASSETS}/{uuid.uuid4()}", headers=admin.headers), 404)


async def test_criticality_change_rescores_only_linked_live_risks(
    client: httpx.AsyncClient, admin: Account
) -> None:
    asset = await new_asset(client, admin, "MEDIUM")
    linked = await new_risk(client, admin, impact=4, probability=4, asset_ids=[asset["id"]])
    unlinked = await new_risk(client, admin, impact=4, probability=4)
    assert linked["score"] == unlinked["score"] == 16.0
    await client.patch(
        f"{ASSETS}/{asset['id']}", json={"criticality": "CRITICAL"}, headers=admin.headers
    )
    after = (await client.get(f"{RISKS}/{linked['id']}", headers=admin.headers)).json()
    assert (after["score"], after["severity"]) == (24.0, "CRITICAL")
    same = (await client.get(f"{RISKS}/{unlinked['id']}", headers=admin.headers)).json()
    assert same["score"] == 16.0
    high = (await client.get(f"{RISKS}?severity=CRITICAL", headers=admin.headers)).json()
    assert [r["id"] for r in high["items"]] == [linked["id"]]
