"""The audit log, filtered by actor, action, resource type and dates."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

from fastapi import Request
from starlette.responses import Response

from openrisk.audit import labels, queries
from openrisk.core.deps import SessionDep
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


@router.get("/audit")
async def audit_log(request: Request, web: WebDep, session: SessionDep) -> Response:
    web.require("audit:read")
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
        until=datetime.combine(until_day + timedelta(days=1), time.min, UTC) if until_day else None,
    )
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
        },
        web=web,
        section="audit",
    )
