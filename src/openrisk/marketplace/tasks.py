"""The marketplace's jobs: one delivery of one event to one notifier app (webhook, Slack).

The relay asks ``deliveries_for`` what a batch of committed risk events means, in the
transaction that takes them from the outbox: one ``webhooks:deliver`` job per (event, enabled
notifier app of the event's tenant whose connector reacts to that event type). A tenant without
such an app costs one query per batch and no job. The delivery id is derived from the event id
and the app id (``delivery_id``): every attempt and every re-run of the job sends the same
``X-OpenRisk-Delivery``, which is what lets a receiver de-duplicate at-least-once delivery.

One run of the job is one attempt. A retryable failure raises ``RetryDelivery`` with the
backoff the attempt logged, and the engine schedules the job again for then (``retry=``
below): the retry waits in the database, so a worker killed or redeployed meanwhile loses
nothing; any worker takes it up when it is due. The attempt number is the job's run count.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

import procrastinate
import tenacity
from procrastinate.jobs import Job
from procrastinate.retry import BaseRetryStrategy, RetryDecision
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from openrisk.core.events import DomainEvent
from openrisk.core.jobs import JobRuntime, JobSpec, job_runtime
from openrisk.core.jobs.retry import retry_in, wait_seconds
from openrisk.core.outbox import event_from_json, event_json
from openrisk.marketplace.dispatch import DELIVER_TASK, deliver_to_app
from openrisk.marketplace.drivers import driver_for, notifier_ids
from openrisk.marketplace.models import App
from openrisk.marketplace.runtime import MarketplaceRuntime

blueprint = procrastinate.Blueprint()

# A run that failed unexpectedly (the database away, a bug): retried with this backoff, at most
# this many runs; a delivery's own failures are counted against OPENRISK_WEBHOOK_MAX_ATTEMPTS.
UNEXPECTED_WAIT = tenacity.wait_exponential(multiplier=1, max=300)
UNEXPECTED_RUNS = 20


class RetryDelivery(Exception):
    """This attempt failed and another one is due in ``delay_s`` seconds."""

    def __init__(self, delay_s: float) -> None:
        super().__init__(f"retry in {delay_s:.3f}s")
        self.delay_s = delay_s


class DeliveryRetries(BaseRetryStrategy):
    def get_retry_decision(self, *, exception: BaseException, job: Job) -> RetryDecision | None:
        if isinstance(exception, RetryDelivery):
            return retry_in(exception.delay_s)
        if job.attempts + 1 >= UNEXPECTED_RUNS:
            return None
        return retry_in(wait_seconds(UNEXPECTED_WAIT, job.attempts + 1))


def delivery_id(event_id: uuid.UUID, app_id: uuid.UUID) -> uuid.UUID:
    """Stable across attempts, job re-runs and relays: the receiver's de-duplication key."""
    return uuid.uuid5(event_id, str(app_id))


async def deliveries_for(session: AsyncSession, events: Sequence[DomainEvent]) -> list[JobSpec]:
    tenants = {event.tenant_id for event in events if event.tenant_id is not None}
    if not tenants:
        return []
    apps = (
        await session.execute(
            select(App.id, App.tenant_id, App.connector_id).where(
                App.tenant_id.in_(tenants),
                App.connector_id.in_(notifier_ids()),
                App.status != "disabled",
            )
        )
    ).all()
    by_tenant: dict[uuid.UUID, list[tuple[uuid.UUID, str]]] = {}
    for app_id, tenant_id, connector_id in apps:
        by_tenant.setdefault(tenant_id, []).append((app_id, connector_id))
    specs = []
    for event in events:
        for app_id, connector_id in by_tenant.get(event.tenant_id, ()):  # type: ignore[arg-type]
            if any(event.type.startswith(prefix) for prefix in driver_for(connector_id).events):
                specs.append(
                    JobSpec(
                        task=DELIVER_TASK,
                        args={"event": event_json(event), "app_id": str(app_id)},
                        event_id=event.id,
                    )
                )
    return specs


def marketplace_of(runtime: JobRuntime) -> MarketplaceRuntime:
    """The web process's marketplace runtime when the job runs there, else the worker's own."""
    found = getattr(runtime.state, "marketplace", None)
    if isinstance(found, MarketplaceRuntime):
        return found
    made = MarketplaceRuntime.from_settings(runtime.settings)
    made.uow_factory = runtime.uow
    if runtime.state is not None:
        runtime.state.marketplace = made
    return made


@blueprint.task(name="deliver", pass_context=True, retry=DeliveryRetries())
async def deliver(context: procrastinate.JobContext, *, event: dict[str, Any], app_id: str) -> None:
    runtime = job_runtime(context)
    outcome = await deliver_to_app(
        event_from_json(event),
        uuid.UUID(app_id),
        database=runtime.database,
        runtime=marketplace_of(runtime),
        delivery=delivery_id(uuid.UUID(event["id"]), uuid.UUID(app_id)),
        attempt=context.job.attempts + 1,
        max_attempts=runtime.settings.webhook_max_attempts,
    )
    if outcome is not None and outcome.status == "retry":
        raise RetryDelivery(float(outcome.data["next_retry_in_s"]))
