"""The transactional outbox: what a committed change still has to tell the rest of the system.

A unit of work (``core/uow.py``) writes its rows in the change's own transaction, so a change
and its consequences are committed together or not at all. Two kinds of row:

- ``cache.invalidate``: the generation bumps the change needs (``{"bumps": [[tenant | null,
  [namespace, ...]], ...]}``). The writer applies them right after its commit and deletes the
  row; if the shared cache was unreachable, the row stays and the *sweeper* of any process
  (``sweep_invalidations``) applies it later. A failed bump is never lost, even when the
  writer's process exits.
- domain events (``risk.created``, ``authz.role_changed``, ...): payload ``{"resource_id",
  "data", "actor_id", "occurred_at"}``. They stay after commit; a *relay* hands them on and
  deletes them. The interim relay here (``InProcessRelay``) gives them to the in-process
  ``EventBus``'s background subscribers (webhook delivery). Topics ``job:*`` are not its to
  take.

Row-Level Security (PostgreSQL, migration 0015): like every table with a nullable
``tenant_id``, a session bound to a tenant sees and writes its tenant's rows and global ones
(``tenant_id`` NULL); the relay and the sweeper use sessions bound to no tenant, which see
every row.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import String, delete, select
from sqlalchemy.orm import Mapped, mapped_column

from openrisk.core.db.base import Base, UUIDPrimaryKey, utcnow
from openrisk.core.db.engine import Database
from openrisk.core.events import DomainEvent, EventBus

log = logging.getLogger(__name__)

INVALIDATE_TOPIC = "cache.invalidate"
JOB_TOPIC_PREFIX = "job:"

Bumps = list[tuple[str | None, list[str]]]


class OutboxRow(UUIDPrimaryKey, Base):
    __tablename__ = "outbox"

    tenant_id: Mapped[uuid.UUID | None] = mapped_column(index=False)
    topic: Mapped[str] = mapped_column(String(120))
    payload: Mapped[dict[str, Any]]
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)


class Invalidator(Protocol):
    """Applies generation bumps; raises when the shared cache cannot take them."""

    async def apply(self, bumps: Bumps) -> None: ...


class Relay(Protocol):
    def wake(self) -> None: ...


# --------------------------------------------------------------------------- payloads


def event_payload(event: DomainEvent) -> dict[str, Any]:
    return {
        "resource_id": None if event.resource_id is None else str(event.resource_id),
        "data": event.data,
        "actor_id": None if event.actor_id is None else str(event.actor_id),
        "occurred_at": event.occurred_at.isoformat(),
    }


def domain_event(row: OutboxRow) -> DomainEvent:
    """The event an outbox row carries; its id is the row's (a stable delivery id)."""
    payload = row.payload
    resource: uuid.UUID | str | None = payload.get("resource_id")
    if isinstance(resource, str):
        with contextlib.suppress(ValueError):
            resource = uuid.UUID(resource)
    actor = payload.get("actor_id")
    occurred = payload.get("occurred_at")
    return DomainEvent(
        type=row.topic,
        tenant_id=row.tenant_id,
        resource_id=resource,
        data=dict(payload.get("data") or {}),
        actor_id=uuid.UUID(actor) if actor else None,
        occurred_at=datetime.fromisoformat(occurred) if occurred else row.created_at,
        id=row.id,
    )


def parse_bumps(payload: dict[str, Any]) -> Bumps:
    return [(tenant, list(names)) for tenant, names in payload.get("bumps", [])]


# --------------------------------------------------------------------------- sweeper


async def sweep_invalidations(
    database: Database,
    invalidator: Invalidator,
    *,
    older_than: timedelta = timedelta(seconds=2),
    now: Callable[[], datetime] = utcnow,
    limit: int = 500,
) -> int:
    """Apply the ``cache.invalidate`` rows a writer left behind; delete each one applied.

    Rows younger than ``older_than`` are left to their writer (which is about to apply and
    delete them); applying one twice is harmless (an extra bump only drops cached answers).
    Returns how many rows were applied; stops at the first failure (the cache is still away).
    """
    cutoff = now() - older_than
    async with database.sessions() as session:
        rows = list(
            await session.scalars(
                select(OutboxRow)
                .where(OutboxRow.topic == INVALIDATE_TOPIC, OutboxRow.created_at <= cutoff)
                .order_by(OutboxRow.created_at)
                .limit(limit)
            )
        )
        applied = 0
        for row in rows:
            await invalidator.apply(parse_bumps(row.payload))
            await session.execute(delete(OutboxRow).where(OutboxRow.id == row.id))
            await session.commit()
            applied += 1
        return applied


# --------------------------------------------------------------------------- interim relay


class InProcessRelay:
    """Hands committed event rows to the ``EventBus``'s background subscribers and deletes them.

    A row is claimed by deleting it (``DELETE ... RETURNING``), so with several workers each
    row is handed on by exactly one of them; delivery is at most once. ``wake()`` after a
    commit, and a poll every ``interval_s``, pick rows up (also those of a process that
    exited before its relay ran).
    """

    def __init__(
        self, database: Database, events: EventBus, *, interval_s: float = 5.0, batch: int = 200
    ) -> None:
        self._database = database
        self._events = events
        self._interval_s = interval_s
        self._batch = batch
        self._wakeup = asyncio.Event()
        self._lock = asyncio.Lock()

    def wake(self) -> None:
        self._wakeup.set()

    async def run(self, *, also: Callable[[], Awaitable[object]] | None = None) -> None:
        """Until cancelled: deliver on every wake-up and poll; ``also`` runs on each poll."""
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), timeout=self._interval_s)
            woken = self._wakeup.is_set()
            self._wakeup.clear()
            try:
                await self.deliver_pending()
                if also is not None and not woken:
                    await also()
            except asyncio.CancelledError:
                raise
            except Exception:  # the database or cache is away: try again on the next poll
                log.warning("outbox relay pass failed", exc_info=True)

    async def deliver_pending(self) -> int:
        """Claim and hand on every pending event row; returns how many were handed on."""
        total = 0
        async with self._lock:
            while True:
                events = await self._claim()
                if events:  # in order, by one task (batched subscribers get them together)
                    self._events.deliver_all(events)
                total += len(events)
                if len(events) < self._batch:
                    return total

    async def drain(self, wait_s: float = 10.0) -> None:
        """Deliver what is pending and wait for the handlers (graceful shutdown, tests)."""
        await self.deliver_pending()
        await self._events.drain(wait_s)

    async def _claim(self) -> list[DomainEvent]:
        async with self._database.sessions() as session:
            ids: Sequence[uuid.UUID] = list(
                await session.scalars(
                    select(OutboxRow.id)
                    .where(
                        OutboxRow.topic != INVALIDATE_TOPIC,
                        ~OutboxRow.topic.startswith(JOB_TOPIC_PREFIX),
                    )
                    .order_by(OutboxRow.created_at, OutboxRow.id)
                    .limit(self._batch)
                )
            )
            if not ids:
                return []
            claimed = list(
                await session.scalars(
                    delete(OutboxRow).where(OutboxRow.id.in_(ids)).returning(OutboxRow)
                )
            )
            await session.commit()
        claimed.sort(key=lambda row: (row.created_at, str(row.id)))
        return [domain_event(row) for row in claimed]
