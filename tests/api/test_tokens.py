"""API tokens: shown once, hashed, tenant-bound, narrowed, revocable."""

from __future__ import annotations

import uuid

import httpx
from fastapi import FastAPI

from openrisk.rbac.catalogue import ANALYST, VIEWER
from openrisk.tokens.models import ApiToken
from tests.api.rbac_helpers import member_with_role
from tests.conftest import Account, register


def bearer(secret: str, tenant: str | None = None) -> dict[str, str]:
    headers = {"Authorization": f"Bearer {secret}"}
    if tenant:
        headers["X-Tenant-ID"] = tenant
    return headers


async def test_token_secret_is_shown_once_and_stored_hashed(
    app: FastAPI, client: httpx.AsyncClient, admin: Account
) -> None:
    created = await client.post(
        "/api/v1/tokens",
        json={"name": "ci", "permissions": ["member:read"]},
        headers=admin.in_tenant(),
    )
    assert created.status_code == 201
    body = created.json()
    secret = body["token"]
    assert secret.startswith("orsk_") and len(secret) >= 5 + 43
    assert body["prefix"] == secret[:12]

    listed = await client.get("/api/v1/tokens", headers=admin.in_tenant())
    assert secret not in listed.text
    async with app.state.db.session() as session:
        stored = await session.get(ApiToken, uuid.UUID(body["id"]))
        assert stored is not None and secret not in stored.token_hash

    # the token works on what it was granted, and nothing else
    assert (await client.get("/api/v1/members", headers=bearer(secret))).status_code == 200
    assert (await client.get("/api/v1/roles", headers=bearer(secret))).status_code == 403


async def test_token_is_bound_to_its_tenant(client: httpx.AsyncClient, admin: Account) -> None:
    second = (
        await client.post("/api/v1/tenants", json={"name": "Branch"}, headers=admin.headers)
    ).json()
    secret = (
        await client.post("/api/v1/tokens", json={"name": "t"}, headers=admin.in_tenant())
    ).json()["token"]
    assert (
        await client.get("/api/v1/members", headers=bearer(secret, second["id"]))
    ).status_code == 404
    assert (
        await client.get("/api/v1/members", headers=bearer(secret, admin.tenant_id))
    ).status_code == 200


async def test_token_acts_with_the_intersection_of_its_and_its_users_permissions(
    app: FastAPI, client: httpx.AsyncClient, admin: Account
) -> None:
    analyst = await member_with_role(app, client, admin, ANALYST)
    secret = (
        await client.post(
            "/api/v1/tokens",
            json={"name": "t", "permissions": ["member:read", "risk:read"]},
            headers=analyst.in_tenant(),
        )
    ).json()["token"]
    assert (await client.get("/api/v1/members", headers=bearer(secret))).status_code == 200
    # demote the user to a custom role without member:read: the token loses it too
    role = (
        await client.post(
            "/api/v1/roles",
            json={"name": "Readers of risks", "level": 1, "permissions": ["risk:read"]},
            headers=admin.in_tenant(),
        )
    ).json()
    await client.patch(
        f"/api/v1/members/{analyst.user_id}",
        json={"role_id": role["id"]},
        headers=admin.in_tenant(),
    )
    assert (await client.get("/api/v1/members", headers=bearer(secret))).status_code == 403


async def test_revoke_and_rotate_take_effect_at_once(
    client: httpx.AsyncClient, admin: Account
) -> None:
    h = admin.in_tenant()
    body = (await client.post("/api/v1/tokens", json={"name": "t"}, headers=h)).json()
    assert (await client.get("/api/v1/members", headers=bearer(body["token"]))).status_code == 200
    rotated = (await client.post(f"/api/v1/tokens/{body['id']}/rotate", headers=h)).json()
    assert (await client.get("/api/v1/members", headers=bearer(body["token"]))).status_code == 401
    new = rotated["token"]
    assert (await client.get("/api/v1/members", headers=bearer(new))).status_code == 200
    assert (await client.delete(f"/api/v1/tokens/{rotated['id']}", headers=h)).status_code == 204
    assert (await client.get("/api/v1/members", headers=bearer(new))).status_code == 401


async def test_analysts_manage_only_their_own_tokens(
    app: FastAPI, client: httpx.AsyncClient, admin: Account
) -> None:
    analyst = await member_with_role(app, client, admin, ANALYST)
    admins_token = (
        await client.post("/api/v1/tokens", json={"name": "admin"}, headers=admin.in_tenant())
    ).json()
    await client.post("/api/v1/tokens", json={"name": "mine"}, headers=analyst.in_tenant())
    listed = (await client.get("/api/v1/tokens", headers=analyst.in_tenant())).json()
    assert [t["name"] for t in listed["items"]] == ["mine"]
    revoke = await client.delete(
        f"/api/v1/tokens/{admins_token['id']}", headers=analyst.in_tenant()
    )
    assert revoke.status_code == 403
    viewer = await member_with_role(app, client, admin, VIEWER)
    assert (await client.get("/api/v1/tokens", headers=viewer.in_tenant())).status_code == 403


async def test_other_tenants_tokens_are_404(client: httpx.AsyncClient, admin: Account) -> None:
    token = (
        await client.post("/api/v1/tokens", json={"name": "t"}, headers=admin.in_tenant())
    ).json()
    outsider = await register(client)
    response = await client.delete(f"/api/v1/tokens/{token['id']}", headers=outsider.in_tenant())
    assert response.status_code == 404
