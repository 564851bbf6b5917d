"""Delivery of a committed domain event to one notifier app (webhook, Slack): one attempt.

Runs as a job (``marketplace/tasks.py``), never on the request path. Each attempt is an AppLog
committed on its own. A delivery that failed for good (its last attempt, or a failure no retry
can mend: a refused URL, a 4xx, unreadable secrets) becomes a dead letter, written with its log
entry: ``POST /marketplace/apps/{id}/deliveries/{delivery_id}/redeliver`` sends it again.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import replace
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import SQLAlchemyError

from openrisk.core.db.base import utcnow
from openrisk.core.db.engine import Database
from openrisk.core.events import DomainEvent
from openrisk.core.outbox import event_json
from openrisk.marketplace.crypto import SecretsUnreadable
from openrisk.marketplace.delivery import Attempt, send
from openrisk.marketplace.drivers import driver_for
from openrisk.marketplace.models import App, AppLog, DeadLetter
from openrisk.marketplace.runtime import MarketplaceRuntime

log = logging.getLogger(__name__)

DELIVER_TASK = "webhooks:deliver"  # marketplace/tasks.py, namespace "webhooks"


async def _write_log(
    database: Database,
    app: App,
    action: str,
    status: str,
    detail: str,
    data: dict[str, Any],
    *,
    dead_letter: DeadLetter | None = None,
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
            if dead_letter is not None:
                await session.merge(dead_letter)  # a redelivery that failed again: replaced
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


def _dead_letter(
    app: App, event: DomainEvent, delivery: uuid.UUID, attempts: int, detail: str
) -> DeadLetter:
    return DeadLetter(
        id=delivery,
        tenant_id=app.tenant_id,
        app_id=app.id,
        event_type=event.type,
        event=event_json(event),
        attempts=attempts,
        detail=detail,
        failed_at=utcnow(),
    )


async def deliver_to_app(
    event: DomainEvent,
    app_id: uuid.UUID,
    *,
    database: Database,
    runtime: MarketplaceRuntime,
    delivery: uuid.UUID,
    attempt: int = 1,
    max_attempts: int = 1,
) -> Attempt | None:
    """Attempt ``attempt`` of delivering ``event`` to one app, as it is configured now; None
    when there is nothing to send (the app was disabled or uninstalled, or its connector does
    not send this event)."""
    async with database.session() as session:
        app = await session.scalar(
            select(App).where(App.id == app_id, App.tenant_id == event.tenant_id)
        )
    if app is None or app.status == "disabled":
        return None
    try:
        secrets = runtime.box.open(app.secrets_encrypted)
    except SecretsUnreadable:
        detail = "stored secrets cannot be decrypted: configure the secrets again"
        data = {
            "event_type": event.type,
            "delivery_id": str(delivery),
            "attempt": attempt,
            "dead_letter": True,
        }
        letter = _dead_letter(app, event, delivery, attempt, detail)
        await _write_log(database, app, "deliver", "failure", detail, data, dead_letter=letter)
        await _set_health(database, runtime, app, ok=False)
        return Attempt(attempt, "failure", detail, data)
    outgoing = driver_for(app.connector_id).message({**app.configuration, **secrets}, event)
    if outgoing is None:
        return None
    outgoing = replace(outgoing, delivery_id=delivery)

    async def record(result: Attempt) -> None:
        letter = None
        if result.status == "failure":
            result.data["dead_letter"] = True
            letter = _dead_letter(app, event, delivery, result.number, result.detail)
        await _write_log(
            database, app, "deliver", result.status, result.detail, result.data, dead_letter=letter
        )

    result = await send(
        outgoing, policy=runtime.policy, record=record, number=attempt, max_attempts=max_attempts
    )
    healthy = app.status == "installed"
    if result.status != "retry" and (result.status == "success") != healthy:
        await _set_health(database, runtime, app, ok=not healthy)
    return result
