"""Two workers on two "hosts" (two processes with their own settings) and an app with
``sync_interval_s=60``, the unit shortened to 1/40 s (1.5 s intervals, a tick every second):
over 5 intervals the sync runs 5 times, each in its own interval, never twice in one."""

from __future__ import annotations

import asyncio
import itertools
import time
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import select

from openrisk.app import create_app
from openrisk.core.db.engine import create_database
from openrisk.marketplace.models import AppLog
from tests.conftest import client_for, make_settings, register
from tests.jobs.conftest import (  # noqa: F401 (fixtures)
    FAST_JOBS,
    Worker,
    jobs_database,
    settings_values,
    start_worker,
)

UNIT = "0.025"  # 60 units = 1.5 s
INTERVAL = timedelta(seconds=1.5)
CSV = "title,impact,probability\r\nNightly feed,2,2\r\n"


async def _install_auto_sync_app(url: str) -> tuple[str, str]:
    app = create_app(make_settings(url, **settings_values(FAST_JOBS)))
    async with app.router.lifespan_context(app), client_for(app) as http:
        admin = await register(http)
        installed = await http.post(
            "/api/v1/marketplace/apps",
            json={
                "connector_id": "csv-import",
                "configuration": {"csv_text": CSV},
                "auto_sync": True,
                "sync_interval_s": 60,
            },
            headers=admin.in_tenant(),
        )
        assert installed.status_code == 201, installed.text
    return installed.json()["id"], admin.tenant_id


async def _scheduled_syncs(url: str, app_id: str) -> list[AppLog]:
    database = create_database(make_settings(url), pooled=False)
    try:
        async with database.sessions() as session:
            logs = await session.scalars(
                select(AppLog)
                .where(AppLog.app_id == uuid.UUID(app_id), AppLog.action == "sync")
                .order_by(AppLog.created_at)
            )
            return [log for log in logs if log.data.get("scheduled")]
    finally:
        await database.dispose()


async def test_two_hosts_sync_once_per_interval(
    jobs_database: str,  # noqa: F811
    start_worker: Callable[..., Worker],  # noqa: F811
) -> None:
    app_id, _ = await _install_auto_sync_app(jobs_database)
    host = {"OPENRISK_SYNC_INTERVAL_UNIT_S": UNIT, "OPENRISK_SYNC_TICK_CRON": "* * * * * *"}
    workers = [
        start_worker(jobs_database, "--concurrency", "2", **host),
        start_worker(jobs_database, "--concurrency", "3", OPENRISK_JOBS_POLL_S="0.3", **host),
    ]
    deadline = time.monotonic() + 30
    syncs: list[AppLog] = []
    while time.monotonic() < deadline:
        syncs = await _scheduled_syncs(jobs_database, app_id)
        if len(syncs) >= 6:
            break
        await asyncio.sleep(0.25)
    assert len(syncs) >= 6, "\n".join(w.tail() for w in workers)
    for worker in workers:
        assert worker.proc.poll() is None, worker.tail()
        worker.kill()  # what they did is in the database; no need to wait for a shutdown

    slots = [datetime.fromisoformat(log.data["slot"]) for log in syncs]
    # consecutive intervals, each synced once: over the first five, five syncs
    gaps = [(later - earlier) / INTERVAL for earlier, later in itertools.pairwise(slots)]
    assert [round(gap, 3) for gap in gaps[:5]] == [1.0] * 5, slots
    for log, slot in zip(syncs, slots, strict=True):
        # claimed once its interval began; run before the next one ended (not late, not early)
        assert slot - INTERVAL <= log.created_at <= slot + INTERVAL, (log.created_at, slot)
        assert log.status == "success", log.detail
