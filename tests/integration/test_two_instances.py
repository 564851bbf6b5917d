"""Two app instances sharing PostgreSQL and Redis, as two hosts would.

A role change or a token revocation made through one instance takes effect on the very next
request served by the other, although each keeps resolved memberships in process memory.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack

import httpx
import pytest
import pytest_asyncio
from fastapi import FastAPI
from sqlalchemy import event

from openrisk.app import create_app
from openrisk.rbac.catalogue import VIEWER
from openrisk.tenants.service import add_member
from tests.conftest import Account, client_for, make_settings, register
from tests.services import need, redis_available

SHARED_REDIS = "redis://127.0.0.1:6379/14"


@pytest_asyncio.fixture
async def two_apps(postgres_url: str) -> AsyncIterator[tuple[FastAPI, FastAPI]]:
    need(redis_available(), "Redis at 127.0.0.1:6379")
    settings = make_settings(postgres_url, cache_backend="redis", redis_url=SHARED_REDIS)
    apps = (create_app(settings), create_app(settings))
    async with AsyncExitStack() as stack:
        for app in apps:
            await stack.enter_async_context(app.router.lifespan_context(app))
        yield apps


def count_queries(app: FastAPI) -> list[str]:
    statements: list[str] = []
    event.listen(
        app.state.db.engine.sync_engine,
        "before_cursor_execute",
        lambda conn, cursor, statement, *args: statements.append(statement),
    )
    return statements


async def _viewer_in(app: FastAPI, http: httpx.AsyncClient, admin: Account) -> Account:
    viewer = await register(http)
    async with app.state.db.session() as session:
        await add_member(
            session,
            tenant_id=uuid.UUID(admin.tenant_id),
            user_id=uuid.UUID(viewer.user_id),
            role_id=VIEWER.id,
        )
        await session.commit()
    viewer.tenant_id = admin.tenant_id
    return viewer


@pytest.mark.redis
async def test_demotion_through_one_instance_bites_on_the_next_request_to_the_other(
    two_apps: tuple[FastAPI, FastAPI],
) -> None:
    app_a, app_b = two_apps
    async with client_for(app_a) as a, client_for(app_b) as b:
        admin = await register(a)
        viewer = await _viewer_in(app_a, a, admin)
        assert (await b.get("/api/v1/members", headers=viewer.in_tenant())).status_code == 200

        queries = count_queries(app_b)
        assert (await b.get("/api/v1/permissions", headers=viewer.in_tenant())).status_code == 200
        assert queries == []  # the membership came from B's process cache: no database trip

        no_members = (
            await a.post(
                "/api/v1/roles",
                json={"name": "Risk readers", "level": 0, "permissions": ["risk:read"]},
                headers=admin.in_tenant(),
            )
        ).json()
        demoted = await a.patch(
            f"/api/v1/members/{viewer.user_id}",
            json={"role_id": no_members["id"]},
            headers=admin.in_tenant(),
        )
        assert demoted.status_code == 200
        assert (await b.get("/api/v1/members", headers=viewer.in_tenant())).status_code == 403

        removed = await a.delete(f"/api/v1/members/{viewer.user_id}", headers=admin.in_tenant())
        assert removed.status_code == 204
        assert (await b.get("/api/v1/members", headers=viewer.in_tenant())).status_code == 404


@pytest.mark.redis
async def test_token_revoked_through_one_instance_is_refused_by_the_other(
    two_apps: tuple[FastAPI, FastAPI],
) -> None:
    app_a, app_b = two_apps
    async with client_for(app_a) as a, client_for(app_b) as b:
        admin = await register(a)
        created = (
            await a.post("/api/v1/tokens", json={"name": "ci"}, headers=admin.in_tenant())
        ).json()
        token_headers = {"Authorization": f"Bearer {created['token']}"}
        for _ in range(2):  # the second answer comes from B's process cache
            assert (await b.get("/api/v1/members", headers=token_headers)).status_code == 200
        assert (
            await a.delete(f"/api/v1/tokens/{created['id']}", headers=admin.in_tenant())
        ).status_code == 204
        assert (await b.get("/api/v1/members", headers=token_headers)).status_code == 401
