"""The e-mail jobs: ``email:send`` (one message, retried while the relay is away) and the
periodic ``email:reminders`` scan (acceptance expiries, then the reminders nobody got yet)."""

from __future__ import annotations

import uuid

import procrastinate

from openrisk.core.jobs import job_runtime
from openrisk.notifications.reminders import scan
from openrisk.notifications.service import send_batch
from openrisk.notifications.smtp import TemporaryFailure

blueprint = procrastinate.Blueprint()

# A relay that is away or answers 4xx: again after 5, 25, 125 s... (8 attempts, ~1 day in all);
# a 5xx refusal is final (send_batch marks the rows failed and does not raise).
SEND_RETRY = procrastinate.RetryStrategy(
    max_attempts=8, exponential_wait=5, retry_exceptions={TemporaryFailure}
)
REMINDERS_CRON = "7 * * * *"  # hourly (OPENRISK_REMINDERS_CRON)


@blueprint.task(name="send", pass_context=True, retry=SEND_RETRY)
async def send(context: procrastinate.JobContext, *, batch_id: str) -> None:
    runtime = job_runtime(context)
    await send_batch(
        database=runtime.database,
        settings=runtime.settings,
        batch_id=uuid.UUID(batch_id),
        now=runtime.now,
    )


@blueprint.periodic(cron=REMINDERS_CRON)
@blueprint.task(name="reminders", pass_context=True)
async def reminders(context: procrastinate.JobContext, timestamp: int) -> None:
    runtime = job_runtime(context)
    now = runtime.now()
    await scan(
        database=runtime.database,
        settings=runtime.settings,
        today=now.date(),
        now=now,
        uow=runtime.uow,
    )
