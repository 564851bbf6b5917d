"""The web UI's session: login, cookie, CSRF, logout, redirects, error pages, headers."""

from __future__ import annotations

import re
import uuid

import httpx
from fastapi import FastAPI

from openrisk.rbac.catalogue import VIEWER
from tests.api.rbac_helpers import member_with_role
from tests.conftest import Account, client_for, register
from tests.web.helpers import csrf_of, sign_in


async def test_pages_send_anonymous_visitors_to_the_login_form(client: httpx.AsyncClient) -> None:
    for path, target in (
        ("/", "/login"),
        ("/risks?status=ACTIVE", "/login?next=%2Frisks%3Fstatus%3DACTIVE"),
        ("/settings/roles", "/login?next=%2Fsettings%2Froles"),
    ):
        response = await client.get(path)
        assert response.status_code == 303, path
        assert response.headers["location"] == target
    assert (await client.post("/risks/new", data={})).headers["location"] == "/login"


async def test_login_sets_a_hardened_session_cookie(
    client: httpx.AsyncClient, admin: Account
) -> None:
    form = await client.get("/login")
    assert form.headers["content-type"].startswith("text/html")
    response = await client.post(
        "/login",
        data={
            "email": admin.email.upper(),
            "password": admin.password,
            "csrf_token": csrf_of(form.text),
            "next": "/risks",
        },
    )
    assert response.status_code == 303 and response.headers["location"] == "/risks"
    cookie = next(
        c for c in response.headers.get_list("set-cookie") if c.startswith("openrisk_session=")
    )
    attributes = {part.strip().lower() for part in cookie.split(";")}
    assert {"httponly", "samesite=lax", "path=/", "max-age=43200"} <= attributes
    assert "secure" not in attributes  # plain http in tests; https or the setting adds it
    page = await client.get("/risks")
    assert page.status_code == 200 and admin.email in page.text


async def test_login_errors_are_shown_in_the_form(
    client: httpx.AsyncClient, admin: Account
) -> None:
    token = csrf_of((await client.get("/login")).text)
    empty = await client.post("/login", data={"email": "", "password": "", "csrf_token": token})
    assert empty.status_code == 422
    assert 'id="f-email-error"' in empty.text and 'id="f-password-error"' in empty.text
    wrong = await client.post(
        "/login", data={"email": admin.email, "password": "wrong-password!", "csrf_token": token}
    )
    assert wrong.status_code == 401 and "Invalid email or password." in wrong.text
    forged = await client.post(
        "/login", data={"email": admin.email, "password": admin.password, "csrf_token": "x" * 32}
    )
    assert forged.status_code == 403
    assert "openrisk_session=" not in forged.headers.get("set-cookie", "")


async def test_the_next_page_is_never_another_site(app: FastAPI, admin: Account) -> None:
    for target in ("//evil.example/", "https://evil.example/", "/\\evil.example"):
        async with client_for(app) as http:
            token = csrf_of((await http.get("/login")).text)
            response = await http.post(
                "/login",
                data={
                    "email": admin.email,
                    "password": admin.password,
                    "csrf_token": token,
                    "next": target,
                },
            )
            assert response.headers["location"] == "/", target


async def test_a_tampered_or_foreign_cookie_is_not_a_session(
    app: FastAPI, client: httpx.AsyncClient, admin: Account
) -> None:
    await sign_in(client, admin)
    value = client.cookies["openrisk_session"]
    body, signature = value.split(".")
    client.cookies.set("openrisk_session", body + "." + signature[::-1])
    assert (await client.get("/risks")).status_code == 303
    client.cookies.set("openrisk_session", "garbage")
    assert (await client.get("/risks")).status_code == 303


async def test_logout_revokes_the_session_server_side(
    client: httpx.AsyncClient, admin: Account
) -> None:
    browser = await sign_in(client, admin)
    stolen = client.cookies["openrisk_session"]
    refused = await client.post("/logout", data={})
    assert refused.status_code == 403  # no CSRF token: not even a logout
    assert (await client.get("/risks")).status_code == 200
    response = await browser.post("/logout")
    assert response.status_code == 303 and response.headers["location"] == "/login"
    client.cookies.set("openrisk_session", stolen)  # replayed after logout
    assert (await client.get("/risks")).status_code == 303


async def test_forms_need_the_session_csrf_token(
    app: FastAPI, client: httpx.AsyncClient, admin: Account
) -> None:
    browser = await sign_in(client, admin)
    form = {"title": "Sneaky", "impact": "3", "probability": "3"}
    assert (await client.post("/risks/new", data=form)).status_code == 403
    wrong = await client.post("/risks/new", data={**form, "csrf_token": "A" * 43})
    assert wrong.status_code == 403 and "expired" in wrong.text
    async with client_for(app) as other_http:  # a token from another session does not work
        other = await sign_in(other_http, admin)
        assert other.csrf != browser.csrf
        moved = await client.post("/risks/new", data={**form, "csrf_token": other.csrf})
        assert moved.status_code == 403
    listed = await client.get("/api/v1/risks?q=Sneaky", headers=admin.in_tenant())
    assert listed.json()["total"] == 0


async def test_pages_carry_security_headers(client: httpx.AsyncClient, admin: Account) -> None:
    await sign_in(client, admin)
    for path in ("/login", "/", "/risks/" + str(uuid.uuid4())):
        response = await client.get(path)
        assert "default-src 'self'" in response.headers["content-security-policy"]
        assert response.headers["x-frame-options"] == "DENY"
        assert response.headers["cache-control"] == "no-store"
    assert (await client.get("/static/style.css")).status_code == 200


async def test_web_errors_are_html_and_api_errors_stay_problem_json(
    client: httpx.AsyncClient, admin: Account
) -> None:
    await sign_in(client, admin)
    missing = await client.get(f"/risks/{uuid.uuid4()}")
    assert missing.status_code == 404 and missing.headers["content-type"].startswith("text/html")
    assert "404" in missing.text and admin.email in missing.text  # the layout is kept
    malformed = await client.get("/risks/not-a-uuid")
    assert malformed.status_code == 404
    api = await client.get(f"/api/v1/risks/{uuid.uuid4()}", headers=admin.in_tenant())
    assert api.status_code == 404
    assert api.headers["content-type"] == "application/problem+json"


async def test_a_viewer_gets_no_controls_and_a_403_page(
    app: FastAPI, client: httpx.AsyncClient, admin: Account
) -> None:
    created = await client.post(
        "/api/v1/risks",
        json={"title": "Viewer can read", "impact": 2, "probability": 2},
        headers=admin.in_tenant(),
    )
    risk_id = created.json()["id"]
    viewer = await member_with_role(app, client, admin, VIEWER)
    async with client_for(app) as http:
        browser = await sign_in(http, viewer)
        listing = await browser.get("/risks")
        assert "Viewer can read" in listing.text and "New risk" not in listing.text
        detail = await browser.get(f"/risks/{risk_id}")
        assert detail.status_code == 200
        assert "/edit" not in detail.text and f"/risks/{risk_id}/delete" not in detail.text
        assert ">Audit log<" not in detail.text  # no nav entry without audit:read
        assert (await browser.get("/risks/new")).status_code == 403
        assert (await browser.get("/audit")).status_code == 403
        forged = await browser.post("/risks/new", {"title": "x", "impact": 1, "probability": 1})
        assert forged.status_code == 403 and "risk:create" in forged.text
        deleted = await browser.post(f"/risks/{risk_id}/delete")
        assert deleted.status_code == 403
    still = await client.get(f"/api/v1/risks/{risk_id}", headers=admin.in_tenant())
    assert still.status_code == 200


async def test_switching_tenant_needs_a_membership(
    app: FastAPI, client: httpx.AsyncClient, admin: Account
) -> None:
    stranger = await register(client, tenant_name="Stranger Inc")
    second = await client.post(
        "/api/v1/tenants", json={"name": "Second Org"}, headers=admin.headers
    )
    assert second.status_code == 201
    async with client_for(app) as http:
        browser = await sign_in(http, admin)
        denied = await browser.post("/switch-tenant", {"tenant_id": stranger.tenant_id})
        assert denied.status_code == 404
        assert (await browser.post("/switch-tenant", {"tenant_id": "nope"})).status_code == 404
        moved = await browser.post(
            "/switch-tenant", {"tenant_id": second.json()["id"], "next": "/assets"}
        )
        assert moved.status_code == 303 and moved.headers["location"] == "/assets"
        page = await browser.get("/")
        assert re.search(r"Dashboard <span class=\"muted\">· Second Org", page.text)


async def test_a_left_tenant_falls_back_to_the_default_one(
    app: FastAPI, client: httpx.AsyncClient, admin: Account
) -> None:
    viewer = await member_with_role(app, client, admin, VIEWER)
    async with client_for(app) as http:
        browser = await sign_in(http, viewer)  # now in the admin's tenant
        removed = await client.delete(
            f"/api/v1/members/{viewer.user_id}", headers=admin.in_tenant()
        )
        assert removed.status_code == 204
        page = await browser.get("/")
        assert page.status_code == 200 and "Own Sandbox" in page.text
        assert "openrisk_session=" in page.headers.get("set-cookie", "")


async def test_a_suspended_tenant_refuses_pages_but_keeps_the_switcher(
    app: FastAPI, client: httpx.AsyncClient, admin: Account
) -> None:
    second = await client.post(
        "/api/v1/tenants", json={"name": "Still Open"}, headers=admin.headers
    )
    async with client_for(app) as http:
        browser = await sign_in(http, admin)
        assert (await browser.get("/risks")).status_code == 200
        suspended = await client.patch(
            f"/api/v1/tenants/{admin.tenant_id}",
            json={"status": "suspended"},
            headers=admin.headers,
        )
        assert suspended.status_code == 200
        page = await browser.get("/risks")
        assert page.status_code == 403 and "suspended" in page.text
        assert 'action="/switch-tenant"' in page.text and "Still Open" in page.text
        moved = await browser.post("/switch-tenant", {"tenant_id": second.json()["id"]})
        assert moved.status_code == 303
        assert (await browser.get("/risks")).status_code == 200
