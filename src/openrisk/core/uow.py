"""The unit of work: the one write path of every service.

A request (or a command, or a job) opens one ``UnitOfWork`` over its session. Services make
their changes on ``uow.session`` and declare what the change means for the rest of the system:
``add_event`` (a domain event, for webhooks and jobs) and ``invalidate`` (the cached
namespaces it makes stale); ``emit`` does both for a ``DomainEvent``. Nothing is committed or
published by a service's caller (routers and web views only hand the unit of work on).

``commit()``:
1. in the change's own transaction, inserts one ``outbox`` row per event and one
   ``cache.invalidate`` row for the invalidations (``core/outbox.py``), then commits: the
   change and its consequences are durable together, or neither is;
2. applies the invalidations (generation bumps) and deletes that row, so the writer's answer
   is never older than its write (read-your-writes); if the shared cache is away the row
   stays and a sweeper in any process applies it later; an authorization change whose bump
   failed answers 503 (its effect is not yet guaranteed everywhere; the sweeper finishes it);
3. wakes the outbox relay (``app.state.outbox_relay``), which turns the event rows into jobs
   (``core/jobs/relay.py``).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable
from typing import Annotated, Any, cast

from fastapi import Depends, Request
from sqlalchemy import Table, delete, insert
from sqlalchemy.ext.asyncio import AsyncSession

from openrisk.core.cache.base import CacheError
from openrisk.core.cache.invalidation import AUTHZ, namespaces_for
from openrisk.core.db.base import utcnow
from openrisk.core.db.bulk import COPY_MIN_ROWS, RawJson, insert_rows
from openrisk.core.deps import SessionDep
from openrisk.core.errors import ServiceUnavailable
from openrisk.core.events import DomainEvent
from openrisk.core.ids import new_id
from openrisk.core.outbox import (
    INVALIDATE_TOPIC,
    Bumps,
    Invalidator,
    OutboxRow,
    Relay,
    event_payload,
)

log = logging.getLogger(__name__)


class UnitOfWork:
    def __init__(
        self,
        session: AsyncSession,
        *,
        invalidator: Invalidator | None = None,
        relay: Relay | None = None,
    ) -> None:
        """Without an ``invalidator`` (a CLI command, a test) the invalidation row stays for
        the running application's sweeper; without a ``relay`` the events wait for its poll."""
        self.session = session
        self._invalidator = invalidator
        self._relay = relay
        self._events: list[dict[str, Any]] = []
        self._bumps: dict[str | None, list[str]] = {}
        self._written = False  # events already in the outbox (``write_events``)

    @classmethod
    def for_app(cls, state: Any, session: AsyncSession) -> UnitOfWork:
        """A unit of work wired to an application's cache invalidation and outbox relay."""
        return cls(
            session,
            invalidator=getattr(state, "cache_invalidator", None),
            relay=getattr(state, "outbox_relay", None),
        )

    # ------------------------------------------------------------------ declaring

    def add_event(
        self,
        topic: str,
        payload: dict[str, object] | RawJson,
        *,
        tenant_id: uuid.UUID | None,
        event_id: uuid.UUID | None = None,
    ) -> None:
        """``event_id`` (default: a new one) becomes the outbox row's id: the event's id for
        every job it causes (the base of a webhook's delivery id). ``payload`` may be given
        already encoded (``RawJson``: many events built from bytes at hand)."""
        self._events.append(
            {
                "id": event_id or new_id(),
                "topic": topic,
                "payload": payload,
                "tenant_id": tenant_id,
            }
        )

    def invalidate(self, tenant_id: uuid.UUID | str | None, *namespaces: str) -> None:
        """Make the cached answers of these namespaces stale once the change commits
        (``tenant_id`` None: global namespaces, e.g. the connector catalogue)."""
        names = self._bumps.setdefault(None if tenant_id is None else str(tenant_id), [])
        names.extend(n for n in namespaces if n not in names)

    def emit(self, event: DomainEvent) -> None:
        """The event for the relay, and the invalidations it implies (``namespaces_for``)."""
        self.add_event(
            event.type, event_payload(event), tenant_id=event.tenant_id, event_id=event.id
        )
        for tenant, names in namespaces_for(event):
            self.invalidate(tenant, *names)

    def emit_all(self, events: Iterable[DomainEvent]) -> None:
        for event in events:
            self.emit(event)

    def authorization_changed(self) -> None:
        """Every worker's cached memberships, roles and tokens are stale after this commit."""
        self.invalidate(None, AUTHZ)

    # ------------------------------------------------------------------ finishing

    async def write_events(self) -> None:
        """Write the events declared so far into the outbox now, in the change's transaction
        (they commit or roll back with it): a change of many thousand rows then does not hold
        all of their events in memory until the commit."""
        events, self._events = self._events, []
        if events:
            await self._insert([{"created_at": utcnow(), **event} for event in events])
            self._written = True

    async def _insert(self, rows: list[dict[str, Any]]) -> None:
        encoded = any(type(row["payload"]) is RawJson for row in rows)
        if len(rows) >= COPY_MIN_ROWS or encoded:  # an import's thousands: a COPY, not INSERTs
            await insert_rows(self.session, cast(Table, OutboxRow.__table__), rows)
        elif rows:
            await self.session.execute(insert(OutboxRow), rows)

    async def rollback(self) -> None:
        self._events.clear()
        self._bumps.clear()
        self._written = False
        await self.session.rollback()

    async def commit(self) -> None:
        events, self._events = self._events, []
        bumps: Bumps = [(tenant, names) for tenant, names in self._bumps.items() if names]
        self._bumps = {}
        now = utcnow()
        rows = [{"created_at": now, **event} for event in events]
        invalidation_id = uuid.uuid4() if bumps else None
        if invalidation_id is not None:
            tenants = {tenant for tenant, _ in bumps}
            only = next(iter(tenants)) if len(tenants) == 1 else None
            rows.append(
                {
                    "id": invalidation_id,
                    "created_at": now,
                    "topic": INVALIDATE_TOPIC,
                    "payload": {"bumps": [[tenant, names] for tenant, names in bumps]},
                    "tenant_id": None if only is None else uuid.UUID(only),
                }
            )
        await self._insert(rows)
        await self.session.commit()
        written, self._written = self._written, False
        if invalidation_id is not None:
            await self._apply(invalidation_id, bumps)
        if (events or written) and self._relay is not None:
            self._relay.wake()

    async def _apply(self, row_id: uuid.UUID, bumps: Bumps) -> None:
        if self._invalidator is None:
            return
        try:
            await self._invalidator.apply(bumps)
        except CacheError as error:
            log.warning("cache invalidation left to the sweeper: %s", error)
            if any(AUTHZ in names for tenant, names in bumps if tenant is None):
                raise ServiceUnavailable(
                    "The change is saved, but other servers may not see it yet; "
                    "it takes effect within seconds. Retry to confirm.",
                    headers={"Retry-After": "2"},
                ) from error
            return
        await self.session.execute(delete(OutboxRow).where(OutboxRow.id == row_id))
        await self.session.commit()


async def commit_with(uow: UnitOfWork, events: Iterable[DomainEvent]) -> None:
    """Emit the change's events (and their invalidations), then commit."""
    uow.emit_all(events)
    await uow.commit()


async def get_uow(request: Request, session: SessionDep) -> UnitOfWork:
    return UnitOfWork.for_app(request.app.state, session)


UowDep = Annotated[UnitOfWork, Depends(get_uow)]
