"""Reports: ``GET /reports`` (list), ``POST /reports`` (generate),
``GET /reports/{id}`` (download the file).

Permissions: ``report:create`` to generate (Analysts and up); ``report:read`` to list
and to download (Viewers too: a stored report only shows data a Viewer can already read, and
executive summaries are typically read by Viewers).
"""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Depends, Query, Response, status

from openrisk.auth.deps import require
from openrisk.core.context import RequestContext
from openrisk.core.deps import SessionDep
from openrisk.core.pagination import Page, PageParams, page_params
from openrisk.core.routing import API_PREFIX, api_router
from openrisk.core.uow import UowDep
from openrisk.reports import service
from openrisk.reports.models import Report
from openrisk.reports.schemas import ReportCreate, ReportFormat, ReportKind, ReportOut

router = api_router("/reports", tags=["reports"])

_DOWNLOAD_CONTENT: dict[str, dict[str, object]] = {
    "text/csv": {},
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": {},
    "application/pdf": {},
}


def _out(report: Report) -> ReportOut:
    return ReportOut(
        id=report.id,
        kind=report.kind,
        format=report.format,
        filename=report.filename,
        content_type=report.content_type,
        size_bytes=report.size_bytes,
        summary=report.summary,
        created_by=report.created_by,
        created_at=report.created_at,
        download_url=f"{API_PREFIX}/reports/{report.id}",
    )


@router.get("")
async def list_reports(
    context: Annotated[RequestContext, Depends(require("report:read"))],
    session: SessionDep,
    page: Annotated[PageParams, Depends(page_params)],
    kind: ReportKind | None = None,
    format: Annotated[ReportFormat | None, Query()] = None,
) -> Page[ReportOut]:
    """The tenant's generated reports, newest first."""
    rows, total = await service.list_reports(
        session, context=context, kind=kind, fmt=format, offset=page.offset, limit=page.page_size
    )
    return Page(
        items=[_out(r) for r in rows], total=total, page=page.page, page_size=page.page_size
    )


@router.post("", status_code=status.HTTP_201_CREATED)
async def create_report(
    body: ReportCreate,
    context: Annotated[RequestContext, Depends(require("report:create"))],
    uow: UowDep,
) -> ReportOut:
    """Generate a report from the tenant's current data and keep it; download it from
    ``download_url``."""
    report = await service.create_report(uow=uow, context=context, kind=body.kind, fmt=body.format)
    return _out(report)


@router.get(
    "/{report_id}",
    response_class=Response,
    responses={200: {"description": "The report file", "content": _DOWNLOAD_CONTENT}},
)
async def download_report(
    report_id: uuid.UUID,
    context: Annotated[RequestContext, Depends(require("report:read"))],
    session: SessionDep,
) -> Response:
    """The report file, with its content type (CSV, XLSX or PDF) as an attachment."""
    report = await service.get_report(session, context=context, report_id=report_id)
    return Response(
        content=report.content,
        media_type=report.content_type,
        headers={
            "Content-Disposition": f'attachment; filename="{report.filename}"',
            "Cache-Control": "private, no-store",
            "X-Content-Type-Options": "nosniff",
        },
    )
