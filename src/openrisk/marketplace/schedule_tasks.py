"""The scheduled-sync jobs: the periodic ``schedules:tick`` (claims the due intervals, once each
across every worker) and ``schedules:sync`` (one claimed interval's sync)."""

from __future__ import annotations

import uuid
from datetime import datetime

import procrastinate

from openrisk.core.jobs import job_runtime
from openrisk.marketplace.schedule import run_scheduled_sync, tick

blueprint = procrastinate.Blueprint()

TICK_CRON = "* * * * *"  # every minute (OPENRISK_SYNC_TICK_CRON; tests tick every second)


@blueprint.periodic(cron=TICK_CRON)
@blueprint.task(name="tick", pass_context=True)
async def tick_task(context: procrastinate.JobContext, timestamp: int) -> None:
    runtime = job_runtime(context)
    await tick(
        database=runtime.database, settings=runtime.settings, now=runtime.now(), uow=runtime.uow
    )


@blueprint.task(name="sync", pass_context=True)
async def sync(
    context: procrastinate.JobContext, *, app_id: str, tenant_id: str, slot: str
) -> None:
    runtime = job_runtime(context)
    await run_scheduled_sync(
        database=runtime.database,
        settings=runtime.settings,
        app_id=uuid.UUID(app_id),
        tenant_id=uuid.UUID(tenant_id),
        slot=datetime.fromisoformat(slot),
        uow=runtime.uow,
    )
