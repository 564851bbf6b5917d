"""The audit trail: read and export only, never written through the API."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Depends, Query
from fastapi.responses import StreamingResponse

from openrisk.audit import queries
from openrisk.audit.schemas import AuditEventOut
from openrisk.auth.deps import require
from openrisk.core.context import RequestContext
from openrisk.core.deps import DatabaseDep, SessionDep
from openrisk.core.inputs import Instant
from openrisk.core.pagination import Page, PageParams, page_params
from openrisk.core.routing import api_router

router = api_router("/audit-events", tags=["audit"])


async def audit_filter(
    actor: Annotated[uuid.UUID | None, Query(description="actor user id")] = None,
    action: Annotated[str | None, Query(max_length=64)] = None,
    resource: Annotated[str | None, Query(max_length=40, description="resource type")] = None,
    since: Annotated[Instant | None, Query(description="from this instant (with offset)")] = None,
    until: Annotated[Instant | None, Query(description="until this instant (with offset)")] = None,
) -> queries.AuditFilter:
    return queries.AuditFilter(
        actor=actor, action=action, resource=resource, since=since, until=until
    )


FilterDep = Annotated[queries.AuditFilter, Depends(audit_filter)]


@router.get("")
async def list_audit_events(
    context: Annotated[RequestContext, Depends(require("audit:read"))],
    session: SessionDep,
    filters: FilterDep,
    page: Annotated[PageParams, Depends(page_params)],
) -> Page[AuditEventOut]:
    events, total = await queries.list_events(
        session, context=context, filters=filters, offset=page.offset, limit=page.page_size
    )
    return Page(
        items=[AuditEventOut.model_validate(e) for e in events],
        total=total,
        page=page.page,
        page_size=page.page_size,
    )


@router.get("/export", response_class=StreamingResponse)
async def export_audit_events(
    context: Annotated[RequestContext, Depends(require("audit:export"))],
    database: DatabaseDep,
    filters: FilterDep,
) -> StreamingResponse:
    """The filtered trail as CSV, streamed."""
    return StreamingResponse(
        queries.export_csv(database.sessions, context=context, filters=filters),
        media_type="text/csv",
        headers={"Content-Disposition": 'attachment; filename="audit-events.csv"'},
    )
