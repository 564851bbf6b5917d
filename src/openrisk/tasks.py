"""The task registry: every task blueprint, and which outbox events become which jobs (the one
place to plug in). Like the model registry it lives outside ``core``, which reads it only when
it builds the job engine or routes events, so that core imports no domain package.

``BLUEPRINTS``: (namespace, blueprint); a task ``name`` declared on a blueprint is deferred and
run as ``"<namespace>:<name>"``. ``EVENT_ROUTES``: (topic prefix, route); the relay hands each
committed domain event to every route whose prefix its topic starts with, in the transaction
that takes the event row, and defers the jobs the route returns (none: the event causes no
background work). An outbox row with topic ``job:<namespace>:<name>`` is deferred as that task
with the row's payload as keyword arguments (``uow.add_event("job:...", {...})``).
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Sequence

import procrastinate
from sqlalchemy.ext.asyncio import AsyncSession

from openrisk.config import Settings
from openrisk.core.jobs.runtime import Route
from openrisk.marketplace import schedule_tasks, subscriptions
from openrisk.marketplace import tasks as marketplace_tasks
from openrisk.methodology import tasks as risk_model_tasks
from openrisk.notifications import tasks as email_tasks
from openrisk.quantification import tasks as quantification_tasks
from openrisk.reports import tasks as report_tasks

BLUEPRINTS: list[tuple[str, procrastinate.Blueprint]] = [
    ("webhooks", marketplace_tasks.blueprint),
    ("email", email_tasks.blueprint),
    ("schedules", schedule_tasks.blueprint),
    ("reports", report_tasks.blueprint),
    ("quantification", quantification_tasks.blueprint),
    ("risk_model", risk_model_tasks.blueprint),
]

EVENT_ROUTES: list[tuple[str, Route]] = [
    ("risk.", marketplace_tasks.deliveries_for),
    *((topic, quantification_tasks.recomputes_for) for topic in quantification_tasks.ROUTED_TOPICS),
]

# Routes that can tell beforehand whether a tenant's events would cause any work: (prefix,
# check). A route without one always counts as wanting its events.
Listeners = Callable[..., Awaitable[bool]]
EVENT_LISTENERS: dict[str, Listeners] = {"risk.": subscriptions.receivers_of}


async def events_wanted(
    session: AsyncSession, *, tenant_id: uuid.UUID, topics: Sequence[str]
) -> bool:
    """Whether committed events of ``topics`` in this tenant would cause background work. A
    bulk write that finds none skips writing them; the checks hold their answer until the
    transaction ends (``marketplace.subscriptions``)."""
    for prefix, _ in EVENT_ROUTES:
        routed = [topic for topic in topics if topic.startswith(prefix)]
        if not routed:
            continue
        check = EVENT_LISTENERS.get(prefix)
        if check is None or await check(session, tenant_id=tenant_id, topics=routed):
            return True
    return False


def periodic_crons(settings: Settings) -> dict[str, str]:
    """The periodic tasks whose schedule is a setting (full task name → cron)."""
    return {
        "schedules:tick": settings.sync_tick_cron,
        "email:reminders": settings.reminders_cron,
    }
