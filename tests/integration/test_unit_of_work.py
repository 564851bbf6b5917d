"""The unit of work: a change, its events and its invalidation commit together or not at all,
and a generation bump that failed is applied later by any process (on SQLite and PostgreSQL).
"""

from __future__ import annotations

import socket
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack
from datetime import timedelta
from typing import Any

import pytest
import pytest_asyncio
from fastapi import FastAPI
from sqlalchemy import event, func, select
from sqlalchemy.orm import Session

from openrisk.app import create_app
from openrisk.core.cache.base import CacheUnavailable
from openrisk.core.cache.invalidation import risk_key
from openrisk.core.outbox import INVALIDATE_TOPIC, OutboxRow, sweep_invalidations
from openrisk.core.uow import UnitOfWork
from openrisk.rbac.service import resolve_membership
from openrisk.risks import commands
from openrisk.risks.models import Risk
from openrisk.risks.schemas import RiskCreate
from tests.conftest import Account, client_for, collect_relayed, make_settings, register
from tests.integration.app_role import app_role_database
from tests.services import need, redis_available

SHARED_REDIS = "redis://127.0.0.1:6379/14"
QUIET = {"outbox_interval_s": 300}  # no relay or sweeper pass unless a test asks for one


def _dead_port() -> int:
    """A loopback port nothing listens on: a Redis that is down."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest_asyncio.fixture
async def quiet_app(database_url: str) -> AsyncIterator[FastAPI]:
    app = create_app(make_settings(database_url, **QUIET))
    async with app.router.lifespan_context(app):
        yield app


async def _account(app: FastAPI) -> Account:
    async with client_for(app) as http:
        return await register(http)


async def _outbox(app: FastAPI, tenant_id: str) -> list[OutboxRow]:
    async with app.state.db.session() as session:
        rows = await session.scalars(
            select(OutboxRow).where(OutboxRow.tenant_id == uuid.UUID(tenant_id))
        )
        return list(rows)


async def _risks(app: FastAPI, tenant_id: str) -> int:
    async with app.state.db.session() as session:
        count = await session.scalar(
            select(func.count()).select_from(Risk).where(Risk.tenant_id == uuid.UUID(tenant_id))
        )
        return int(count or 0)


async def _create(app: FastAPI, account: Account, *, fail_commit: bool = False) -> None:
    async with app.state.db.session() as session:
        membership = await resolve_membership(
            session, user_id=uuid.UUID(account.user_id), tenant_ref=account.tenant_id
        )
        # no relay to wake: the test looks at the event row before handing it on
        uow = UnitOfWork(session, invalidator=app.state.cache_invalidator)
        if fail_commit:

            def refuse(sync_session: Session) -> None:
                raise RuntimeError("the database refused the commit")

            event.listen(session.sync_session, "before_commit", refuse)
        await commands.create_risk(
            uow=uow,
            context=membership.context(),
            data=RiskCreate(title="Outbox me", impact=3, probability=4),
        )


async def test_an_event_row_commits_with_its_change(
    quiet_app: FastAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    account = await _account(quiet_app)
    await _create(quiet_app, account)
    assert await _risks(quiet_app, account.tenant_id) == 1
    rows = await _outbox(quiet_app, account.tenant_id)
    # the event waits for the relay; the invalidation was applied and its row deleted
    assert [row.topic for row in rows] == ["risk.created"]
    assert rows[0].payload["data"]["title"] == "Outbox me"

    seen = collect_relayed("risk.", monkeypatch)
    await quiet_app.state.jobs.drain()
    assert [(e.type, e.id) for e in seen] == [("risk.created", rows[0].id)]
    assert await _outbox(quiet_app, account.tenant_id) == []


async def test_a_rolled_back_change_leaves_no_event(quiet_app: FastAPI) -> None:
    account = await _account(quiet_app)
    with pytest.raises(RuntimeError, match="refused the commit"):
        await _create(quiet_app, account, fail_commit=True)
    assert await _risks(quiet_app, account.tenant_id) == 0
    assert await _outbox(quiet_app, account.tenant_id) == []


@pytest_asyncio.fixture
async def writer_and_sweeper(database_url: str) -> AsyncIterator[tuple[FastAPI, FastAPI]]:
    """Two instances on one database: the writer's Redis is unreachable, the other's is up."""
    need(redis_available(), "Redis at 127.0.0.1:6379")
    down = f"redis://127.0.0.1:{_dead_port()}/0"
    settings: dict[str, Any] = {"cache_backend": "redis", **QUIET}
    writer = create_app(make_settings(database_url, redis_url=down, **settings))
    sweeper = create_app(make_settings(database_url, redis_url=SHARED_REDIS, **settings))
    async with AsyncExitStack() as stack:
        for app in (writer, sweeper):
            await stack.enter_async_context(app.router.lifespan_context(app))
        yield writer, sweeper


async def test_a_failed_bump_is_applied_by_another_instance(
    writer_and_sweeper: tuple[FastAPI, FastAPI],
) -> None:
    writer, sweeper = writer_and_sweeper
    account = await _account(writer)
    generations = sweeper.state.response_cache.generations
    before = await generations.current(account.tenant_id, ["risks"])

    async with client_for(writer) as http:
        created = await http.post(
            "/api/v1/risks",
            json={"title": "Written while Redis is away", "impact": 2, "probability": 2},
            headers=account.in_tenant(),
        )
    assert created.status_code == 201, created.text  # a cache outage never fails a write
    [left] = [r for r in await _outbox(writer, account.tenant_id) if r.topic == INVALIDATE_TOPIC]
    assert [account.tenant_id, ["risks", risk_key(created.json()["id"])]] in left.payload["bumps"]

    # the row is in the database: any instance applies it, even if the writer exits now
    applied = await sweep_invalidations(
        sweeper.state.db, sweeper.state.cache_invalidator, older_than=timedelta(0)
    )
    assert applied >= 1
    assert INVALIDATE_TOPIC not in {r.topic for r in await _outbox(sweeper, account.tenant_id)}
    after = await generations.current(account.tenant_id, ["risks"])
    assert after["risks"] != before["risks"]


@pytest.fixture(scope="module")
def restricted_url() -> Iterator[str]:
    with app_role_database() as url:
        yield url


async def test_the_outbox_works_through_row_level_security(
    restricted_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As the app role (no BYPASSRLS): a tenant-bound request writes its rows, and the relay,
    bound to no tenant, sees every tenant's rows."""
    app = create_app(make_settings(restricted_url, **QUIET))
    seen = collect_relayed("risk.", monkeypatch)
    async with app.router.lifespan_context(app), client_for(app) as http:
        accounts = [await register(http, tenant_name=name) for name in ("Alpha", "Beta")]
        for account in accounts:
            created = await http.post(
                "/api/v1/risks",
                json={"title": "Behind the wall", "impact": 1, "probability": 1},
                headers=account.in_tenant(),
            )
            assert created.status_code == 201, created.text
        await app.state.jobs.drain()
    assert sorted(str(e.tenant_id) for e in seen) == sorted(a.tenant_id for a in accounts)


async def test_an_authorization_change_whose_bump_failed_answers_503_and_is_finished_later(
    writer_and_sweeper: tuple[FastAPI, FastAPI],
) -> None:
    """Revoked access must not stay alive silently: the logout is saved, the answer says it
    may not be effective everywhere yet, and another instance's sweeper makes it so."""
    writer, sweeper = writer_and_sweeper
    account = await _account(writer)
    authz = sweeper.state.authz
    before = await authz.generation()
    async with client_for(writer) as http:
        ended = await http.post(
            "/api/v1/auth/logout", json={"refresh_token": account.refresh_token}
        )
        assert ended.status_code == 503, ended.text
        assert ended.headers["Retry-After"]
        again = await http.post(
            "/api/v1/auth/refresh", json={"refresh_token": account.refresh_token}
        )
        assert again.status_code == 401  # the sign-in did end
    async with writer.state.db.session() as session:
        left = list(
            await session.scalars(select(OutboxRow).where(OutboxRow.topic == INVALIDATE_TOPIC))
        )
    assert any([None, ["authz"]] in row.payload["bumps"] for row in left)
    await sweep_invalidations(
        sweeper.state.db, sweeper.state.cache_invalidator, older_than=timedelta(0)
    )
    assert await authz.generation() != before


@pytest.fixture
def redis_writing_only_one_tenant() -> Iterator[tuple[str, str, str]]:
    """A Redis user that reads every key but writes only tenant B's: to this user's cache
    tenant A's generations are refused, as a cluster master that is away refuses its slots,
    while tenant B's are taken. Yields (redis URL, tenant A, tenant B)."""
    need(redis_available(), "Redis at 127.0.0.1:6379")
    import redis

    admin = redis.Redis(host="127.0.0.1", port=6379)
    user, refused, taken = f"sweeper-{uuid.uuid4().hex[:8]}", str(uuid.uuid4()), str(uuid.uuid4())
    admin.execute_command(
        "ACL", "SETUSER", user, "on", "nopass", "+@all", "%R~*", f"%RW~openrisk:t:{{{taken}}}:*"
    )
    try:
        yield f"redis://{user}:unused@127.0.0.1:6379/14", refused, taken
    finally:
        admin.execute_command("ACL", "DELUSER", user)
        admin.close()


async def test_a_bump_the_cache_refuses_does_not_hold_back_the_rows_behind_it(
    database_url: str, redis_writing_only_one_tenant: tuple[str, str, str]
) -> None:
    url, refused, taken = redis_writing_only_one_tenant
    app = create_app(make_settings(database_url, cache_backend="redis", redis_url=url, **QUIET))
    async with app.router.lifespan_context(app):
        async with app.state.db.session() as session:
            for tenant in (refused, taken):  # the refused one is older: it comes first
                session.add(
                    OutboxRow(
                        tenant_id=uuid.UUID(tenant),
                        topic=INVALIDATE_TOPIC,
                        payload={"bumps": [[tenant, ["risks"]]]},
                    )
                )
                await session.commit()
        generations = app.state.response_cache.generations
        before = await generations.current(taken, ["risks"])

        # (the start-up's own global bumps are refused to this user as well)
        with pytest.raises(
            CacheUnavailable, match=r"1 left-over invalidations applied, \d+ refused"
        ):
            await sweep_invalidations(
                app.state.db, app.state.cache_invalidator, older_than=timedelta(0)
            )
        assert (await generations.current(taken, ["risks"]))["risks"] != before["risks"]
        left = [r for r in await _outbox(app, refused) if r.topic == INVALIDATE_TOPIC]
        assert len(left) == 1  # kept for a later pass, when its master is back
        assert [r for r in await _outbox(app, taken) if r.topic == INVALIDATE_TOPIC] == []
