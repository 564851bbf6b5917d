"""Saved views: a person's named register filter sets; names unique per person, nobody else's
to list or delete; the register page saves, lists and opens them."""

from __future__ import annotations

import re

import httpx
from fastapi import FastAPI

from openrisk.rbac.catalogue import ANALYST
from tests.api.rbac_helpers import member_with_role
from tests.conftest import Account
from tests.web.helpers import sign_in

VIEWS = "/api/v1/saved-views"


async def test_views_are_personal_and_named_once(
    app: FastAPI, client: httpx.AsyncClient, admin: Account
) -> None:
    h = admin.in_tenant()
    made = await client.post(
        VIEWS, json={"name": "Critical open", "query": "?severity=CRITICAL&page=4&x=1"}, headers=h
    )
    assert made.status_code == 201, made.text
    assert made.json()["query"] == "severity=CRITICAL"  # no page, nothing unknown
    again = await client.post(VIEWS, json={"name": "Critical open", "query": ""}, headers=h)
    assert again.status_code == 409
    bad = await client.post(VIEWS, json={"name": " ", "query": ""}, headers=h)
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "name"

    colleague = await member_with_role(app, client, admin, ANALYST)
    theirs = await client.get(VIEWS, headers=colleague.in_tenant(admin.tenant_id))
    assert theirs.status_code == 200 and theirs.json() == []
    stolen = await client.delete(
        f"{VIEWS}/{made.json()['id']}", headers=colleague.in_tenant(admin.tenant_id)
    )
    assert stolen.status_code == 404
    assert [v["name"] for v in (await client.get(VIEWS, headers=h)).json()] == ["Critical open"]
    deleted = await client.delete(f"{VIEWS}/{made.json()['id']}", headers=h)
    assert deleted.status_code == 204
    assert (await client.get(VIEWS, headers=h)).json() == []


async def test_the_register_saves_and_opens_views(
    client: httpx.AsyncClient, admin: Account
) -> None:
    browser = await sign_in(client, admin)
    page = await browser.get("/risks?severity=HIGH&sort=score&order=desc&col=score")
    query = re.search(r'name="query" value="([^"]*)"', page.text)
    assert query and "severity=HIGH" in query.group(1)
    saved = await browser.post(
        "/risks/views", {"name": "High first", "query": query.group(1).replace("&amp;", "&")}
    )
    assert saved.status_code == 303
    listed = await browser.get(saved.headers["location"])
    assert "View “High first” saved." in listed.text
    link = re.search(r'<a href="(/risks\?[^"]+)"[^>]*>High first</a>', listed.text)
    assert link and "severity=HIGH" in link.group(1)
    opened = await browser.get(link.group(1).replace("&amp;", "&"))
    assert opened.status_code == 200 and 'value="HIGH" checked' in opened.text
