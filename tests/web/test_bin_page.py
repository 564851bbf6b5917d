"""The bin page: reachable from the register for who may delete, an empty state that says the
bin is empty, restore with a message, a second restore of the same risk explained, a page past
the end named as such; an Analyst sees and restores only its own deleted risks."""

from __future__ import annotations

import re

import httpx
from fastapi import FastAPI

from openrisk.rbac.catalogue import ANALYST
from tests.api.rbac_helpers import member_with_role
from tests.api.test_risks_helpers import RISKS, new_risk
from tests.conftest import Account, client_for
from tests.web.helpers import sign_in


async def test_empty_bin_then_restore_with_a_message(
    client: httpx.AsyncClient, admin: Account
) -> None:
    browser = await sign_in(client, admin)
    register = await browser.get("/risks")
    assert 'href="/risks/bin"' in register.text
    empty = await browser.get("/risks/bin")
    assert empty.status_code == 200
    assert "The bin is empty: no deleted risk to restore." in empty.text

    risk = await new_risk(client, admin, title="Laptop theft")
    deleted = await browser.post(f"/risks/{risk['id']}/delete")
    assert deleted.status_code == 303
    listed = await browser.get("/risks/bin")
    assert "Laptop theft" in listed.text and 'Deleted risks <span class="muted">(1)' in listed.text
    assert f'action="/risks/{risk["id"]}/restore"' in listed.text
    assert 'data-testid="empty-state"' not in listed.text

    restored = await browser.post(f"/risks/{risk['id']}/restore")
    assert restored.status_code == 303
    assert restored.headers["location"] == f"/risks/{risk['id']}"
    detail = await browser.get(restored.headers["location"])
    assert "“Laptop theft” is back in the register." in detail.text
    again = await browser.post(f"/risks/{risk['id']}/restore")
    assert again.status_code == 303
    assert "This risk was already restored." in (await browser.get(again.headers["location"])).text
    api = await client.get(f"{RISKS}/{risk['id']}", headers=admin.in_tenant())
    assert api.status_code == 200

    past = await browser.get("/risks/bin?page=5")
    assert "The bin is empty" in past.text  # nothing deleted any more


async def test_a_page_past_the_end_of_the_bin_says_so(
    client: httpx.AsyncClient, admin: Account
) -> None:
    browser = await sign_in(client, admin)
    risk = await new_risk(client, admin)
    await browser.post(f"/risks/{risk['id']}/delete")
    past = await browser.get("/risks/bin?page=3")
    assert "No deleted risk on this page: the bin has 1 page." in past.text


async def test_an_analyst_sees_and_restores_only_its_own(
    app: FastAPI, client: httpx.AsyncClient, admin: Account
) -> None:
    analyst = await member_with_role(app, client, admin, ANALYST)
    mine = await new_risk(client, analyst, title="Analyst risk")
    theirs = await new_risk(client, admin, title="Admin risk")
    for risk in (mine, theirs):
        await client.delete(f"{RISKS}/{risk['id']}", headers=admin.in_tenant())
    async with client_for(app) as other:
        browser = await sign_in(other, analyst, tenant_id=admin.tenant_id)
        page = await browser.get("/risks/bin")
        assert page.status_code == 200
        assert "Analyst risk" in page.text and "Admin risk" not in page.text
        assert "You see the risks you own." in page.text
        assert re.findall(r'action="/risks/([0-9a-f-]{36})/restore"', page.text) == [mine["id"]]
        refused = await browser.post(f"/risks/{theirs['id']}/restore")
        assert refused.status_code == 403
        done = await browser.post(f"/risks/{mine['id']}/restore")
        assert done.status_code == 303
