"""An API token acts for one owner in one tenant: no take-over, no view of other tenants, and
no tokens minted by tokens."""

from __future__ import annotations

import httpx
from fastapi import FastAPI

from openrisk.rbac.catalogue import ANALYST, MANAGER
from tests.api.rbac_helpers import member_with_role
from tests.conftest import Account

TOKENS = "/api/v1/tokens"


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


async def _token(client: httpx.AsyncClient, owner: Account, name: str = "ci") -> dict[str, str]:
    created = await client.post(TOKENS, json={"name": name}, headers=owner.in_tenant())
    assert created.status_code == 201, created.text
    body: dict[str, str] = created.json()
    return body


async def test_only_the_owner_rotates_a_token_and_an_admin_may_still_revoke_it(
    app: FastAPI, client: httpx.AsyncClient, admin: Account
) -> None:
    member = await member_with_role(app, client, admin, MANAGER)
    token = await _token(client, member)

    taken = await client.post(f"{TOKENS}/{token['id']}/rotate", headers=admin.in_tenant())
    assert taken.status_code == 403
    assert "owner" in taken.json()["detail"]
    # the owner's token still works: nothing was revoked or handed out
    assert (await client.get("/api/v1/members", headers=bearer(token["token"]))).status_code == 200

    rotated = await client.post(f"{TOKENS}/{token['id']}/rotate", headers=member.in_tenant())
    assert rotated.status_code == 201
    new = rotated.json()
    revoked = await client.delete(f"{TOKENS}/{new['id']}", headers=admin.in_tenant())
    assert revoked.status_code == 204
    assert (await client.get("/api/v1/members", headers=bearer(new["token"]))).status_code == 401


async def test_a_token_sees_only_its_own_tenant_in_tenant_listings(
    app: FastAPI, client: httpx.AsyncClient, admin: Account
) -> None:
    member = await member_with_role(app, client, admin, ANALYST)  # also Admin of a sandbox
    token = await _token(client, member)

    with_session = await client.get("/api/v1/tenants", headers=member.headers)
    assert with_session.json()["total"] == 2

    listed = await client.get("/api/v1/tenants", headers=bearer(token["token"]))
    assert listed.status_code == 200
    assert [t["id"] for t in listed.json()["items"]] == [admin.tenant_id]
    assert listed.json()["total"] == 1
    me = await client.get("/api/v1/auth/me", headers=bearer(token["token"]))
    assert [m["tenant_id"] for m in me.json()["memberships"]] == [admin.tenant_id]


async def test_tokens_cannot_create_rotate_tokens_or_create_tenants(
    client: httpx.AsyncClient, admin: Account
) -> None:
    token = await _token(client, admin)
    headers = bearer(token["token"])
    minted = await client.post(TOKENS, json={"name": "child"}, headers=headers)
    assert minted.status_code == 403
    rotated = await client.post(f"{TOKENS}/{token['id']}/rotate", headers=headers)
    assert rotated.status_code == 403
    tenant = await client.post("/api/v1/tenants", json={"name": "Escape"}, headers=headers)
    assert tenant.status_code == 403
    # a leaked token can still be revoked with itself
    assert (await client.delete(f"{TOKENS}/{token['id']}", headers=headers)).status_code == 204
    assert (await client.get("/api/v1/members", headers=headers)).status_code == 401
