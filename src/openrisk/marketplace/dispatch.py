"""Background delivery of domain events to the tenant's notifier apps (webhook, Slack).

Subscribed to the EventBus as a background handler: it runs after the write has committed and
answered, never on the request path. Each delivery attempt is an AppLog committed on its own.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from sqlalchemy import select, update
from sqlalchemy.exc import SQLAlchemyError

from openrisk.core.db.base import utcnow
from openrisk.core.db.engine import Database
from openrisk.core.events import DomainEvent
from openrisk.marketplace.crypto import SecretsUnreadable
from openrisk.marketplace.delivery import Attempt, Outgoing, deliver
from openrisk.marketplace.drivers import driver_for, notifier_ids
from openrisk.marketplace.models import App, AppLog
from openrisk.marketplace.runtime import MarketplaceRuntime

log = logging.getLogger(__name__)


async def _write_log(
    database: Database, app: App, action: str, status: str, detail: str, data: dict[str, object]
) -> None:
    try:
        async with database.session() as session:
            session.add(
                AppLog(
                    tenant_id=app.tenant_id,
                    app_id=app.id,
                    action=action,
                    status=status,
                    detail=detail,
                    data=data,
                )
            )
            await session.commit()
    except SQLAlchemyError:  # e.g. the app was uninstalled meanwhile
        log.warning("could not write an app log", extra={"app_id": str(app.id)})


async def _set_health(
    database: Database, runtime: MarketplaceRuntime, app: App, *, ok: bool
) -> None:
    """installed ↔ error after a delivery; a disabled app stays disabled."""
    source, target = ("error", "installed") if ok else ("installed", "error")
    try:
        async with database.session() as session:
            uow = runtime.unit_of_work(session)
            result = await uow.session.execute(
                update(App)
                .where(App.id == app.id, App.tenant_id == app.tenant_id, App.status == source)
                .values(status=target, updated_at=utcnow())
            )
            if getattr(result, "rowcount", 0):
                uow.emit(
                    DomainEvent(type=f"app.{target}", tenant_id=app.tenant_id, resource_id=app.id)
                )
            await uow.commit()
    except SQLAlchemyError:
        log.warning("could not update an app status", extra={"app_id": str(app.id)})


async def _deliver_to(
    database: Database, runtime: MarketplaceRuntime, app: App, outgoing: Outgoing
) -> None:
    async def record(attempt: Attempt) -> None:
        await _write_log(database, app, "deliver", attempt.status, attempt.detail, attempt.data)

    ok = await deliver(outgoing, policy=runtime.policy, record=record)
    await _set_health(database, runtime, app, ok=ok)


async def dispatch_event(
    event: DomainEvent, *, database: Database, runtime: MarketplaceRuntime
) -> None:
    """Send ``event`` to every enabled notifier app of its tenant, concurrently."""
    await dispatch_events([event], database=database, runtime=runtime)


async def _notifier_apps(database: Database, tenant_id: object) -> list[App]:
    async with database.session() as session:
        return list(
            await session.scalars(
                select(App).where(
                    App.tenant_id == tenant_id,
                    App.connector_id.in_(notifier_ids()),
                    App.status != "disabled",
                )
            )
        )


async def dispatch_events(
    events: Sequence[DomainEvent], *, database: Database, runtime: MarketplaceRuntime
) -> None:
    """Send each event to every enabled notifier app of its tenant (the apps of a tenant are
    read once for the whole batch: an import's thousands of events cost one query when the
    tenant has no notifier); the deliveries of one event run concurrently."""
    apps_of: dict[object, list[App]] = {}
    for event in events:
        if event.tenant_id is None:
            continue
        if event.tenant_id not in apps_of:
            apps_of[event.tenant_id] = await _notifier_apps(database, event.tenant_id)
        await _dispatch(event, apps_of[event.tenant_id], database=database, runtime=runtime)


async def _dispatch(
    event: DomainEvent, apps: Sequence[App], *, database: Database, runtime: MarketplaceRuntime
) -> None:
    jobs = []
    for app in apps:
        driver = driver_for(app.connector_id)
        if not any(event.type.startswith(prefix) for prefix in driver.events):
            continue
        try:
            secrets = runtime.box.open(app.secrets_encrypted)
        except SecretsUnreadable:
            await _write_log(
                database,
                app,
                "deliver",
                "failure",
                "stored secrets cannot be decrypted: configure the secrets again",
                {"event_type": event.type},
            )
            await _set_health(database, runtime, app, ok=False)
            continue
        outgoing = driver.message({**app.configuration, **secrets}, event)
        if outgoing is not None:
            jobs.append(_deliver_to(database, runtime, app, outgoing))
    if jobs:
        await asyncio.gather(*jobs)
