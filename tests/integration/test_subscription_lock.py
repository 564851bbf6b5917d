"""An import that found no app receiving its events skips them; an app installed or enabled
meanwhile must therefore wait for the import to commit (PostgreSQL, a real second request)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest_asyncio
from fastapi import FastAPI

from openrisk.app import create_app
from openrisk.marketplace import subscriptions
from tests.conftest import client_for, make_settings, register

RISK_TOPICS = ("risk.created", "risk.updated")


@pytest_asyncio.fixture
async def web(postgres_url: str) -> AsyncIterator[FastAPI]:
    application = create_app(make_settings(postgres_url, webhook_allow_private=True))
    async with application.router.lifespan_context(application):
        yield application


async def _advisory_waiters(postgres_url: str) -> int:
    conn = await asyncpg.connect(postgres_url.replace("+asyncpg", ""))
    try:
        found = await conn.fetchval(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted "
            "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
        )
    finally:
        await conn.close()
    return int(found)


async def test_an_install_waits_for_an_import_that_found_no_receiver(
    web: FastAPI, postgres_url: str
) -> None:
    async with client_for(web) as http:
        account = await register(http)
        tenant = uuid.UUID(account.tenant_id)
        async with web.state.db.session() as importing:
            assert not await subscriptions.receivers_of(
                importing, tenant_id=tenant, topics=RISK_TOPICS
            )
            install = asyncio.create_task(
                http.post(
                    "/api/v1/marketplace/apps",
                    json={
                        "connector_id": "webhook",
                        "configuration": {"url": "http://127.0.0.1:9/hook", "secret": "s" * 24},
                    },
                    headers=account.in_tenant(),
                )
            )
            for _ in range(500):  # the install reaches the lock within a few requests' time
                if await _advisory_waiters(postgres_url):
                    break
                await asyncio.sleep(0.01)
            assert await _advisory_waiters(postgres_url) == 1
            assert not install.done()
            # still true for the rest of the import's transaction
            assert not await subscriptions.receivers_of(
                importing, tenant_id=tenant, topics=RISK_TOPICS
            )
            await importing.commit()
        installed = await asyncio.wait_for(install, 10)
        assert installed.status_code == 201, installed.text

        async with web.state.db.session() as later:
            assert await subscriptions.receivers_of(later, tenant_id=tenant, topics=RISK_TOPICS)
