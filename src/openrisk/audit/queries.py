"""Reading the audit trail: filtered pages and a streamed CSV export. There is no update or
delete anywhere: the trail is append-only."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime

import orjson
from sqlalchemy import ColumnElement, func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from openrisk.audit.models import AuditEvent
from openrisk.core.context import RequestContext
from openrisk.core.spreadsheet import csv_line

EXPORT_COLUMNS = (
    "created_at",
    "action",
    "outcome",
    "resource_type",
    "resource_id",
    "actor_user_id",
    "actor_token_id",
    "ip",
    "user_agent",
    "request_id",
    "changes",
)


@dataclass(frozen=True)
class AuditFilter:
    actor: uuid.UUID | None = None
    action: str | None = None
    resource: str | None = None
    since: datetime | None = None
    until: datetime | None = None

    def conditions(self, tenant_id: uuid.UUID) -> list[ColumnElement[bool]]:
        conditions = [AuditEvent.tenant_id == tenant_id]
        if self.actor:
            conditions.append(AuditEvent.actor_user_id == self.actor)
        if self.action:
            conditions.append(AuditEvent.action == self.action)
        if self.resource:
            conditions.append(AuditEvent.resource_type == self.resource)
        if self.since:
            conditions.append(AuditEvent.created_at >= self.since)
        if self.until:
            conditions.append(AuditEvent.created_at < self.until)
        return conditions


async def list_events(
    session: AsyncSession,
    *,
    context: RequestContext,
    filters: AuditFilter,
    offset: int,
    limit: int,
) -> tuple[list[AuditEvent], int]:
    conditions = filters.conditions(context.tenant_id)
    total = await session.scalar(select(func.count()).select_from(AuditEvent).where(*conditions))
    events = await session.scalars(
        select(AuditEvent)
        .where(*conditions)
        .order_by(AuditEvent.created_at.desc(), AuditEvent.id)
        .offset(offset)
        .limit(limit)
    )
    return list(events), int(total or 0)


async def export_csv(
    sessions: async_sessionmaker[AsyncSession], *, context: RequestContext, filters: AuditFilter
) -> AsyncIterator[str]:
    """CSV rows streamed from the database in batches, oldest first.

    The stream owns its session: it outlives the request handler that returns the response.
    """
    yield csv_line(list(EXPORT_COLUMNS))
    async with sessions() as session:
        result = await session.stream_scalars(
            select(AuditEvent)
            .where(*filters.conditions(context.tenant_id))
            .order_by(AuditEvent.created_at, AuditEvent.id)
            .execution_options(yield_per=500)
        )
        async for event in result:
            values: list[object] = [getattr(event, column) for column in EXPORT_COLUMNS[:-1]]
            values.append(orjson.dumps(event.changes).decode() if event.changes else "")
            yield csv_line(values)
