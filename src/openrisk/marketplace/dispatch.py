"""Delivery of a committed domain event to one notifier app (webhook, Slack).

Runs as a job (``marketplace/tasks.py``), never on the request path. Each delivery attempt is an
AppLog committed on its own.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import replace

from sqlalchemy import select, update
from sqlalchemy.exc import SQLAlchemyError

from openrisk.core.db.base import utcnow
from openrisk.core.db.engine import Database
from openrisk.core.events import DomainEvent
from openrisk.marketplace.crypto import SecretsUnreadable
from openrisk.marketplace.delivery import Attempt, deliver
from openrisk.marketplace.drivers import driver_for
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


async def deliver_to_app(
    event: DomainEvent,
    app_id: uuid.UUID,
    *,
    database: Database,
    runtime: MarketplaceRuntime,
    delivery: uuid.UUID,
) -> None:
    """Deliver ``event`` to one notifier app, as it is configured now (a job of
    ``marketplace/tasks.py``); nothing if it was disabled or uninstalled meanwhile."""
    async with database.session() as session:
        app = await session.scalar(
            select(App).where(App.id == app_id, App.tenant_id == event.tenant_id)
        )
    if app is None or app.status == "disabled":
        return
    try:
        secrets = runtime.box.open(app.secrets_encrypted)
    except SecretsUnreadable:
        await _write_log(
            database,
            app,
            "deliver",
            "failure",
            "stored secrets cannot be decrypted: configure the secrets again",
            {"event_type": event.type, "delivery_id": str(delivery)},
        )
        await _set_health(database, runtime, app, ok=False)
        return
    outgoing = driver_for(app.connector_id).message({**app.configuration, **secrets}, event)
    if outgoing is None:
        return
    outgoing = replace(outgoing, delivery_id=delivery)

    async def record(attempt: Attempt) -> None:
        await _write_log(database, app, "deliver", attempt.status, attempt.detail, attempt.data)

    ok = await deliver(outgoing, policy=runtime.policy, record=record)
    await _set_health(database, runtime, app, ok=ok)
