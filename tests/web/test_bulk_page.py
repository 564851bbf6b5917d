"""Bulk actions from the register: select rows, set their status, owner or delete them; each
row's result is listed (a risk of another tenant is refused, the others are done)."""

from __future__ import annotations

import re

import httpx

from tests.conftest import Account, register
from tests.web.helpers import sign_in


async def _risk(client: httpx.AsyncClient, account: Account, title: str) -> str:
    made = await client.post(
        "/api/v1/risks",
        json={"title": title, "impact": 2, "probability": 3, "status": "DRAFT"},
        headers=account.in_tenant(),
    )
    assert made.status_code == 201, made.text
    return str(made.json()["id"])


async def test_bulk_status_lists_each_rows_result(
    client: httpx.AsyncClient, admin: Account
) -> None:
    mine = [await _risk(client, admin, f"Bulk risk {n}") for n in range(2)]
    stranger = await register(client, tenant_name="Elsewhere")
    theirs = await _risk(client, stranger, "Not yours")
    browser = await sign_in(client, admin)
    page = await browser.get("/risks")
    assert 'form="bulk"' in page.text and 'data-select-all="ids"' in page.text
    done = await client.post(
        "/risks/bulk",
        data={
            "csrf_token": browser.csrf,
            "bulk_action": "status",
            "bulk_status": "ACTIVE",
            "ids": [*mine, theirs],
            "back": "/risks?sort=title",
        },
    )
    assert done.status_code == 200, done.text
    assert "2 of 3 done; 1 refused" in done.text
    rows = re.findall(r"<tr>\s*<td>(.*?)</td>\s*<td>(.*?)</td>", done.text, re.S)
    assert sum("Done" in result for _, result in rows) == 2
    assert any("Refused" in result for _, result in rows)
    assert 'href="/risks?sort=title"' in done.text
    for risk_id in mine:
        api = await client.get(f"/api/v1/risks/{risk_id}", headers=admin.in_tenant())
        assert api.json()["status"] == "ACTIVE"
    other = await client.get(f"/api/v1/risks/{theirs}", headers=stranger.in_tenant())
    assert other.json()["status"] == "DRAFT"


async def test_bulk_delete_and_an_empty_selection(
    client: httpx.AsyncClient, admin: Account
) -> None:
    ids = [await _risk(client, admin, f"Doomed {n}") for n in range(2)]
    browser = await sign_in(client, admin)
    empty = await client.post(
        "/risks/bulk", data={"csrf_token": browser.csrf, "bulk_action": "delete"}
    )
    assert empty.status_code == 303
    assert "Select at least one risk." in (await client.get(empty.headers["location"])).text
    done = await client.post(
        "/risks/bulk", data={"csrf_token": browser.csrf, "bulk_action": "delete", "ids": ids}
    )
    assert "2 of 2 done" in done.text and "Risks deleted" in done.text
    listed = await client.get("/api/v1/risks", headers=admin.in_tenant())
    assert listed.json()["total"] == 0
