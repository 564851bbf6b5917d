"""Deciding to send (``queue``) and sending (``send_batch``) e-mail notifications.

A *reason* is one thing someone must hear about once: a mitigation due on a date, a risk whose
review is overdue since a date, an invitation link. ``queue`` inserts one ``notifications``
row per reason (``ON CONFLICT (reason) DO NOTHING``: a reason already queued, by this scan or
an earlier one, by this worker or another, adds nothing) and groups the new rows of one
recipient into one *batch*: one e-mail, one ``email:send`` job, through the outbox of the
same transaction. ``send_batch`` is that job: it sends the batch's pending rows as one message
and marks them sent; run twice (at-least-once delivery of jobs), the second run finds nothing
pending. The message's ``Message-ID`` is derived from the batch id, so a relay or a mail
client can drop the copy a crash between hand-over and commit would cause.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from openrisk.config import Settings
from openrisk.core.db.engine import Database
from openrisk.core.ids import new_id
from openrisk.core.uow import UnitOfWork
from openrisk.marketplace.crypto import SecretBox, SecretsUnreadable
from openrisk.notifications.messages import render
from openrisk.notifications.models import Notification
from openrisk.notifications.smtp import PermanentFailure, SmtpTarget, send_message

log = logging.getLogger(__name__)

SEND_TASK = "email:send"
SEND_TOPIC = f"job:{SEND_TASK}"
PENDING, SENT, FAILED = "pending", "sent", "failed"
SEALED = "sealed"  # the key of ``data`` that holds sealed values (an invitation's token)
CHUNK = 500


@dataclass(frozen=True)
class Reason:
    """One thing to tell one person once."""

    kind: str
    key: str  # unique over every notification ever queued
    tenant_id: uuid.UUID | None
    recipient: str
    subject_id: uuid.UUID | None
    data: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def dated(
        cls,
        kind: str,
        *,
        subject_id: uuid.UUID,
        on: date,
        recipient_id: uuid.UUID,
        recipient: str,
        tenant_id: uuid.UUID,
        data: dict[str, Any],
    ) -> Reason:
        """A reminder about ``subject_id`` for the date ``on``: told once per subject, date and
        person, so a new due date (or expiry, or review date) is told again."""
        return cls(
            kind=kind,
            key=f"{kind}:{subject_id}:{on.isoformat()}:{recipient_id}",
            tenant_id=tenant_id,
            recipient=recipient,
            subject_id=subject_id,
            data=data,
        )


def enabled(settings: Settings) -> bool:
    return bool(settings.smtp_url)


def secret_box(settings: Settings) -> SecretBox:
    return SecretBox(settings.secret_key, salt=b"openrisk.notifications")


async def queue(uow: UnitOfWork, reasons: Sequence[Reason], *, now: datetime) -> list[uuid.UUID]:
    """Insert the reasons not queued before, one batch per (tenant, recipient), and add one
    ``email:send`` job per batch to the unit of work. Does not commit; returns the batches."""
    if not reasons:
        return []
    batch_of: dict[tuple[uuid.UUID | None, str], uuid.UUID] = {}
    rows = []
    for reason in reasons:
        batch = batch_of.setdefault((reason.tenant_id, reason.recipient.lower()), uuid.uuid4())
        rows.append(
            {
                "id": new_id(),
                "tenant_id": reason.tenant_id,
                "kind": reason.kind,
                "reason": reason.key[:300],
                "recipient": reason.recipient,
                "subject_id": reason.subject_id,
                "batch_id": batch,
                "data": reason.data,
                "status": PENDING,
                "attempts": 0,
                "created_at": now,
            }
        )
    session = uow.session
    module: Any = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    batches: set[uuid.UUID] = set()
    tenants: dict[uuid.UUID, uuid.UUID | None] = {}
    for start in range(0, len(rows), CHUNK):
        statement = (
            module.insert(Notification)
            .values(rows[start : start + CHUNK])
            .on_conflict_do_nothing(index_elements=["reason"])
            .returning(Notification.batch_id, Notification.tenant_id)
        )
        for batch, tenant_id in (await session.execute(statement)).tuples():
            batches.add(batch)
            tenants[batch] = tenant_id
    for batch in sorted(batches, key=str):
        uow.add_event(SEND_TOPIC, {"batch_id": str(batch)}, tenant_id=tenants[batch])
    return sorted(batches, key=str)


async def batch_rows(session: AsyncSession, batch_id: uuid.UUID) -> list[Notification]:
    rows = await session.scalars(
        select(Notification)
        .where(Notification.batch_id == batch_id)
        .order_by(Notification.created_at, Notification.kind, Notification.id)
    )
    return list(rows)


@dataclass(frozen=True)
class SendResult:
    sent: int  # reasons told in this call (0: nothing was pending)
    failed: bool = False  # refused for good by the relay


async def send_batch(
    *,
    database: Database,
    settings: Settings,
    batch_id: uuid.UUID,
    now: Callable[[], datetime],
) -> SendResult:
    """Send the pending reasons of one batch as one message (the ``email:send`` job).

    A temporary failure (relay away, 4xx) raises ``TemporaryFailure`` after counting the
    attempt: the job engine retries. A permanent one (5xx) marks the rows failed and returns.
    """
    if not settings.smtp_url:
        log.warning("e-mail batch %s not sent: OPENRISK_SMTP_URL is not set", batch_id)
        return SendResult(0)
    target = SmtpTarget.parse(settings.smtp_url)
    async with database.sessions() as session:
        rows = [row for row in await batch_rows(session, batch_id) if row.status == PENDING]
        if not rows:
            return SendResult(0)
        box = secret_box(settings)
        try:
            secrets = [box.open(row.data.get(SEALED)) for row in rows]
        except SecretsUnreadable:
            await _finish(session, rows, status=FAILED, error="sealed link unreadable", at=now())
            return SendResult(0, failed=True)
        message = render(
            rows, secrets, settings=settings, message_id=f"<{batch_id}@openrisk.notifications>"
        )
        try:
            await send_message(target, message, timeout_s=settings.smtp_timeout_s)
        except PermanentFailure as error:
            await _finish(session, rows, status=FAILED, error=str(error), at=now())
            log.warning("e-mail batch %s refused: %s", batch_id, error)
            return SendResult(0, failed=True)
        except Exception as error:
            for row in rows:
                row.attempts += 1
                row.last_error = str(error)[:2000]
            await session.commit()
            raise
        await _finish(session, rows, status=SENT, error=None, at=now())
    log.info(
        "e-mail sent", extra={"batch": str(batch_id), "reasons": len(rows), "kind": rows[0].kind}
    )
    return SendResult(len(rows))


async def _finish(
    session: AsyncSession,
    rows: Sequence[Notification],
    *,
    status: str,
    error: str | None,
    at: datetime,
) -> None:
    """Mark the rows done and drop their sealed values (an invitation link is not kept)."""
    for row in rows:
        data = dict(row.data)
        data.pop(SEALED, None)
        await session.execute(
            update(Notification)
            .where(Notification.id == row.id)
            .values(
                status=status,
                attempts=row.attempts + 1,
                last_error=None if error is None else error[:2000],
                sent_at=at if status == SENT else None,
                data=data,
            )
        )
    await session.commit()
