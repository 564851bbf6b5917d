"""Reports: generate the register or the executive summary as CSV, XLSX or PDF from the
tenant's current data, list the generated ones and download them (the API's report service)."""

from __future__ import annotations

import uuid

from fastapi import Request
from starlette.responses import Response

from openrisk.core.deps import SessionDep
from openrisk.core.uow import UowDep
from openrisk.reports import service as reports
from openrisk.reports.schemas import ReportFormat, ReportKind
from openrisk.web import forms
from openrisk.web.context import FormDep, WebDep
from openrisk.web.rendering import flash_redirect, render
from openrisk.web.views.common import page_router, pager

router = page_router()

KINDS = [k.value for k in ReportKind]
FORMATS = [f.value for f in ReportFormat]


@router.get("/reports")
async def reports_page(request: Request, web: WebDep, session: SessionDep) -> Response:
    web.require("report:read")
    page = pager(request)
    rows, total = await reports.list_reports(
        session, context=web.context, kind=None, fmt=None, offset=page.offset, limit=page.page_size
    )
    return render(
        request,
        "reports.html",
        {"reports": rows, "pager": page.with_total(total), "kinds": KINDS, "formats": FORMATS},
        web=web,
        section="reports",
    )


@router.post("/reports")
async def generate_report(request: Request, web: FormDep, uow: UowDep) -> Response:
    web.require("report:create")
    assert web.form is not None
    kind, fmt = forms.text(web.form, "kind"), forms.text(web.form, "format")
    if kind not in KINDS or fmt not in FORMATS:
        return flash_redirect(request, "/reports", "Choose a report and a format.", level="error")
    report = await reports.create_report(
        uow=uow, context=web.context, kind=ReportKind(kind), fmt=ReportFormat(fmt)
    )
    return flash_redirect(request, "/reports", f"{report.filename} is ready to download.")


@router.get("/reports/{report_id}/download")
async def download_report(
    request: Request, report_id: uuid.UUID, web: WebDep, session: SessionDep
) -> Response:
    web.require("report:read")
    report = await reports.get_report(session, context=web.context, report_id=report_id)
    return Response(
        content=report.content,
        media_type=report.content_type,
        headers={"Content-Disposition": f'attachment; filename="{report.filename}"'},
    )
