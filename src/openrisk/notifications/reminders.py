"""The reminders scan (a periodic job): first the methodology's expiries, then every reminder
due today, queued once per reason (``service.queue``)."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from openrisk.config import Settings
from openrisk.core.db.engine import Database
from openrisk.core.uow import UnitOfWork
from openrisk.methodology import acceptance
from openrisk.methodology.reminders import acceptance_reasons, review_reasons
from openrisk.mitigations.reminders import due_reasons
from openrisk.notifications.service import enabled, queue

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ScanResult:
    expired: int  # acceptances that ended today
    reasons: int  # reasons found (queued before or now)
    emails: int  # batches queued by this scan (one e-mail each)


async def scan(
    *,
    database: Database,
    settings: Settings,
    today: date,
    now: datetime,
    uow: Callable[[AsyncSession], UnitOfWork] = UnitOfWork,
    tenant_ids: Sequence[uuid.UUID] | None = None,
) -> ScanResult:
    """Expire the acceptances past their date, then queue the reminders nobody got yet
    (of every tenant, or of ``tenant_ids``)."""
    async with database.sessions() as session:
        expired = await acceptance.expire_due(uow=uow(session), today=today, tenant_ids=tenant_ids)
    if not enabled(settings):
        return ScanResult(expired=len(expired), reasons=0, emails=0)
    only = tenant_ids
    async with database.sessions() as session:
        reasons = [
            *await due_reasons(
                session, today=today, days=settings.notify_mitigation_due_days, tenant_ids=only
            ),
            *await review_reasons(session, today=today, tenant_ids=only),
            *await acceptance_reasons(
                session, today=today, days=settings.notify_acceptance_days, tenant_ids=only
            ),
        ]
        work = uow(session)
        batches = await queue(work, reasons, now=now)
        await work.commit()
    if batches:
        log.info("reminders queued", extra={"emails": len(batches), "reasons": len(reasons)})
    return ScanResult(expired=len(expired), reasons=len(reasons), emails=len(batches))
