"""Scheduled connector syncs: the tick's one conditional UPDATE claims each interval once, on
SQLite and PostgreSQL, however many workers tick at the same moment; the claimed sync runs as
the app's installer and is logged as scheduled."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import select

from openrisk.core.db.engine import Database, create_database
from openrisk.marketplace.models import AppLog
from openrisk.marketplace.schedule import Claim, run_scheduled_sync, tick
from tests.conftest import Account, make_settings

API = "/api/v1/marketplace"
CSV = "title,impact,probability\r\nScheduled import,2,2\r\n"


async def install(client: httpx.AsyncClient, account: Account, **fields: Any) -> dict[str, Any]:
    response = await client.post(
        f"{API}/apps",
        json={
            "connector_id": "csv-import",
            "name": f"Import {uuid.uuid4().hex[:6]}",
            "configuration": {"csv_text": CSV},
            **fields,
        },
        headers=account.in_tenant(),
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


def ours(claims: list[Claim], app_id: str) -> list[Claim]:
    return [claim for claim in claims if str(claim.app_id) == app_id]


def offsets(claims: list[Claim], start: datetime, unit_s: float = 1) -> list[int]:
    return [round((c.next_sync_at - start).total_seconds() / unit_s) for c in claims]


async def test_each_interval_is_claimed_once_by_concurrent_ticks(
    app: FastAPI, client: httpx.AsyncClient, admin: Account
) -> None:
    settings = make_settings(app.state.settings.database_url, sync_interval_unit_s=0.5)
    installed = await install(client, admin, auto_sync=True, sync_interval_s=60)  # 30 s
    idle = await install(client, admin, auto_sync=False, sync_interval_s=60)
    hosts = [create_database(settings, pooled=False) for _ in range(3)]
    start = datetime.now(UTC)
    claims: list[Claim] = []
    try:
        # three workers tick at the same instants, every 10 s, for 5 intervals of 30 s
        for step in range(16):
            now = start + timedelta(seconds=10 * step)
            for got in await asyncio.gather(
                *(tick(database=h, settings=settings, now=now) for h in hosts)
            ):
                claims += got
    finally:
        for host in hosts:
            await host.dispose()
    assert not ours(claims, idle["id"])
    # due at once (first tick), then at 30, 60, 90, 120 and 150 s: one claim each
    assert offsets(ours(claims, installed["id"]), start) == [30, 60, 90, 120, 150, 180]


async def test_the_schedule_restarts_after_an_outage_and_on_change(
    app: FastAPI, client: httpx.AsyncClient, admin: Account
) -> None:
    database: Database = app.state.db
    settings = make_settings(app.state.settings.database_url)
    installed = await install(client, admin, auto_sync=True, sync_interval_s=3600)
    start = datetime.now(UTC)
    late = await tick(database=database, settings=settings, now=start)
    late += await tick(
        database=database, settings=settings, now=start + timedelta(hours=5, minutes=1)
    )
    # one sync after five missed hours, not five; the next one an hour after it
    assert offsets(ours(late, installed["id"]), start, 60) == [60, 361]

    changed = await client.patch(
        f"{API}/apps/{installed['id']}", json={"sync_interval_s": 600}, headers=admin.in_tenant()
    )
    assert changed.status_code == 200, changed.text
    again = await tick(
        database=database, settings=settings, now=start + timedelta(hours=5, minutes=2)
    )
    assert len(ours(again, installed["id"])) == 1  # the new interval starts at once


async def test_a_claimed_sync_runs_as_the_installer(
    app: FastAPI, client: httpx.AsyncClient, admin: Account
) -> None:
    database: Database = app.state.db
    settings = make_settings(app.state.settings.database_url)
    installed = await install(client, admin, auto_sync=True, sync_interval_s=60)
    slot = datetime.now(UTC)
    outcome = await run_scheduled_sync(
        database=database,
        settings=settings,
        app_id=uuid.UUID(installed["id"]),
        tenant_id=uuid.UUID(admin.tenant_id),
        slot=slot,
    )
    assert outcome == "success"
    async with database.sessions() as session:
        [log] = await session.scalars(
            select(AppLog).where(
                AppLog.app_id == uuid.UUID(installed["id"]), AppLog.action == "sync"
            )
        )
    assert log.data["scheduled"] is True and log.data["created"] == 1
    listed = await client.get("/api/v1/risks?q=Scheduled", headers=admin.in_tenant())
    assert [r["title"] for r in listed.json()["items"]] == ["Scheduled import"]

    await client.post(f"{API}/apps/{installed['id']}/disable", headers=admin.in_tenant())
    skipped = await run_scheduled_sync(
        database=database,
        settings=settings,
        app_id=uuid.UUID(installed["id"]),
        tenant_id=uuid.UUID(admin.tenant_id),
        slot=slot,
    )
    assert skipped == "skipped"
