"""The transactional outbox: what a committed change still has to tell the rest of the system.

A unit of work (``core/uow.py``) writes its rows in the change's own transaction, so a change
and its consequences are committed together or not at all. Two kinds of row:

- ``cache.invalidate``: the generation bumps the change needs (``{"bumps": [[tenant | null,
  [namespace, ...]], ...]}``). The writer applies them right after its commit and deletes the
  row; if the shared cache was unreachable, the row stays and the *sweeper* of any process
  (``sweep_invalidations``) applies it later. A failed bump is never lost, even when the
  writer's process exits.
- domain events (``risk.created``, ``authz.role_changed``, ...): payload ``{"resource_id",
  "data", "actor_id", "occurred_at"}``, and ``job:<task>`` rows (payload: the task's keyword
  arguments). They stay after commit until the relay (``core/jobs/relay.py``) turns them into
  jobs of the engine.

Row-Level Security (PostgreSQL, migration 0015): like every table with a nullable
``tenant_id``, a session bound to a tenant sees and writes its tenant's rows and global ones
(``tenant_id`` NULL); the relay and the sweeper use sessions bound to no tenant, which see
every row.
"""

from __future__ import annotations

import contextlib
import logging
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import Index, String, delete, select
from sqlalchemy.orm import Mapped, mapped_column

from openrisk.core.cache.base import CacheUnavailable
from openrisk.core.db.base import Base, UUIDPrimaryKey, utcnow
from openrisk.core.db.engine import Database
from openrisk.core.events import DomainEvent

log = logging.getLogger(__name__)

INVALIDATE_TOPIC = "cache.invalidate"
JOB_TOPIC_PREFIX = "job:"

Bumps = list[tuple[str | None, list[str]]]
SWEEP_BATCH = 500
SWEEP_MAX_FAILURES = 5


class OutboxRow(UUIDPrimaryKey, Base):
    __tablename__ = "outbox"
    # the relay takes rows in (created_at, id) order: with both in the index a batch is a short
    # index range, not a sort of every pending row (an import's 50,000 rows share one
    # created_at, and each batch of 200 then sorted all of them)
    __table_args__ = (Index("ix_outbox_created_at_id", "created_at", "id"),)

    tenant_id: Mapped[uuid.UUID | None] = mapped_column(index=False)
    topic: Mapped[str] = mapped_column(String(120))
    payload: Mapped[dict[str, Any]]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # The embedded relay's lease (SQLite, core/jobs/relay.py): the process running the row's
    # jobs, and until when; NULL when unclaimed. PostgreSQL's relay deletes rows instead.
    claimed_by: Mapped[uuid.UUID | None] = mapped_column(default=None)
    claimed_until: Mapped[datetime | None] = mapped_column(default=None)


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


def event_json(event: DomainEvent) -> dict[str, Any]:
    """A committed event as a job's argument (JSON); ``event_from_json`` reads it back."""
    return {
        "id": str(event.id),
        "type": event.type,
        "tenant_id": None if event.tenant_id is None else str(event.tenant_id),
        **event_payload(event),
    }


def event_from_json(value: dict[str, Any]) -> DomainEvent:
    resource: uuid.UUID | str | None = value.get("resource_id")
    if isinstance(resource, str):
        with contextlib.suppress(ValueError):
            resource = uuid.UUID(resource)
    tenant, actor = value.get("tenant_id"), value.get("actor_id")
    return DomainEvent(
        type=str(value["type"]),
        tenant_id=uuid.UUID(tenant) if tenant else None,
        resource_id=resource,
        data=dict(value.get("data") or {}),
        actor_id=uuid.UUID(actor) if actor else None,
        occurred_at=datetime.fromisoformat(value["occurred_at"]),
        id=uuid.UUID(value["id"]),
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
    limit: int = SWEEP_BATCH,
) -> int:
    """Apply the ``cache.invalidate`` rows a writer left behind; delete each one applied.

    Rows younger than ``older_than`` are left to their writer (which is about to apply and
    delete them); applying one twice is harmless (an extra bump only drops cached answers).
    A row the cache refuses stays for the next pass without holding back the rows behind it:
    on a cluster it may be one master's, and the other masters take theirs. A pass gives up
    after ``SWEEP_MAX_FAILURES`` refusals in a row (the whole cache is away). Returns how many
    rows were applied; raises `CacheUnavailable` when a row was left, so that a caller waiting
    for every leftover knows it is not done.
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
        applied = failed = refused_in_a_row = 0
        for row in rows:
            try:
                await invalidator.apply(parse_bumps(row.payload))
            except CacheUnavailable:
                failed += 1
                refused_in_a_row += 1
                if refused_in_a_row >= SWEEP_MAX_FAILURES:
                    break
                continue
            refused_in_a_row = 0
            await session.execute(delete(OutboxRow).where(OutboxRow.id == row.id))
            await session.commit()
            applied += 1
        if failed:
            raise CacheUnavailable(
                f"{applied} left-over invalidations applied, {failed} refused by the cache"
            )
        return applied
