"""System routes: health, readiness, pool statistics."""

from __future__ import annotations

import httpx
from fastapi import FastAPI
from sqlalchemy import update

from openrisk.auth.models import User
from tests.conftest import Account


async def test_health_reports_status_and_version(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/health")
    assert response.json() == {"status": "ok", "version": "0.1.0"}


async def test_ready_checks_the_database(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/health/ready")
    assert response.status_code == 200
    assert response.json()["checks"]["database"] == "ok"


async def test_pool_stats_are_for_superusers_only(
    app: FastAPI, client: httpx.AsyncClient, admin: Account
) -> None:
    assert (await client.get("/api/v1/system/pool", headers=admin.headers)).status_code == 403
    assert (await client.get("/api/v1/system/pool")).status_code == 401

    async with app.state.db.session() as session:
        await session.execute(
            update(User).where(User.email == admin.email).values(is_superuser=True)
        )
        await session.commit()
    response = await client.get("/api/v1/system/pool", headers=admin.headers)
    assert response.status_code == 200
    stats = response.json()
    assert stats["max_open"] == 10 and stats["max_idle"] == 2  # the development pool profile
    assert stats["lifetime_s"] == 600 and stats["max_idle_time_s"] == 120
    assert stats["healthy"] is True
    assert stats["in_use"] >= 1  # this very request holds a connection


async def _make_superuser(app: FastAPI, account: Account) -> None:
    async with app.state.db.session() as session:
        await session.execute(
            update(User).where(User.email == account.email).values(is_superuser=True)
        )
        await session.commit()


async def test_cache_statistics_and_invalidation_are_for_operators(
    app: FastAPI, client: httpx.AsyncClient, admin: Account
) -> None:
    assert (await client.get("/api/v1/system/cache", headers=admin.headers)).status_code == 403
    await _make_superuser(app, admin)
    stats = (await client.get("/api/v1/system/cache", headers=admin.headers)).json()["stats"]
    assert stats["enabled"] is True and stats["backend"]["backend"] == "memory"

    await app.state.cache.set("openrisk:test:one", b"1")
    await app.state.cache.set("openrisk:test:two", b"2")
    response = await client.post(
        "/api/v1/system/cache/invalidate",
        json={"pattern": "openrisk:test:*"},
        headers=admin.headers,
    )
    assert response.json() == {"pattern": "openrisk:test:*", "deleted": 2}
    assert await app.state.cache.get("openrisk:test:one") is None
    bad = await client.post(
        "/api/v1/system/cache/invalidate", json={"pattern": "*"}, headers=admin.headers
    )
    assert bad.status_code == 422
