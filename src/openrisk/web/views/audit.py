"""The audit log, filtered by actor, action, resource type and dates."""

from __future__ import annotations

import urllib.parse
from datetime import UTC, date, datetime, time, timedelta

from fastapi import Request
from starlette.responses import Response, StreamingResponse

from openrisk.audit import labels, queries
from openrisk.core.deps import DatabaseDep, SessionDep
from openrisk.web import changes
from openrisk.web.context import WebDep
from openrisk.web.rendering import render
from openrisk.web.views.common import (
    date_param,
    member_directory,
    page_router,
    pager,
    uuid_param,
)

router = page_router()

RESOURCE_TYPES = (
    "app",
    "asset",
    "connector",
    "custom_field",
    "invitation",
    "member",
    "mitigation",
    "report",
    "risk",
    "role",
    "tenant",
    "token",
    "user",
)


def _filters(request: Request) -> tuple[queries.AuditFilter, date | None, date | None]:
    params = request.query_params
    since_day = date_param(params.get("since"))
    until_day = date_param(params.get("until"))
    resource = params.get("resource", "")
    filters = queries.AuditFilter(
        actor=uuid_param(params.get("actor")),
        action=(params.get("action") or "").strip()[:64] or None,
        resource=resource if resource in RESOURCE_TYPES else None,
        since=datetime.combine(since_day, time.min, UTC) if since_day else None,
        # "until" is a day the person wants included
        until=(
            datetime.combine(until_day + timedelta(days=1), time.min, UTC)
            if until_day and until_day < date.max
            else None
        ),
    )
    return filters, since_day, until_day


@router.get("/audit")
async def audit_log(request: Request, web: WebDep, session: SessionDep) -> Response:
    web.require("audit:read")
    filters, since_day, until_day = _filters(request)
    page = pager(request, default_size=50, sizes=(50, 100))
    events, total = await queries.list_events(
        session, context=web.context, filters=filters, offset=page.offset, limit=page.page_size
    )
    directory = await member_directory(request, session, web)
    resources = await labels.resource_labels(
        session,
        tenant_id=web.tenant_id,
        refs=[(e.resource_type, e.resource_id) for e in events if e.resource_id],
    )
    names = {str(uid): row.full_name or row.email for uid, row in directory.items()}
    return render(
        request,
        "audit.html",
        {
            "events": events,
            "pager": page.with_total(total),
            "filters": filters,
            "since": since_day.isoformat() if since_day else "",
            "until": until_day.isoformat() if until_day else "",
            "resource_types": RESOURCE_TYPES,
            "directory": directory,
            "resources": resources,
            "change_lines": {e.id: changes.change_lines(e.changes, names) for e in events},
            "export_query": urllib.parse.urlencode(
                [(k, v) for k, v in request.query_params.multi_items() if k not in ("page",)]
            ),
        },
        web=web,
        section="audit",
    )


@router.get("/audit/export")
async def export_audit_log(request: Request, web: WebDep, database: DatabaseDep) -> Response:
    """The filtered trail as CSV: the API's streamed export, with the page's filters."""
    web.require("audit:export")
    filters, _, _ = _filters(request)
    return StreamingResponse(
        queries.export_csv(database.sessions, context=web.context, filters=filters),
        media_type="text/csv",
        headers={"Content-Disposition": 'attachment; filename="audit-events.csv"'},
    )
