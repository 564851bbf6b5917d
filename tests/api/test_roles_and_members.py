"""Roles, members and escalation: no one grants more than they hold; the last Admin stays."""

from __future__ import annotations

import httpx
from fastapi import FastAPI

from openrisk.rbac.catalogue import ADMIN, ANALYST, MANAGER, VIEWER
from tests.api.rbac_helpers import member_with_role
from tests.conftest import TEST_PASSWORD, Account, register


async def test_permissions_catalogue_and_roles_are_listed(
    client: httpx.AsyncClient, admin: Account
) -> None:
    perms = (await client.get("/api/v1/permissions", headers=admin.in_tenant())).json()
    assert perms["total"] == 44 and len(perms["items"]) == 44
    roles = (await client.get("/api/v1/roles", headers=admin.in_tenant())).json()
    assert [r["name"] for r in roles["items"]] == ["Viewer", "Analyst", "Manager", "Admin"]
    assert all(r["is_predefined"] for r in roles["items"])


async def test_admin_creates_updates_and_deletes_a_custom_role(
    client: httpx.AsyncClient, admin: Account
) -> None:
    h = admin.in_tenant()
    created = await client.post(
        "/api/v1/roles",
        json={"name": "Auditor", "level": 2, "permissions": ["audit:read", "risk:read"]},
        headers=h,
    )
    assert created.status_code == 201, created.text
    role = created.json()
    assert role["permissions"] == ["audit:read", "risk:read"] and not role["is_predefined"]

    duplicate = await client.post("/api/v1/roles", json={"name": "Auditor", "level": 1}, headers=h)
    assert duplicate.status_code == 409

    put = await client.put(
        f"/api/v1/roles/{role['id']}/permissions",
        json={"permissions": ["audit:read", "audit:export"]},
        headers=h,
    )
    assert put.json()["permissions"] == ["audit:export", "audit:read"]
    assert (await client.delete(f"/api/v1/roles/{role['id']}", headers=h)).status_code == 204
    assert (await client.get(f"/api/v1/roles/{role['id']}", headers=h)).status_code == 404


async def test_unknown_permission_is_422_naming_the_field(
    client: httpx.AsyncClient, admin: Account
) -> None:
    response = await client.post(
        "/api/v1/roles",
        json={"name": "Odd", "level": 1, "permissions": ["risk:fly"]},
        headers=admin.in_tenant(),
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "permissions"


async def test_rule2_cannot_grant_unheld_permissions(
    app: FastAPI, client: httpx.AsyncClient, admin: Account
) -> None:
    manager = await member_with_role(app, client, admin, MANAGER)
    # Managers lack role:create, so give the manager a custom role that can create roles
    custom = await client.post(
        "/api/v1/roles",
        json={"name": "Role maker", "level": 6, "permissions": ["role:create", "risk:read"]},
        headers=admin.in_tenant(),
    )
    await client.patch(
        f"/api/v1/members/{manager.user_id}",
        json={"role_id": custom.json()["id"]},
        headers=admin.in_tenant(),
    )
    response = await client.post(
        "/api/v1/roles",
        json={"name": "Sneaky", "level": 1, "permissions": ["risk:read", "tenant:delete"]},
        headers=manager.in_tenant(),
    )
    assert response.status_code == 403
    assert "tenant:delete" in response.json()["detail"]
    # an Analyst cannot mint a token with more than it holds either
    analyst = await member_with_role(app, client, admin, ANALYST)
    token = await client.post(
        "/api/v1/tokens",
        json={"name": "ci", "permissions": ["risk:read", "risk:delete"]},
        headers=analyst.in_tenant(),
    )
    assert token.status_code == 403
    own_scope = await client.post(
        "/api/v1/tokens",
        json={"name": "ci", "permissions": ["risk:read", "risk:delete:own"]},
        headers=analyst.in_tenant(),
    )
    assert own_scope.status_code == 201


async def test_rule3_assigns_only_roles_below_own_level(
    app: FastAPI, client: httpx.AsyncClient, admin: Account
) -> None:
    manager = await member_with_role(app, client, admin, MANAGER)
    viewer = await member_with_role(app, client, admin, VIEWER)
    h = manager.in_tenant()
    ok = await client.patch(
        f"/api/v1/members/{viewer.user_id}", json={"role_id": str(ANALYST.id)}, headers=h
    )
    assert ok.status_code == 200 and ok.json()["role_name"] == "Analyst"
    for role in (MANAGER, ADMIN):
        response = await client.patch(
            f"/api/v1/members/{viewer.user_id}", json={"role_id": str(role.id)}, headers=h
        )
        assert response.status_code == 403, role.name
    # an Admin may assign any role, Admin included
    promoted = await client.patch(
        f"/api/v1/members/{viewer.user_id}",
        json={"role_id": str(ADMIN.id)},
        headers=admin.in_tenant(),
    )
    assert promoted.json()["role_name"] == "Admin"


async def test_rule4_cannot_manage_members_at_or_above_own_level(
    app: FastAPI, client: httpx.AsyncClient, admin: Account
) -> None:
    manager = await member_with_role(app, client, admin, MANAGER)
    peer = await member_with_role(app, client, admin, MANAGER)
    change = await client.patch(
        f"/api/v1/members/{peer.user_id}",
        json={"role_id": str(VIEWER.id)},
        headers=manager.in_tenant(),
    )
    assert change.status_code == 403
    boss = await client.patch(
        f"/api/v1/members/{admin.user_id}",
        json={"role_id": str(VIEWER.id)},
        headers=manager.in_tenant(),
    )
    assert boss.status_code == 403


async def test_rule4_the_last_admin_cannot_be_demoted_or_removed(
    app: FastAPI, client: httpx.AsyncClient, admin: Account
) -> None:
    h = admin.in_tenant()
    demote = await client.patch(
        f"/api/v1/members/{admin.user_id}", json={"role_id": str(VIEWER.id)}, headers=h
    )
    assert demote.status_code == 409
    assert (await client.delete(f"/api/v1/members/{admin.user_id}", headers=h)).status_code == 409
    # with a second Admin, Admins may manage Admins
    second = await member_with_role(app, client, admin, ADMIN)
    assert (
        await client.delete(f"/api/v1/members/{admin.user_id}", headers=second.in_tenant())
    ).status_code == 204


async def test_rule5_predefined_roles_are_immutable_and_roles_in_use_stay(
    app: FastAPI, client: httpx.AsyncClient, admin: Account
) -> None:
    h = admin.in_tenant()
    for method, suffix, body in (
        ("PATCH", "", {"name": "Boss"}),
        ("PUT", "/permissions", {"permissions": ["risk:read"]}),
        ("DELETE", "", None),
    ):
        response = await client.request(
            method, f"/api/v1/roles/{VIEWER.id}{suffix}", json=body, headers=h
        )
        assert response.status_code == 403, method
    role = (await client.post("/api/v1/roles", json={"name": "Temp", "level": 1}, headers=h)).json()
    member = await member_with_role(app, client, admin, role["id"])
    assert (await client.delete(f"/api/v1/roles/{role['id']}", headers=h)).status_code == 409
    await client.patch(
        f"/api/v1/members/{member.user_id}", json={"role_id": str(VIEWER.id)}, headers=h
    )
    assert (await client.delete(f"/api/v1/roles/{role['id']}", headers=h)).status_code == 204


async def test_rule8_effective_permissions_name_their_origin(
    app: FastAPI, client: httpx.AsyncClient, admin: Account
) -> None:
    analyst = await member_with_role(app, client, admin, ANALYST)
    body = (
        await client.get(
            f"/api/v1/members/{analyst.user_id}/permissions", headers=admin.in_tenant()
        )
    ).json()
    by_code = {p["code"]: p for p in body["permissions"]}
    assert by_code["risk:update"]["scope"] == "own"
    assert by_code["risk:create"]["scope"] == "all"
    assert "Analyst" in by_code["risk:read"]["origin"]
    assert "risk:assign" not in by_code


async def test_inviting_an_existing_account_and_an_unknown_email(
    client: httpx.AsyncClient, admin: Account
) -> None:
    h = admin.in_tenant()
    existing = await register(client, tenant_name="Elsewhere")
    added = await client.post(
        "/api/v1/members", json={"email": existing.email, "role_id": str(ANALYST.id)}, headers=h
    )
    assert added.status_code == 201 and added.json()["status"] == "member_added"
    again = await client.post(
        "/api/v1/members", json={"email": existing.email, "role_id": str(ANALYST.id)}, headers=h
    )
    assert again.status_code == 409

    invited = await client.post(
        "/api/v1/members",
        json={"email": "new.person@example.com", "role_id": str(VIEWER.id)},
        headers=h,
    )
    body = invited.json()
    assert body["status"] == "invited" and body["invitation_token"]
    accepted = await client.post(
        "/api/v1/auth/invitations/accept",
        json={"token": body["invitation_token"], "password": TEST_PASSWORD},
    )
    assert accepted.status_code == 201
    token = accepted.json()["access_token"]
    me = (await client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {token}"})).json()
    assert me["memberships"][0]["tenant_id"] == admin.tenant_id
    assert me["memberships"][0]["role_name"] == "Viewer"
    reuse = await client.post(
        "/api/v1/auth/invitations/accept",
        json={"token": body["invitation_token"], "password": TEST_PASSWORD},
    )
    assert reuse.status_code == 409  # the one-time link is spent
    members = (await client.get("/api/v1/members", headers=h)).json()
    assert members["total"] == 3
