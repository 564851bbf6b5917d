"""The hot path (core/cache/hot_path.py): a repeated authorised GET is answered from the cache
before routing - with exactly the full path's answer, and never when the full path would
answer differently (a write, an authorization change, another caller, an expired token)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

import httpx
from fastapi import FastAPI
from prometheus_client import REGISTRY
from sqlalchemy import delete

from openrisk.app import create_app
from openrisk.core.cache.hot_path import HotPath
from openrisk.rbac.catalogue import VIEWER
from openrisk.tenants.models import Membership
from tests.api.test_risks_helpers import RISKS, member, new_risk
from tests.conftest import Account, client_for, make_settings, register

COMPARED_HEADERS = ("content-type", "content-length", "etag", "x-cache")


def hot_path(app: FastAPI) -> HotPath:
    found: HotPath = app.state.hot_path
    return found


@contextmanager
def counts_hot_path_answers(app: FastAPI) -> Iterator[list[int]]:
    """Yields a one-item list holding, once the block ends, the hot path's answers in it."""
    before = hot_path(app).hits
    counted = [0]
    yield counted
    counted[0] = hot_path(app).hits - before


def requests_total(route: str, status: str) -> float:
    labels = {"method": "GET", "route": route, "status": status}
    return REGISTRY.get_sample_value("openrisk_http_requests_total", labels) or 0.0


async def test_a_repeated_get_gets_exactly_the_full_paths_answer(
    app: FastAPI, client: httpx.AsyncClient, admin: Account
) -> None:
    risk = await new_risk(client, admin)
    url, h = f"{RISKS}/{risk['id']}", admin.in_tenant()
    first = await client.get(url, headers=h)
    assert first.headers["x-cache"] == "MISS"
    hot_path(app).enabled = False
    try:
        full_path_hit = await client.get(url, headers=h)
    finally:
        hot_path(app).enabled = True
    with counts_hot_path_answers(app) as answered:
        hot = await client.get(url, headers=h)
    assert answered == [1]
    assert hot.status_code == full_path_hit.status_code == 200
    assert hot.content == full_path_hit.content == first.content
    for name in COMPARED_HEADERS:
        assert hot.headers[name] == full_path_hit.headers[name], name
    assert hot.headers["x-request-id"]


async def test_if_none_match_gets_304_on_the_hot_path(
    app: FastAPI, client: httpx.AsyncClient, admin: Account
) -> None:
    risk = await new_risk(client, admin)
    url, h = f"{RISKS}/{risk['id']}", admin.in_tenant()
    etag = (await client.get(url, headers=h)).headers["etag"]
    with counts_hot_path_answers(app) as answered:
        revalidated = await client.get(url, headers={**h, "If-None-Match": etag})
        changed = await client.get(url, headers={**h, "If-None-Match": '"other"'})
    assert answered == [2]
    assert revalidated.status_code == 304 and revalidated.content == b""
    assert revalidated.headers["etag"] == etag and revalidated.headers["x-cache"] == "HIT"
    assert changed.status_code == 200 and changed.json()["id"] == risk["id"]


async def test_a_write_is_seen_by_the_next_read(
    app: FastAPI, client: httpx.AsyncClient, admin: Account
) -> None:
    risk = await new_risk(client, admin, title="Before")
    url, h = f"{RISKS}/{risk['id']}", admin.in_tenant()
    listed = f"{RISKS}?sort=title"
    for _ in range(2):
        await client.get(url, headers=h)
        await client.get(listed, headers=h)
    patched = await client.patch(url, json={"title": "After"}, headers={**h, "If-Match": '"1"'})
    assert patched.status_code == 200, patched.text
    detail = await client.get(url, headers=h)
    assert (detail.json()["title"], detail.headers["x-cache"]) == ("After", "MISS")
    titles = [item["title"] for item in (await client.get(listed, headers=h)).json()["items"]]
    assert "After" in titles and "Before" not in titles


async def test_a_removed_member_is_refused_on_the_next_request(
    app: FastAPI, client: httpx.AsyncClient, admin: Account
) -> None:
    viewer = await member(app, client, admin, VIEWER)
    risk = await new_risk(client, admin)
    url = f"{RISKS}/{risk['id']}"
    with counts_hot_path_answers(app) as answered:
        for _ in range(3):
            assert (await client.get(url, headers=viewer.in_tenant())).status_code == 200
    assert answered[0] >= 1
    removed = await client.delete(f"/api/v1/members/{viewer.user_id}", headers=admin.in_tenant())
    assert removed.status_code == 204, removed.text
    refused = await client.get(url, headers=viewer.in_tenant())
    assert refused.status_code in (403, 404)
    assert refused.headers["content-type"] == "application/problem+json"


async def test_the_same_url_with_other_credentials_or_tenant_is_decided_afresh(
    app: FastAPI, client: httpx.AsyncClient, admin: Account
) -> None:
    risk = await new_risk(client, admin)
    url = f"{RISKS}/{risk['id']}"
    for _ in range(2):
        assert (await client.get(url, headers=admin.in_tenant())).status_code == 200
    stranger = await register(client, tenant_name="Elsewhere")
    assert (await client.get(url, headers=stranger.in_tenant())).status_code == 404
    branch = await client.post("/api/v1/tenants", json={"name": "Branch"}, headers=admin.headers)
    assert branch.status_code == 201, branch.text
    in_branch = admin.in_tenant(branch.json()["id"])
    assert (await client.get(url, headers=in_branch)).status_code == 404


async def test_an_expired_token_is_refused_even_for_a_remembered_request(
    app: FastAPI, client: httpx.AsyncClient, admin: Account
) -> None:
    risk = await new_risk(client, admin)
    url = f"{RISKS}/{risk['id']}"
    codec = app.state.codec
    ttl = codec.access_ttl
    codec.access_ttl = timedelta(seconds=3)  # long enough for two requests on a busy host
    try:
        login = await client.post(
            "/api/v1/auth/login", json={"email": admin.email, "password": admin.password}
        )
    finally:
        codec.access_ttl = ttl
    token = login.json()["access_token"]
    h = {"Authorization": f"Bearer {token}", "X-Tenant-ID": admin.tenant_id}
    with counts_hot_path_answers(app) as answered:
        await client.get(url, headers=h)
        assert (await client.get(url, headers=h)).status_code == 200
    assert answered == [1]
    expires_at = codec.decode_access(token).expires_at.timestamp()
    await asyncio.sleep(max(0.0, expires_at - time.time()) + 0.2)
    assert (await client.get(url, headers=h)).status_code == 401


async def test_api_token_requests_take_the_full_path_and_are_recorded(
    app: FastAPI, client: httpx.AsyncClient, admin: Account
) -> None:
    risk = await new_risk(client, admin)
    created = await client.post(
        "/api/v1/tokens", json={"name": "reader"}, headers=admin.in_tenant()
    )
    assert created.status_code == 201, created.text
    token = {"Authorization": f"Bearer {created.json()['token']}"}
    url = f"{RISKS}/{risk['id']}"
    with counts_hot_path_answers(app) as answered:
        statuses = [(await client.get(url, headers=token)).headers["x-cache"] for _ in range(3)]
    assert answered == [0]
    assert statuses[1:] == ["HIT", "HIT"]  # still cached, through the full path
    listed = (await client.get("/api/v1/tokens", headers=admin.in_tenant())).json()
    [reader] = [t for t in listed["items"] if t["id"] == created.json()["id"]]
    assert reader["last_used_at"] is not None


async def test_hot_path_answers_are_counted_under_their_route_template(
    app: FastAPI, client: httpx.AsyncClient, admin: Account
) -> None:
    risk = await new_risk(client, admin)
    url, h = f"{RISKS}/{risk['id']}", admin.in_tenant()
    await client.get(url, headers=h)
    route = "/api/v1/risks/{risk_id}"
    before = requests_total(route, "200")
    with counts_hot_path_answers(app) as answered:
        await client.get(url, headers=h)
    assert answered == [1]
    assert requests_total(route, "200") == before + 1
    assert requests_total(f"{RISKS}/{uuid.UUID(risk['id'])}", "200") == 0


async def test_an_unannounced_membership_change_is_seen_within_the_authz_cache_ttl(
    database_url: str,
) -> None:
    """Defence in depth: a change that bypassed the services (SQL by hand) publishes no authz
    event; the authorization cache's TTL bounds how long it goes unseen, hot path included."""
    app = create_app(make_settings(database_url))
    app.state.authz.ttl_s = 30.0
    later = [0.0]  # the clocks of the authorization cache and the hot path, moved by the test
    app.state.authz._clock = lambda: time.monotonic() + later[0]
    app.state.hot_path._clock = lambda: time.time() + later[0]
    async with app.router.lifespan_context(app), client_for(app) as client:
        admin = await register(client)
        viewer = await member(app, client, admin, VIEWER)
        risk = await new_risk(client, admin)
        url = f"{RISKS}/{risk['id']}"
        with counts_hot_path_answers(app) as answered:
            for _ in range(3):
                assert (await client.get(url, headers=viewer.in_tenant())).status_code == 200
        assert answered[0] >= 1
        async with app.state.db.session() as session:
            await session.execute(
                delete(Membership).where(
                    Membership.user_id == uuid.UUID(viewer.user_id),
                    Membership.tenant_id == uuid.UUID(admin.tenant_id),
                )
            )
            await session.commit()
        assert (await client.get(url, headers=viewer.in_tenant())).status_code == 200  # unseen
        later[0] = 30.1
        assert (await client.get(url, headers=viewer.in_tenant())).status_code in (403, 404)
