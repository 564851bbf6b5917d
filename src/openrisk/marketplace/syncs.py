"""Running an app: its sync action (now or for a schedule's interval), redelivering a dead
letter, and the app's log. Secrets are opened here only to be handed to the connector's driver."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstanceState

from openrisk.audit.service import diff, record
from openrisk.core.context import RequestContext
from openrisk.core.db.base import utcnow
from openrisk.core.errors import Conflict, NotFound
from openrisk.core.outbox import JOB_TOPIC_PREFIX
from openrisk.core.uow import UnitOfWork, commit_with
from openrisk.marketplace.crypto import SecretsUnreadable
from openrisk.marketplace.delivery import Attempt, AttemptLogger
from openrisk.marketplace.dispatch import DELIVER_TASK
from openrisk.marketplace.drivers import DRIVERS, SyncOutcome, SyncRequest
from openrisk.marketplace.models import App, AppLog, DeadLetter
from openrisk.marketplace.runtime import MarketplaceRuntime
from openrisk.marketplace.service import AppView, app_event, app_log, get_app


def session_logger(session: AsyncSession, app: App, action: str) -> AttemptLogger:
    """An AttemptLogger adding AppLogs to ``session`` (committed with the caller)."""

    async def log_attempt(attempt: Attempt) -> None:
        session.add(app_log(app, action, attempt.status, attempt.detail, **attempt.data))

    return log_attempt


async def sync_app(
    *,
    uow: UnitOfWork,
    context: RequestContext,
    runtime: MarketplaceRuntime,
    app_id: uuid.UUID,
    upload: bytes | None = None,
    upload_name: str | None = None,
    scheduled_for: datetime | None = None,
) -> tuple[AppView, SyncOutcome]:
    """Run the connector's sync action now (webhook: signed ping; csv-import: import).
    ``scheduled_for``: the end of the schedule's interval this sync is for (a scheduled job);
    the app log and the audit event say so."""
    session = uow.session
    view = await get_app(session, context=context, app_id=app_id)
    app = view.app
    if app.status == "disabled":
        raise Conflict("The app is disabled; enable it before syncing.")
    driver = DRIVERS.get(app.connector_id)
    if driver is None:
        raise Conflict(f"The {view.connector.name} connector has no sync action in this release.")
    try:
        secrets = runtime.box.open(app.secrets_encrypted)
    except SecretsUnreadable:
        outcome = SyncOutcome(
            "failure", "stored secrets cannot be decrypted: configure the secrets again"
        )
    else:
        request = SyncRequest(
            session=session,
            context=context,
            app=app,
            configuration={**app.configuration, **secrets},
            runtime=runtime,
            record=session_logger(session, app, "ping"),
            upload=upload,
            upload_name=upload_name,
            uow=uow,
        )
        outcome = await driver.sync(request)
        # a driver may have committed or rolled back (the register's importer does)
        for obj in (view.app, view.connector):
            state: InstanceState[Any] = sa_inspect(obj)
            if state.expired_attributes:
                await session.refresh(obj)
    app.last_sync_at = utcnow()
    app.last_sync_status = outcome.status
    app.last_sync_error = None if outcome.status == "success" else outcome.detail[:2000]
    before_status = app.status
    app.status = "installed" if outcome.status == "success" else "error"
    app.updated_at = utcnow()
    scheduled: dict[str, Any] = {}
    if scheduled_for is not None:
        scheduled = {"scheduled": True, "slot": scheduled_for.isoformat()}
    session.add(app_log(app, "sync", outcome.status, outcome.detail, **outcome.data, **scheduled))
    record(
        session,
        context=context,
        action="app.sync",
        resource_type="app",
        resource_id=app.id,
        changes={
            "sync": {
                "before": None,
                "after": {"status": outcome.status, **outcome.data, **scheduled},
            },
            **diff({"status": before_status}, {"status": app.status}),
        },
        outcome="success" if outcome.status == "success" else "failure",
    )
    await commit_with(uow, [app_event("synced", context, view)])
    return view, outcome


async def redeliver(
    *, uow: UnitOfWork, context: RequestContext, app_id: uuid.UUID, delivery_id: uuid.UUID
) -> DeadLetter:
    """Send a dead-lettered delivery again (the same event, the same delivery id), as a job:
    the dead letter is removed and the job enqueued in one transaction; the redelivery's
    attempts are logged like any delivery's, and if they all fail it is a dead letter again."""
    session = uow.session
    view = await get_app(session, context=context, app_id=app_id)
    letter = await session.scalar(
        select(DeadLetter).where(
            DeadLetter.id == delivery_id,
            DeadLetter.tenant_id == context.tenant_id,
            DeadLetter.app_id == app_id,
        )
    )
    if letter is None:
        raise NotFound("No failed delivery with this id for this app (or it was redelivered).")
    if view.app.status == "disabled":
        raise Conflict("The app is disabled: enable it before redelivering.")
    await session.delete(letter)
    session.add(
        app_log(
            view.app,
            "redeliver",
            "success",
            f"redelivery of {letter.event_type} queued",
            delivery_id=str(letter.id),
            event_type=letter.event_type,
        )
    )
    record(
        session,
        context=context,
        action="app.redeliver",
        resource_type="app",
        resource_id=app_id,
        changes={"delivery_id": str(letter.id), "event_type": letter.event_type},
    )
    uow.add_event(
        JOB_TOPIC_PREFIX + DELIVER_TASK,
        {"event": letter.event, "app_id": str(app_id)},
        tenant_id=context.tenant_id,
    )
    await uow.commit()
    return letter


async def dead_letter_ids(
    session: AsyncSession, *, context: RequestContext, app_id: uuid.UUID
) -> set[uuid.UUID]:
    """The app's deliveries that can be redelivered (the web page's buttons)."""
    rows = await session.scalars(
        select(DeadLetter.id).where(
            DeadLetter.tenant_id == context.tenant_id, DeadLetter.app_id == app_id
        )
    )
    return set(rows)


async def list_logs(
    session: AsyncSession,
    *,
    context: RequestContext,
    app_id: uuid.UUID,
    action: str | None,
    status: str | None,
    offset: int,
    limit: int,
) -> tuple[list[AppLog], int]:
    await get_app(session, context=context, app_id=app_id)
    query = select(AppLog).where(AppLog.tenant_id == context.tenant_id, AppLog.app_id == app_id)
    if action:
        query = query.where(AppLog.action == action)
    if status:
        query = query.where(AppLog.status == status)
    total = await session.scalar(select(func.count()).select_from(query.subquery()))
    rows = await session.scalars(
        query.order_by(AppLog.created_at.desc(), AppLog.id.desc()).offset(offset).limit(limit)
    )
    return list(rows), int(total or 0)
