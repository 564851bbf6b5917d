"""Driving the web UI with httpx: sign in through the form, read CSRF tokens, post forms."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

import httpx

from tests.conftest import Account

_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_of(html: str) -> str:
    found = _CSRF.search(html)
    assert found, "no CSRF token in the page"
    return found.group(1)


@dataclass
class Browser:
    """An httpx client with a signed-in web session."""

    http: httpx.AsyncClient
    csrf: str

    async def get(self, path: str) -> httpx.Response:
        return await self.http.get(path)

    async def post(self, path: str, data: Mapping[str, object] | None = None) -> httpx.Response:
        body = {"csrf_token": self.csrf, **(data or {})}
        return await self.http.post(path, data=body)  # type: ignore[arg-type]


async def sign_in(
    http: httpx.AsyncClient, account: Account, *, tenant_id: str | None = None
) -> Browser:
    """Sign in through the login form; then switch to ``tenant_id`` (default the account's)."""
    form = await http.get("/login")
    assert form.status_code == 200
    response = await http.post(
        "/login",
        data={
            "email": account.email,
            "password": account.password,
            "csrf_token": csrf_of(form.text),
            "next": "/",
        },
    )
    assert response.status_code == 303, response.text
    page = await http.get("/")
    if page.status_code == 303:
        page = await http.get(page.headers["location"])
    browser = Browser(http, csrf_of(page.text))
    switched = await browser.post(
        "/switch-tenant", {"tenant_id": tenant_id or account.tenant_id, "next": "/risks"}
    )
    assert switched.status_code == 303, switched.text
    return browser
