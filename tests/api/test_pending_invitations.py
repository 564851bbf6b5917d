"""Pending invitations: listed (API and members page), renewed with a new one-time link (the old
one stops working) and withdrawn (the link is dead at once); other tenants cannot touch them."""

from __future__ import annotations

import uuid

import httpx

from openrisk.rbac.catalogue import VIEWER
from tests.conftest import TEST_PASSWORD, Account, register
from tests.web.helpers import sign_in

ACCEPT = "/api/v1/auth/invitations/accept"


async def _invite(client: httpx.AsyncClient, admin: Account) -> tuple[str, str]:
    email = f"invitee-{uuid.uuid4().hex[:6]}@example.com"
    made = await client.post(
        "/api/v1/members",
        json={"email": email, "role_id": str(VIEWER.id)},
        headers=admin.in_tenant(),
    )
    assert made.status_code == 201 and made.json()["status"] == "invited", made.text
    return email, str(made.json()["invitation_token"])


async def test_list_renew_and_revoke(client: httpx.AsyncClient, admin: Account) -> None:
    h = admin.in_tenant()
    email, first_token = await _invite(client, admin)
    listed = await client.get("/api/v1/members/invitations", headers=h)
    assert listed.status_code == 200, listed.text
    [pending] = listed.json()["items"]
    assert (pending["email"], pending["role_name"], pending["expired"]) == (email, "Viewer", False)

    renewed = await client.post(f"/api/v1/members/invitations/{pending['id']}/renew", headers=h)
    assert renewed.status_code == 200, renewed.text
    new_token = renewed.json()["invitation_token"]
    assert new_token != first_token
    dead = await client.post(ACCEPT, json={"token": first_token, "password": TEST_PASSWORD})
    assert dead.status_code == 404  # the previous link stopped working

    stranger = await register(client, tenant_name="Elsewhere")
    foreign = await client.delete(
        f"/api/v1/members/invitations/{pending['id']}", headers=stranger.in_tenant()
    )
    assert foreign.status_code == 404
    revoked = await client.delete(f"/api/v1/members/invitations/{pending['id']}", headers=h)
    assert revoked.status_code == 204
    gone = await client.post(ACCEPT, json={"token": new_token, "password": TEST_PASSWORD})
    assert gone.status_code == 404
    assert (await client.get("/api/v1/members/invitations", headers=h)).json()["total"] == 0
    audit = await client.get("/api/v1/audit-events?resource=invitation", headers=h)
    actions = {e["action"] for e in audit.json()["items"]}
    assert {"member.invite", "member.invite_renew", "member.invite_revoke"} <= actions


async def test_the_members_page_lists_renews_and_withdraws(
    client: httpx.AsyncClient, admin: Account
) -> None:
    email, _ = await _invite(client, admin)
    browser = await sign_in(client, admin)
    page = await browser.get("/settings/members")
    assert f'data-email="{email}"' in page.text and "Pending invitations" in page.text
    pending = (await client.get("/api/v1/members/invitations", headers=admin.in_tenant())).json()
    invitation_id = pending["items"][0]["id"]
    renewed = await browser.post(f"/settings/invitations/{invitation_id}/renew")
    assert renewed.status_code == 200
    assert "/invitations/" in renewed.text and "It is shown only now." in renewed.text
    withdrawn = await browser.post(f"/settings/invitations/{invitation_id}/revoke")
    assert withdrawn.status_code == 303
    after = await browser.get("/settings/members")
    assert "Invitation withdrawn" in after.text and f'data-email="{email}"' not in after.text
