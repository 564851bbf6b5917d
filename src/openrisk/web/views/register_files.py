"""The register's files and batch actions: export with the list's filters, import with a dry
run first, and bulk changes of the selected rows. Each calls the same services as the API."""

from __future__ import annotations

import base64
from typing import Any

from fastapi import Request
from pydantic import ValidationError
from starlette.datastructures import FormData, UploadFile
from starlette.responses import Response, StreamingResponse

from openrisk.audit import labels
from openrisk.core.deps import DatabaseDep, SessionDep
from openrisk.core.errors import ValidationFailed
from openrisk.core.uow import UowDep
from openrisk.risks import bulk, transfer
from openrisk.risks.schemas import BulkRequest, ExportFormat, ImportResult
from openrisk.web import forms
from openrisk.web.context import FormDep, WebContext, WebDep
from openrisk.web.rendering import error_page, flash_redirect, render
from openrisk.web.views.common import choice, page_router
from openrisk.web.views.risks import register_query

router = page_router()

EXPORT_FORMATS = [f.value for f in ExportFormat]


@router.get("/risks/export")
async def export_register(
    request: Request, web: WebDep, session: SessionDep, database: DatabaseDep
) -> Response:
    """The register as CSV, XLSX or JSON, with the filters and sort of the list page (the same
    streamed export as the API's ``GET /risks/export``)."""
    web.require("risk:export")
    query, _ = await register_query(request, session, web, cookies=False)
    if query.errors:
        return error_page(request, 422, "Correct the register's filters, then export again.")
    fmt = ExportFormat(choice(request, "format", EXPORT_FORMATS, ExportFormat.csv.value))
    stream = transfer.export_stream(
        database,
        tenant_id=web.tenant_id,
        filters=query.filters,
        sort=query.sort,
        order=query.order,
        fmt=fmt,
    )
    filename = f"risks-{web.context.tenant_slug}.{fmt.value}"
    return StreamingResponse(
        stream,
        media_type=transfer.MEDIA_TYPES[fmt],
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


MAX_IMPORT_PREVIEW_BYTES = 2 * 1024 * 1024  # the previewed file rides in the confirm form


def _import_page(
    request: Request,
    web: WebContext,
    *,
    result: ImportResult | None = None,
    filename: str = "",
    content: bytes = b"",
    error: str = "",
    status: int = 200,
) -> Response:
    return render(
        request,
        "risks/import.html",
        {
            "result": result,
            "filename": filename,
            "content": base64.b64encode(content).decode() if content else "",
            "error": error,
            "max_mb": MAX_IMPORT_PREVIEW_BYTES // (1024 * 1024),
        },
        web=web,
        section="risks",
        status=status,
    )


@router.get("/risks/import")
async def import_form(request: Request, web: WebDep) -> Response:
    web.require("risk:create")
    return _import_page(request, web)


async def _uploaded(form: FormData) -> tuple[str, bytes]:
    """The chosen file, or the previewed one sent back by the confirm form."""
    upload = form.get("file")
    if isinstance(upload, UploadFile) and upload.filename:
        return upload.filename, await upload.read(MAX_IMPORT_PREVIEW_BYTES + 1)
    try:
        content = base64.b64decode(forms.text(form, "content"), validate=True)
    except ValueError:
        content = b""
    return forms.text(form, "filename"), content


@router.post("/risks/import")
async def import_risks(request: Request, web: FormDep, uow: UowDep) -> Response:
    """A dry run first (per-row errors, nothing written), then the import of the same file:
    the API's import, all rows or none."""
    web.require("risk:create")
    assert web.form is not None
    filename, content = await _uploaded(web.form)
    if not content:
        return _import_page(request, web, error="Choose a CSV or XLSX file.", status=422)
    if len(content) > MAX_IMPORT_PREVIEW_BYTES:
        mb = MAX_IMPORT_PREVIEW_BYTES // (1024 * 1024)
        error = f"The file is over {mb} MB: import it with the API."
        return _import_page(request, web, error=error, status=413)
    dry_run = forms.text(web.form, "action") != "import"
    try:
        result = await transfer.import_file(
            uow=uow, context=web.context, filename=filename, content=content, dry_run=dry_run
        )
    except ValidationFailed as error:
        return _import_page(request, web, filename=filename, error=error.detail, status=422)
    if dry_run or not result.committed:
        status = 200 if not result.errors else 422
        return _import_page(
            request, web, result=result, filename=filename, content=content, status=status
        )
    return flash_redirect(
        request,
        "/risks",
        f"Imported {filename}: {result.created} risk{'' if result.created == 1 else 's'} "
        f"created, {result.updated} updated.",
    )


BULK_CODES = ("risk:update", "risk:assign", "risk:delete")


def _bulk_body(form: FormData) -> dict[str, Any]:
    """The API's bulk request for the register's action bar."""
    action = forms.text(form, "bulk_action")
    body: dict[str, Any] = {"ids": forms.strings(form, "ids")}
    if action == "status":
        body.update(action="update", changes={"status": forms.text(form, "bulk_status") or None})
    elif action == "assign":
        body.update(action="assign", owner_id=forms.text(form, "bulk_owner_id") or None)
    else:
        body["action"] = action
    return body


@router.post("/risks/bulk")
async def bulk_risks(request: Request, web: FormDep, uow: UowDep) -> Response:
    """Status, owner or deletion of the selected rows; the API's bulk service checks each row
    and answers per row, so the page lists what was done and what was refused, and why."""
    if not any(web.has(code) for code in BULK_CODES):
        web.require("risk:update")
    assert web.form is not None
    back = forms.text(web.form, "back")
    back = back if back.startswith("/risks") and not back.startswith("//") else "/risks"
    try:
        body = BulkRequest.model_validate(_bulk_body(web.form))
    except ValidationError as error:
        errors = forms.pydantic_errors(error)
        message = (
            "Select at least one risk."
            if "ids" in errors
            else "Choose what to do with the selected risks."
        )
        return flash_redirect(request, back, message, level="error")
    result = await bulk.bulk(uow=uow, context=web.context, request=body)
    names = await labels.resource_labels(
        uow.session,
        tenant_id=web.tenant_id,
        refs=[("risk", str(item.id)) for item in result.results],
    )
    return render(
        request,
        "risks/bulk.html",
        {
            "result": result,
            "titles": {item.id: names.get(("risk", str(item.id))) for item in result.results},
            "back": back,
        },
        web=web,
        section="risks",
    )
