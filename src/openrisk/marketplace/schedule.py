"""Scheduled connector syncs: every app with ``auto_sync`` syncs once per ``sync_interval_s``.

A periodic tick, run by any number of workers on any number of hosts, claims the due
intervals with ONE conditional UPDATE (``... WHERE auto_sync AND next_sync_at <= now
RETURNING ...``): the database lets exactly one statement move an app's ``next_sync_at`` past
``now``, so each interval is claimed once, whoever ticks. In the same transaction the claim
adds one ``schedules:sync`` job per claimed app to the outbox: a claimed interval always
gets its sync, even if the ticking worker dies right after the commit.

``next_sync_at`` advances by whole intervals from the previous one (the schedule keeps its
phase); after a long outage it restarts from ``now`` instead of running every missed
interval. NULL means "due at the next tick" (just installed, or auto_sync just turned on).
The unit of ``sync_interval_s`` is ``OPENRISK_SYNC_INTERVAL_UNIT_S`` seconds (1; tests make
it shorter).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Uuid, bindparam, text
from sqlalchemy.ext.asyncio import AsyncSession

from openrisk.config import Settings
from openrisk.core.db.base import UTCDateTime
from openrisk.core.db.engine import Database
from openrisk.core.uow import UnitOfWork

log = logging.getLogger(__name__)

SYNC_TASK = "schedules:sync"
SYNC_TOPIC = f"job:{SYNC_TASK}"

_DUE = "auto_sync AND status <> 'disabled' AND (next_sync_at IS NULL OR next_sync_at <= :now)"
_STEP = "sync_interval_s * CAST(:unit AS double precision) * interval '1 second'"
_POSTGRES_CLAIM = f"""
UPDATE apps SET next_sync_at = CASE
    WHEN next_sync_at IS NOT NULL AND next_sync_at + {_STEP} > :now
    THEN next_sync_at + {_STEP}
    ELSE CAST(:now AS timestamptz) + {_STEP}
END
WHERE {_DUE}
RETURNING id, tenant_id, next_sync_at
"""
# SQLite keeps datetimes as 'YYYY-MM-DD HH:MM:SS.ffffff' text in UTC: the same shape is
# written back (milliseconds, padded), so comparisons stay textual and exact.
_SQLITE_NEXT = (
    "strftime('%Y-%m-%d %H:%M:%f', {base}, printf('%+.3f seconds', sync_interval_s * :unit))"
    " || '000'"
)
_SQLITE_CLAIM = f"""
UPDATE apps SET next_sync_at = CASE
    WHEN next_sync_at IS NOT NULL AND {_SQLITE_NEXT.format(base="next_sync_at")} > :now
    THEN {_SQLITE_NEXT.format(base="next_sync_at")}
    ELSE {_SQLITE_NEXT.format(base=":now")}
END
WHERE {_DUE}
RETURNING id, tenant_id, next_sync_at
"""


@dataclass(frozen=True)
class Claim:
    app_id: uuid.UUID
    tenant_id: uuid.UUID
    next_sync_at: datetime  # the claimed interval ends here


async def claim_due(session: AsyncSession, *, settings: Settings, now: datetime) -> list[Claim]:
    """Claim every due interval (one statement); does not commit."""
    # whole milliseconds, as SQLite's strftime writes them: its rounding never moves a slot
    now = now.replace(microsecond=now.microsecond // 1000 * 1000)
    postgresql = session.get_bind().dialect.name == "postgresql"
    statement = (
        text(_POSTGRES_CLAIM if postgresql else _SQLITE_CLAIM)
        .bindparams(bindparam("now", type_=UTCDateTime()))
        .columns(id=Uuid(), tenant_id=Uuid(), next_sync_at=UTCDateTime())
    )
    rows = await session.execute(statement, {"now": now, "unit": settings.sync_interval_unit_s})
    return [Claim(app_id, tenant_id, next_at) for app_id, tenant_id, next_at in rows.tuples()]


async def tick(
    *,
    database: Database,
    settings: Settings,
    now: datetime,
    uow: Callable[[AsyncSession], UnitOfWork] = UnitOfWork,
) -> list[Claim]:
    """The periodic tick: claim the due intervals and add their sync jobs, in one commit."""
    async with database.sessions() as session:
        work = uow(session)
        claims = await claim_due(session, settings=settings, now=now)
        for claim in claims:
            work.add_event(
                SYNC_TOPIC,
                {
                    "app_id": str(claim.app_id),
                    "tenant_id": str(claim.tenant_id),
                    "slot": claim.next_sync_at.isoformat(),
                },
                tenant_id=claim.tenant_id,
            )
        await work.commit()
    if claims:
        log.info("scheduled syncs claimed", extra={"apps": len(claims)})
    return claims


async def run_scheduled_sync(
    *,
    database: Database,
    settings: Settings,
    app_id: uuid.UUID,
    tenant_id: uuid.UUID,
    slot: datetime,
    uow: Callable[[AsyncSession], UnitOfWork] = UnitOfWork,
) -> str:
    """The ``schedules:sync`` job: sync the app as the member who installed it (its
    permissions, its name in the audit log). Returns the outcome (``success``, ``failure``, or
    ``skipped`` when the app was disabled, uninstalled or lost auto_sync meanwhile, or its
    installer is no longer a member)."""
    from openrisk.core.db.tenancy import bind_session_to_tenant
    from openrisk.core.errors import AppError
    from openrisk.marketplace.models import App, AppLog
    from openrisk.marketplace.runtime import MarketplaceRuntime
    from openrisk.marketplace.syncs import sync_app
    from openrisk.rbac.service import resolve_membership

    async with database.sessions() as session:
        app = await session.get(App, app_id)
        if app is None or app.tenant_id != tenant_id or not app.auto_sync:
            return "skipped"
        if app.status == "disabled":
            return "skipped"
        context = None
        if app.installed_by is not None:
            try:
                membership = await resolve_membership(
                    session, user_id=app.installed_by, tenant_ref=str(tenant_id)
                )
                context = membership.context()
            except AppError:
                context = None
        if context is None:
            detail = (
                "the member who installed the app is no longer active in the tenant; "
                "install it again or turn auto_sync off"
            )
        else:
            await bind_session_to_tenant(session, tenant_id)
            runtime = MarketplaceRuntime.from_settings(settings)
            try:
                _, outcome = await sync_app(
                    uow=uow(session),
                    context=context,
                    runtime=runtime,
                    app_id=app_id,
                    scheduled_for=slot,
                )
                return outcome.status
            except AppError as error:  # no sync action, disabled meanwhile...: not retried
                await session.rollback()
                detail = error.detail
        session.add(
            AppLog(
                tenant_id=tenant_id,
                app_id=app_id,
                action="sync",
                status="skipped",
                detail=f"scheduled sync skipped: {detail}",
                data={"scheduled": True, "slot": slot.isoformat()},
            )
        )
        await session.commit()
    return "skipped"
