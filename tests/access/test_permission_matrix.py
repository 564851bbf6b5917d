"""Every predefined role × every guarded route: allowed or 403 exactly as the product's
permission table says, "own" scopes included: an Analyst may update and delete its own risks,
its own (created or assigned) mitigations and its own tokens, and gets 403 on anybody else's.
"""

from __future__ import annotations

import uuid

import httpx
import pytest
from fastapi import FastAPI

from openrisk.rbac.catalogue import (
    ADMIN,
    ALL_PERMISSIONS,
    ANALYST,
    MANAGER,
    OWN_SCOPED,
    VIEWER,
    PredefinedRole,
)
from openrisk.rbac.models import Role
from openrisk.rbac.service import grant_sets
from tests.access.world import (
    API,
    Tenant,
    fill_path,
    permission_of,
    request,
    tenant_routes,
)
from tests.conftest import Account, register

ROLES = (VIEWER, ANALYST, MANAGER, ADMIN)
# The permission each route needs, written from the product's permission table, not the code.
EXPECTED_PERMISSIONS: dict[tuple[str, str], str | None] = {
    ("GET", "/tenants/{tenant_id}"): "tenant:read",
    ("PATCH", "/tenants/{tenant_id}"): "tenant:update",
    ("DELETE", "/tenants/{tenant_id}"): "tenant:delete",
    ("GET", "/tenants/{tenant_id}/stats"): "tenant:read",
    ("GET", "/members"): "member:read",
    ("POST", "/members"): "member:invite",
    ("GET", "/members/{user_id}"): "member:read",
    ("PATCH", "/members/{user_id}"): "member:update_role",
    ("DELETE", "/members/{user_id}"): "member:remove",
    ("GET", "/members/{user_id}/permissions"): "member:read",
    ("GET", "/members/invitations"): "member:read",
    ("GET", "/saved-views"): "risk:read",
    ("POST", "/saved-views"): "risk:read",
    ("DELETE", "/saved-views/{view_id}"): "risk:read",
    ("POST", "/members/invitations/{invitation_id}/renew"): "member:invite",
    ("DELETE", "/members/invitations/{invitation_id}"): "member:invite",
    ("GET", "/permissions"): "role:read",
    ("GET", "/roles"): "role:read",
    ("POST", "/roles"): "role:create",
    ("GET", "/roles/{role_id}"): "role:read",
    ("PATCH", "/roles/{role_id}"): "role:update",
    ("PUT", "/roles/{role_id}/permissions"): "role:update",
    ("DELETE", "/roles/{role_id}"): "role:delete",
    ("GET", "/tokens"): "token:read",
    ("POST", "/tokens"): "token:create",
    ("DELETE", "/tokens/{token_id}"): "token:revoke",
    ("POST", "/tokens/{token_id}/rotate"): "token:revoke",
    ("GET", "/audit-events"): "audit:read",
    ("GET", "/audit-events/export"): "audit:export",
    ("GET", "/marketplace/connectors"): "connector:read",
    ("GET", "/marketplace/connectors/{connector_id}"): "connector:read",
    ("GET", "/marketplace/connectors/{connector_id}/reviews"): "connector:read",
    ("POST", "/marketplace/connectors/{connector_id}/reviews"): "connector:review",
    ("GET", "/marketplace/apps"): "connector:read",
    ("POST", "/marketplace/apps"): "connector:install",
    ("GET", "/marketplace/apps/{app_id}"): "connector:read",
    ("PATCH", "/marketplace/apps/{app_id}"): "connector:configure",
    ("DELETE", "/marketplace/apps/{app_id}"): "connector:uninstall",
    ("POST", "/marketplace/apps/{app_id}/enable"): "connector:configure",
    ("POST", "/marketplace/apps/{app_id}/disable"): "connector:configure",
    ("POST", "/marketplace/apps/{app_id}/sync"): "connector:sync",
    (
        "POST",
        "/marketplace/apps/{app_id}/deliveries/{delivery_id}/redeliver",
    ): "connector:configure",
    ("GET", "/marketplace/apps/{app_id}/logs"): "connector:read",
    ("GET", "/reports"): "report:read",
    ("POST", "/reports"): "report:create",
    ("GET", "/reports/{report_id}"): "report:read",
    ("GET", "/reports/jobs/{job_id}"): "report:read",
    ("GET", "/risks"): "risk:read",
    ("POST", "/risks"): "risk:create",
    ("GET", "/risks/search"): "risk:read",
    ("GET", "/risks/matrix"): "risk:read",
    ("GET", "/risks/export"): "risk:export",
    ("POST", "/risks/import"): "risk:create",
    ("POST", "/risks/bulk"): None,  # per row: risk:update / risk:delete / risk:assign
    ("GET", "/risks/{risk_id}"): "risk:read",
    ("PATCH", "/risks/{risk_id}"): "risk:update",
    ("DELETE", "/risks/{risk_id}"): "risk:delete",
    ("GET", "/risks/deleted"): "risk:delete",  # the bin: who may delete may restore
    ("POST", "/risks/{risk_id}/restore"): "risk:delete",
    ("GET", "/risks/{risk_id}/history"): "risk:read",
    ("GET", "/mitigations/recommended"): "mitigation:read",
    ("GET", "/mitigations/{mitigation_id}"): "mitigation:read",
    ("PATCH", "/mitigations/{mitigation_id}"): "mitigation:update",
    ("DELETE", "/mitigations/{mitigation_id}"): "mitigation:delete",
    ("POST", "/mitigations/{mitigation_id}/subactions"): "mitigation:update",
    ("PATCH", "/mitigations/{mitigation_id}/subactions/{sub_id}"): "mitigation:update",
    ("DELETE", "/mitigations/{mitigation_id}/subactions/{sub_id}"): "mitigation:update",
    ("GET", "/risks/{risk_id}/mitigations"): "mitigation:read",
    ("POST", "/risks/{risk_id}/mitigations"): "mitigation:create",
    ("GET", "/assets"): "asset:read",
    ("POST", "/assets"): "asset:create",
    ("GET", "/assets/{asset_id}"): "asset:read",
    ("PATCH", "/assets/{asset_id}"): "asset:update",
    ("DELETE", "/assets/{asset_id}"): "asset:delete",
    ("GET", "/custom-fields"): "custom_field:read",
    ("POST", "/custom-fields"): "custom_field:manage",
    ("GET", "/custom-fields/{field_id}"): "custom_field:read",
    ("PATCH", "/custom-fields/{field_id}"): "custom_field:manage",
    ("DELETE", "/custom-fields/{field_id}"): "custom_field:manage",
    ("GET", "/dashboard/stats"): "dashboard:read",
    ("GET", "/dashboard/matrix"): "dashboard:read",
    ("GET", "/dashboard/timeline"): "dashboard:read",
    ("GET", "/dashboard/top-risks"): "dashboard:read",
    ("GET", "/dashboard/quantitative"): "dashboard:read",
    ("GET", "/risks/{risk_id}/quantification"): "risk:read",
    ("PUT", "/risks/{risk_id}/quantification"): "risk:update",
    ("DELETE", "/risks/{risk_id}/quantification"): "risk:update",
    ("GET", "/quantitative/appetite"): "dashboard:read",
    ("PUT", "/quantitative/appetite"): "tenant:update",
    ("DELETE", "/quantitative/appetite"): "tenant:update",
    ("GET", "/risk-model"): "risk:read",
    ("PUT", "/risk-model"): "tenant:update",
    ("GET", "/risk-model/jobs/{job_id}"): "risk:read",
    ("POST", "/risks/{risk_id}/acceptances"): "risk:update",
    ("GET", "/acceptances"): "risk:read",
    ("GET", "/acceptances/{acceptance_id}"): "risk:read",
    ("POST", "/acceptances/{acceptance_id}/approve"): "risk:accept",
    ("POST", "/acceptances/{acceptance_id}/reject"): "risk:accept",
    # the service decides: the requester withdraws a submitted one, risk:accept ends any
    ("POST", "/acceptances/{acceptance_id}/revoke"): None,
    ("POST", "/risks/{risk_id}/reviews"): "risk:update",
    ("GET", "/risks/{risk_id}/reviews"): "risk:read",
}


def test_every_tenant_route_declares_the_permission_the_spec_names() -> None:
    declared = {
        (method, route.path.removeprefix(API)): permission_of(route)
        for method, route in tenant_routes()
    }
    assert declared == EXPECTED_PERMISSIONS


# Path parameters whose object has an owner that "own" grants are about.
OWNED_PARAMS = {"risk_id", "mitigation_id", "token_id"}


def expected(role: PredefinedRole, code: str) -> str:
    full, own = grant_sets(role.grants)
    return "all" if code in full else "own" if code in own else "none"


async def _call(
    world: Tenant, method: str, path: str, caller: Account, role: PredefinedRole, owner: Account
) -> httpx.Response:
    if method == "DELETE" and path == f"{API}/tenants/{{tenant_id}}":
        url = path.format(tenant_id=await world.fresh_tenant_for(caller, role))
    else:
        url = await fill_path(world, path, owner)
    return await request(world.http, method, path, url, caller)


@pytest.mark.parametrize("role", ROLES, ids=lambda r: r.name)
async def test_each_route_allows_or_refuses_as_the_spec_says(
    app: FastAPI, client: httpx.AsyncClient, role: PredefinedRole
) -> None:
    world = Tenant(app, client, await register(client, tenant_name="Matrix"), "matrix")
    caller = world.admin if role is ADMIN else await world.member(role)
    mismatches = []
    outcomes = {True: 0, False: 0}
    for method, route in tenant_routes():
        code = EXPECTED_PERMISSIONS[(method, route.path.removeprefix(API))]
        if code is None:
            continue  # bulk: checked per row, see test_bulk_checks_each_row
        scope = expected(role, code)
        cases = [(world.admin, scope != "none")]
        if scope == "own" and any(f"{{{p}}}" in route.path for p in OWNED_PARAMS):
            cases = [(caller, True), (world.admin, False)]
        elif scope == "own":
            cases = [(caller, True)]
        for owner, allowed in cases:
            response = await _call(world, method, route.path, caller, role, owner)
            refused = response.status_code == 403
            outcomes[allowed] += 1
            if refused == allowed or response.status_code in (401, 500):
                mismatches.append((method, route.path, code, scope, owner is caller, response.text))
    assert mismatches == []
    assert sum(outcomes.values()) >= 70  # every guarded route was exercised
    assert outcomes[True] > 0 and (outcomes[False] > 0 or role is ADMIN)


async def test_bulk_checks_each_row(app: FastAPI, client: httpx.AsyncClient) -> None:
    world = Tenant(app, client, await register(client), "bulk")
    analyst = await world.member(ANALYST)
    mine, theirs = await world.risk(analyst), await world.risk()
    response = await request(
        client, "POST", f"{API}/risks/bulk", f"{API}/risks/bulk", analyst, extra_ids=[mine, theirs]
    )
    assert response.status_code in (200, 207), response.text
    results = {r["id"]: (r["status"], r["code"]) for r in response.json()["results"]}
    assert results == {mine: ("ok", 200), theirs: ("error", 403)}


# --------------------------------------------------------------------------- "own" on reads
# Reads and exports cover the whole tenant: an "own" grant on them is refused where roles and
# tokens are made, and one stored before that rule grants nothing (never every row).


def read_routes() -> list[tuple[str, str, str]]:
    """(method, path, code) of every route guarded by a read or export code without "own"."""
    found = []
    for method, route in tenant_routes():
        code = EXPECTED_PERMISSIONS[(method, route.path.removeprefix(API))]
        if code and code.split(":")[1] in ("read", "export") and code not in OWN_SCOPED:
            found.append((method, route.path, code))
    return found


def test_every_read_route_is_covered_by_the_own_rule() -> None:
    codes = {code for _, _, code in read_routes()}
    assert len(read_routes()) >= 30
    assert {"risk:read", "risk:export", "mitigation:read", "report:read"} <= codes
    assert "risk:read:own" not in ALL_PERMISSIONS


async def test_own_grants_on_read_codes_are_refused_for_roles_and_tokens(
    client: httpx.AsyncClient, admin: Account
) -> None:
    for code in sorted({code for _, _, code in read_routes()}):
        grant = f"{code}:own"
        role = await client.post(
            f"{API}/roles",
            json={"name": f"own {code}", "level": 1, "permissions": [grant]},
            headers=admin.in_tenant(),
        )
        token = await client.post(
            f"{API}/tokens", json={"name": "t", "permissions": [grant]}, headers=admin.in_tenant()
        )
        for response in (role, token):
            assert response.status_code == 422, (code, response.text)
            assert response.json()["errors"][0]["field"] == "permissions"
            assert "own" in response.json()["detail"]


async def test_a_stored_own_grant_on_a_read_code_grants_nothing_on_any_read_route(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    world = Tenant(app, client, await register(client, tenant_name="Legacy"), "legacy")
    codes = sorted({code for _, _, code in read_routes()})
    async with app.state.db.session() as session:  # as written before the catalogue refused it
        role = Role(
            tenant_id=uuid.UUID(world.admin.tenant_id),
            name="legacy own reads",
            level=1,
            permissions=[f"{code}:own" for code in codes],
        )
        session.add(role)
        await session.commit()
    caller = await world.member(ANALYST)  # creates the rows it will own, then loses the role
    urls = [
        (method, path, owner is caller, await fill_path(world, path, owner))
        for method, path, _ in read_routes()
        for owner in (caller, world.admin)
    ]
    await world.add_role(caller, role.id)
    answers = {}
    for method, path, own_row, url in urls:
        answers[(method, path, own_row)] = (
            await request(client, method, path, url, caller)
        ).status_code
    assert set(answers.values()) == {403}, answers
