"""The risk register: list (filters, sort, search, pages), forms, detail with mitigations,
sub-actions and history. Every write goes through the register's services, with the same
permission checks as the API routes."""

from __future__ import annotations

import base64
import uuid
from decimal import Decimal, InvalidOperation
from typing import Any

from fastapi import Request
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.datastructures import FormData, UploadFile
from starlette.responses import Response, StreamingResponse

from openrisk.assets import service as assets
from openrisk.assets.models import Asset
from openrisk.assets.schemas import AssetSort
from openrisk.audit import labels
from openrisk.core.deps import DatabaseDep, SessionDep
from openrisk.core.errors import Conflict, PreconditionFailed, ValidationFailed
from openrisk.core.pagination import InvalidCursor
from openrisk.core.uow import UowDep
from openrisk.custom_fields import service as custom_fields
from openrisk.custom_fields.models import CustomField
from openrisk.methodology import clock
from openrisk.methodology.store import scoring_for
from openrisk.mitigations import service as mitigations
from openrisk.mitigations.schemas import (
    MitigationCreate,
    MitigationStatus,
    MitigationUpdate,
    SubActionCreate,
    SubActionUpdate,
)
from openrisk.risks import bulk, commands, cursors, reads, transfer
from openrisk.risks.enums import RiskStatus, Severity, SortField, SortOrder, Treatment
from openrisk.risks.schemas import (
    BulkRequest,
    ExportFormat,
    ImportResult,
    RiskCreate,
    RiskUpdate,
)
from openrisk.saved_views import service as saved_views
from openrisk.saved_views.schemas import SavedViewCreate
from openrisk.web import changes, forms, methodology, quantification, register
from openrisk.web.context import FormDep, WebContext, WebDep
from openrisk.web.rendering import error_page, redirect, render
from openrisk.web.session import set_flash
from openrisk.web.views.common import (
    Pager,
    choice,
    member_directory,
    page_router,
    pager,
    uuid_param,
)

router = page_router()

ASSET_PICKER_LIMIT = 100
CUSTOM_FIELDS_LIMIT = 100
HISTORY_LIMIT = 20
MITIGATION_LIMIT = 100
SORTS = [s.value for s in SortField]
STATUSES = [s.value for s in RiskStatus]
SEVERITIES = [s.value for s in Severity]
TREATMENTS = [t.value for t in Treatment]
MITIGATION_STATUSES = [s.value for s in MitigationStatus]


def _score(raw: str | None) -> Decimal | None:
    try:
        value = Decimal(raw) if raw else None
    except InvalidOperation:
        return None
    return value if value is not None and 0 <= value <= 100 else None


# --------------------------------------------------------------------------- list


async def _register_query(
    request: Request, session: AsyncSession, web: WebContext, *, cookies: bool = True
) -> tuple[register.RegisterQuery, dict[str, str]]:
    """The register's query read with the tenant's bands and levels, and the bands' colours
    (highest band first)."""
    model = await scoring_for(session, tenant_id=web.tenant_id)
    bands = {b.name: b.color for b in reversed(model.bands)}
    query = register.parse(
        request.query_params,
        request.cookies if cookies else None,
        bands=list(bands),
        impact_levels=model.impact_levels,
        probability_levels=model.probability_levels,
    )
    return query, bands


@router.get("/risks")
async def risk_list(request: Request, web: WebDep, session: SessionDep) -> Response:
    web.require("risk:read")
    query, bands = await _register_query(request, session, web)
    page = pager(request)
    records: list[reads.ListedRisk] = []
    shown = page
    if not query.errors:  # as the API answers 422: a bad filter lists nothing
        at = _page_start(request, page, query.sort, query.order)
        found = await reads.list_risks(
            session,
            tenant_id=web.tenant_id,
            filters=query.filters,
            sort=query.sort,
            order=query.order,
            offset=at.offset,
            limit=page.page_size,
            after=at.after,
            count_limit=request.app.state.settings.list_exact_count_limit,
        )
        records = list(found.items)
        shown = Pager(
            at.page,
            page.page_size,
            found.total,
            next_cursor=cursors.following(
                request.app.state.cursors, found, at, sort=query.sort, order=query.order
            ),
            total_is_estimate=found.total_is_estimate,
        )
    response = render(
        request,
        "risks/list.html",
        {
            "records": records,
            "pager": shown,
            "query": query,
            "filters": query.filters,
            "values": query.values,
            "errors": query.errors,
            "sort": query.sort.value,
            "order": query.order.value,
            "statuses": register.STATUSES,
            "severities": list(bands),
            "band_colors": bands,
            "review_today": clock.today(),
            "columns": [c for c in register.COLUMNS if c.key in query.columns],
            "all_columns": register.COLUMNS,
            "directory": await member_directory(request, session, web),
            "saved_views": await saved_views.list_views(session, context=web.context),
            "current_query": saved_views.clean_query(request.url.query),
        },
        web=web,
        section="risks",
        status=422 if query.errors else 200,
    )
    if query.columns_chosen:
        response.set_cookie(
            register.COLUMNS_COOKIE,
            ".".join(query.columns) or "title",
            max_age=365 * 86400,
            httponly=True,
            samesite="lax",
        )
    return response


@router.post("/risks/views")
async def save_view(request: Request, web: FormDep, uow: UowDep) -> Response:
    """Keep the register's current filters, sort and columns under a name (for this person)."""
    assert web.form is not None
    query = forms.text(web.form, "query")
    back = "/risks" + (f"?{query}" if query else "")
    try:
        body = SavedViewCreate.model_validate(
            {"name": forms.text(web.form, "name"), "query": query}
        )
        view = await saved_views.create_view(
            uow=uow, context=web.context, name=body.name, query=body.query
        )
    except ValidationError as error:
        message = "View name: " + next(iter(forms.pydantic_errors(error).values()))
    except (ValidationFailed, Conflict) as error:
        message = error.detail
    else:
        response = redirect(back)
        set_flash(request, response, f"View “{view.name}” saved.")
        return response
    response = redirect(back)
    set_flash(request, response, message, level="error")
    return response


@router.post("/risks/views/{view_id}/delete")
async def delete_view(request: Request, view_id: uuid.UUID, web: FormDep, uow: UowDep) -> Response:
    await saved_views.delete_view(uow=uow, context=web.context, view_id=view_id)
    response = redirect("/risks")
    set_flash(request, response, "View deleted.")
    return response


EXPORT_FORMATS = [f.value for f in ExportFormat]


@router.get("/risks/export")
async def export_register(
    request: Request, web: WebDep, session: SessionDep, database: DatabaseDep
) -> Response:
    """The register as CSV, XLSX or JSON, with the filters and sort of the list page (the same
    streamed export as the API's ``GET /risks/export``)."""
    web.require("risk:export")
    query, _ = await _register_query(request, session, web, cookies=False)
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


def _page_start(
    request: Request, page: Pager, sort: SortField, order: SortOrder
) -> cursors.Position:
    """Next pages come by cursor (every page as fast as the first), numbered pages by offset;
    a cursor that does not fit (edited, or of another sort) falls back to the page number."""
    token = (request.query_params.get("cursor") or "")[:1000] or None
    try:
        return cursors.start(
            request.app.state.cursors,
            token,
            page=page.page,
            page_size=page.page_size,
            sort=sort,
            order=order,
        )
    except InvalidCursor:
        return cursors.start(
            request.app.state.cursors,
            None,
            page=page.page,
            page_size=page.page_size,
            sort=sort,
            order=order,
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
    response = redirect("/risks")
    set_flash(
        request,
        response,
        f"Imported {filename}: {result.created} risk{'' if result.created == 1 else 's'} "
        f"created, {result.updated} updated.",
    )
    return response


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
        response = redirect(back)
        set_flash(request, response, message, level="error")
        return response
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


# --------------------------------------------------------------------------- forms


async def _form_options(request: Request, session: AsyncSession, web: WebContext) -> dict[str, Any]:
    asset_rows: list[Asset] = []
    if web.has("asset:read"):
        asset_rows, _ = await assets.list_assets(
            session,
            tenant_id=web.tenant_id,
            q=None,
            types=[],
            criticality=[],
            sort=AssetSort.name,
            descending=False,
            offset=0,
            limit=ASSET_PICKER_LIMIT,
        )
    definitions, _ = await custom_fields.list_fields(
        session, tenant_id=web.tenant_id, offset=0, limit=CUSTOM_FIELDS_LIMIT
    )
    return {
        "asset_options": asset_rows,
        "definitions": definitions,
        "directory": await member_directory(request, session, web),
        "statuses": STATUSES,
        "treatments": TREATMENTS,
        "levels": [1, 2, 3, 4, 5],
    }


def _raw_values(form: FormData, definitions: list[CustomField]) -> dict[str, Any]:
    """What the person typed, to fill the form again after an error."""
    return {
        "title": str(form.get("title") or ""),
        "description": str(form.get("description") or ""),
        "impact": forms.text(form, "impact"),
        "probability": forms.text(form, "probability"),
        "status": forms.text(form, "status"),
        "treatment": forms.text(form, "treatment"),
        "owner_id": forms.text(form, "owner_id"),
        "tags": forms.text(form, "tags"),
        "frameworks": forms.text(form, "frameworks"),
        "asset_ids": forms.strings(form, "asset_ids"),
        "review_date": forms.text(form, "review_date"),
        "custom": {d.name: forms.text(form, f"cf_{d.name}") for d in definitions},
        "version": forms.text(form, "version"),
    }


def _record_values(record: reads.RiskRecord) -> dict[str, Any]:
    risk = record.risk
    return {
        "title": risk.title,
        "description": risk.description,
        "impact": str(risk.impact),
        "probability": str(risk.probability),
        "status": risk.status,
        "treatment": risk.treatment,
        "owner_id": str(risk.owner_id or ""),
        "tags": ", ".join(risk.tags),
        "frameworks": ", ".join(risk.frameworks),
        "asset_ids": [str(a) for a in record.asset_ids],
        "review_date": risk.review_date.isoformat() if risk.review_date else "",
        "custom": {k: _custom_text(v) for k, v in (risk.custom_fields or {}).items()},
        "version": str(risk.version),
    }


def _custom_text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def _payload(values: dict[str, Any], *, web: WebContext, update: bool) -> dict[str, Any]:
    """The JSON body the API would receive for this form."""
    data: dict[str, Any] = {
        "title": values["title"],
        "description": values["description"],
        "impact": values["impact"],
        "probability": values["probability"],
        "status": values["status"],
        "treatment": values["treatment"],
        "tags": forms.split_list(values["tags"]),
        "frameworks": forms.split_list(values["frameworks"]),
        "review_date": values["review_date"] or None,
    }
    if web.has("asset:read"):
        data["asset_ids"] = values["asset_ids"]
    if values["owner_id"]:  # the form offers it only with risk:assign; the service decides
        data["owner_id"] = values["owner_id"]
    custom = {name: (text or None) for name, text in values["custom"].items()}
    data["custom_fields"] = custom if update else {k: v for k, v in custom.items() if v}
    if update and values["version"]:
        data["version"] = values["version"]
    return data


async def _with_level_errors(
    session: AsyncSession, web: WebContext, values: dict[str, Any], errors: dict[str, str]
) -> dict[str, str]:
    """The form's other errors do not hide levels beyond the tenant's risk model."""
    scoring = await scoring_for(session, tenant_id=web.tenant_id)
    return {**commands.level_problems(scoring, values), **errors}


def _custom_keys(errors: dict[str, str]) -> dict[str, str]:
    """``custom_fields.<name>`` errors belong to the ``cf_<name>`` inputs."""
    return {
        ("cf_" + k.split(".", 1)[1] if k.startswith("custom_fields.") else k): v
        for k, v in errors.items()
    }


def _form_page(
    request: Request,
    web: WebContext,
    options: dict[str, Any],
    values: dict[str, Any],
    *,
    record: reads.RiskRecord | None = None,
    errors: dict[str, str] | None = None,
    status: int = 200,
) -> Response:
    return render(
        request,
        "risks/form.html",
        {**options, "values": values, "record": record, "errors": _custom_keys(errors or {})},
        web=web,
        section="risks",
        status=status,
    )


@router.get("/risks/new")
async def new_risk_form(request: Request, web: WebDep, session: SessionDep) -> Response:
    web.require("risk:create")
    values = {
        "title": "",
        "description": "",
        "impact": "3",
        "probability": "3",
        "status": RiskStatus.DRAFT.value,
        "treatment": Treatment.MITIGATE.value,
        "owner_id": str(web.user_id),
        "tags": "",
        "frameworks": "",
        "asset_ids": [],
        "review_date": "",
        "custom": {},
        "version": "",
    }
    return _form_page(request, web, await _form_options(request, session, web), values)


@router.post("/risks/new")
async def create_risk(request: Request, web: FormDep, uow: UowDep) -> Response:
    web.require("risk:create")
    assert web.form is not None
    options = await _form_options(request, uow.session, web)
    values = _raw_values(web.form, options["definitions"])
    try:
        data = RiskCreate.model_validate(_payload(values, web=web, update=False))
        created = await commands.create_risk(uow=uow, context=web.context, data=data)
    except ValidationError as error:
        errors = await _with_level_errors(uow.session, web, values, forms.pydantic_errors(error))
    except ValidationFailed as error:
        errors = forms.service_errors(error)
    else:
        response = redirect(f"/risks/{created.risk.id}")
        set_flash(request, response, f"Risk “{created.risk.title}” created.")
        return response
    return _form_page(request, web, options, values, errors=errors, status=422)


@router.get("/risks/{risk_id}/edit")
async def edit_risk_form(
    request: Request, risk_id: uuid.UUID, web: WebDep, session: SessionDep
) -> Response:
    web.require("risk:update")
    record = await reads.get_record(session, tenant_id=web.tenant_id, risk_id=risk_id)
    web.context.require_on("risk:update", record.risk.owner_id)
    options = await _form_options(request, session, web)
    return _form_page(request, web, options, _record_values(record), record=record)


@router.post("/risks/{risk_id}/edit")
async def update_risk(request: Request, risk_id: uuid.UUID, web: FormDep, uow: UowDep) -> Response:
    web.require("risk:update")
    assert web.form is not None
    record = await reads.get_record(uow.session, tenant_id=web.tenant_id, risk_id=risk_id)
    options = await _form_options(request, uow.session, web)
    values = _raw_values(web.form, options["definitions"])
    try:
        data = RiskUpdate.model_validate(_payload(values, web=web, update=True))
        updated = await commands.update_risk(
            uow=uow, context=web.context, risk_id=risk_id, data=data
        )
    except ValidationError as error:
        errors = await _with_level_errors(uow.session, web, values, forms.pydantic_errors(error))
    except ValidationFailed as error:
        errors = forms.service_errors(error)
    except PreconditionFailed:
        errors = {
            forms.FORM_ERROR: "Someone changed this risk while you were editing it. "
            "Reload the page to see their changes, then edit again."
        }
    else:
        response = redirect(f"/risks/{updated.risk.id}")
        set_flash(request, response, "Risk saved.")
        return response
    return _form_page(request, web, options, values, record=record, errors=errors, status=422)


@router.post("/risks/{risk_id}/delete")
async def delete_risk(request: Request, risk_id: uuid.UUID, web: FormDep, uow: UowDep) -> Response:
    web.require("risk:delete")
    await commands.delete_risk(uow=uow, context=web.context, risk_id=risk_id)
    response = redirect("/risks")
    set_flash(request, response, "Risk deleted.")
    return response


# --------------------------------------------------------------------------- detail


async def _linked_assets(
    session: AsyncSession, web: WebContext, asset_ids: list[uuid.UUID]
) -> list[Asset]:
    if not asset_ids or not web.has("asset:read"):
        return []
    rows = await session.scalars(
        select(Asset)
        .where(
            Asset.tenant_id == web.tenant_id,
            Asset.deleted_at.is_(None),
            Asset.id.in_(asset_ids),
        )
        .order_by(Asset.name)
    )
    return list(rows)


async def _detail(
    request: Request,
    web: WebContext,
    session: AsyncSession,
    risk_id: uuid.UUID,
    *,
    mitigation_values: dict[str, str] | None = None,
    mitigation_errors: dict[str, str] | None = None,
    quant_values: dict[str, str] | None = None,
    quant_errors: dict[str, str] | None = None,
    acceptance_values: dict[str, str] | None = None,
    acceptance_errors: dict[str, str] | None = None,
    status: int = 200,
) -> Response:
    web.require("risk:read")
    record = await reads.get_record(session, tenant_id=web.tenant_id, risk_id=risk_id)
    views: list[mitigations.MitigationView] = []
    mitigation_total = 0
    if web.has("mitigation:read"):
        views, mitigation_total = await mitigations.list_for_risk(
            session, tenant_id=web.tenant_id, risk_id=risk_id, offset=0, limit=MITIGATION_LIMIT
        )
    history, history_total = await reads.list_history(
        session, tenant_id=web.tenant_id, risk_id=risk_id, offset=0, limit=HISTORY_LIMIT
    )
    directory = await member_directory(request, session, web)
    names = await _names(session, web, directory, [h.changes for h in history])
    definitions: list[CustomField] = []
    if record.risk.custom_fields:
        definitions, _ = await custom_fields.list_fields(
            session, tenant_id=web.tenant_id, offset=0, limit=CUSTOM_FIELDS_LIMIT
        )
    return render(
        request,
        "risks/detail.html",
        {
            "record": record,
            "risk": record.risk,
            "linked_assets": await _linked_assets(session, web, record.asset_ids),
            "mitigations": [v.out() for v in views],
            "mitigation_total": mitigation_total,
            "history": history,
            "history_lines": {
                h.id: changes.change_lines(h.changes, names, created=h.action == "CREATE")
                for h in history
            },
            "history_total": history_total,
            "field_labels": {d.name: d.label for d in definitions},
            "directory": directory,
            "mitigation_statuses": MITIGATION_STATUSES,
            "mitigation_values": mitigation_values
            or {"status": "PLANNED", "cost": "2", "effort_days": "1"},
            "mitigation_errors": mitigation_errors or {},
            **await quantification.panel(
                session, web, risk_id, values=quant_values, errors=quant_errors
            ),
            **await methodology.risk_panel(
                session,
                web,
                record.risk,
                acceptance_values=acceptance_values,
                acceptance_errors=acceptance_errors,
            ),
        },
        web=web,
        section="risks",
        status=status,
    )


async def _names(
    session: AsyncSession,
    web: WebContext,
    directory: dict[uuid.UUID, Any],
    changes_list: list[dict[str, Any] | None],
) -> dict[str, str]:
    """``{id: name}`` of the assets and people a page of history mentions (one query)."""
    ids = changes.referenced_ids(changes_list)
    found = await labels.asset_names(session, tenant_id=web.tenant_id, asset_ids=sorted(ids))
    names = {str(aid): f"“{name}”" for aid, name in found.items()}
    for uid in ids & directory.keys():
        row = directory[uid]
        names[str(uid)] = row.full_name or row.email
    return names


async def risk_detail_page(
    request: Request,
    web: WebContext,
    session: AsyncSession,
    risk_id: uuid.UUID,
    *,
    quant_values: dict[str, str] | None = None,
    quant_errors: dict[str, str] | None = None,
    acceptance_values: dict[str, str] | None = None,
    acceptance_errors: dict[str, str] | None = None,
    status: int = 200,
) -> Response:
    """The risk page, with the quantification or acceptance form as typed and its errors."""
    return await _detail(
        request,
        web,
        session,
        risk_id,
        quant_values=quant_values,
        quant_errors=quant_errors,
        acceptance_values=acceptance_values,
        acceptance_errors=acceptance_errors,
        status=status,
    )


@router.get("/risks/{risk_id}")
async def risk_detail(
    request: Request, risk_id: uuid.UUID, web: WebDep, session: SessionDep
) -> Response:
    return await _detail(request, web, session, risk_id)


# --------------------------------------------------------------------------- mitigations


def _back(request: Request, risk_id: object, anchor: str = "mitigations") -> Response:
    target = uuid_param(str(risk_id))
    return redirect(f"/risks/{target}#{anchor}" if target else "/risks")


def _failed(request: Request, risk_id: object, message: str) -> Response:
    response = _back(request, risk_id)
    set_flash(request, response, message, level="error")
    return response


@router.post("/risks/{risk_id}/mitigations")
async def create_mitigation(
    request: Request, risk_id: uuid.UUID, web: FormDep, session: SessionDep, uow: UowDep
) -> Response:
    web.require("mitigation:create")
    form = web.form
    assert form is not None
    values = {
        name: forms.text(form, name)
        for name in ("title", "assignee_id", "status", "due_date", "cost", "effort_days")
    }
    values["description"] = str(form.get("description") or "")
    body: dict[str, Any] = {
        "title": values["title"],
        "description": values["description"],
        "status": values["status"] or "PLANNED",
        "due_date": values["due_date"] or None,
        "cost": values["cost"] or 2,
        "effort_days": values["effort_days"] or 1,
        "assignee_id": values["assignee_id"] or None,
    }
    for name in ("frequency_reduction", "loss_reduction", "annual_cost"):
        values[name] = forms.text(form, name)
        if values[name]:
            body[name] = values[name]
    try:
        data = MitigationCreate.model_validate(body)
        await mitigations.create_mitigation(
            uow=uow,
            context=web.context,
            risk_id=risk_id,
            data=data,
        )
    except ValidationError as error:
        errors = forms.pydantic_errors(error)
    except ValidationFailed as error:
        errors = forms.service_errors(error)
    else:
        response = _back(request, risk_id)
        set_flash(request, response, f"Mitigation “{data.title}” planned.")
        return response
    return await _detail(
        request,
        web,
        session,
        risk_id,
        mitigation_values=values,
        mitigation_errors=errors,
        status=422,
    )


@router.post("/mitigations/{mitigation_id}/update")
async def update_mitigation(
    request: Request, mitigation_id: uuid.UUID, web: FormDep, uow: UowDep
) -> Response:
    web.require("mitigation:update")
    form = web.form
    assert form is not None
    risk_id = forms.text(form, "risk_id")
    body: dict[str, Any] = {}
    for name in (
        "status",
        "progress",
        "assignee_id",
        "frequency_reduction",
        "loss_reduction",
        "annual_cost",
    ):
        if value := forms.text(form, name):
            body[name] = value
    if "due_date" in form:
        body["due_date"] = forms.text(form, "due_date") or None
    try:
        data = MitigationUpdate.model_validate(body)
        await mitigations.update_mitigation(
            uow=uow,
            context=web.context,
            mitigation_id=mitigation_id,
            data=data,
        )
    except ValidationError as error:
        return _failed(request, risk_id, _first(forms.pydantic_errors(error)))
    except (ValidationFailed, Conflict) as error:
        return _failed(request, risk_id, error.detail)
    response = _back(request, risk_id, f"mitigation-{mitigation_id}")
    set_flash(request, response, "Mitigation updated.")
    return response


def _first(errors: dict[str, str]) -> str:
    field, message = next(iter(errors.items()))
    return message if field == forms.FORM_ERROR else f"{field.replace('_', ' ')}: {message}"


@router.post("/mitigations/{mitigation_id}/delete")
async def delete_mitigation(
    request: Request, mitigation_id: uuid.UUID, web: FormDep, uow: UowDep
) -> Response:
    web.require("mitigation:delete")
    assert web.form is not None
    await mitigations.delete_mitigation(
        uow=uow,
        context=web.context,
        mitigation_id=mitigation_id,
    )
    response = _back(request, forms.text(web.form, "risk_id"))
    set_flash(request, response, "Mitigation deleted.")
    return response


@router.post("/mitigations/{mitigation_id}/subactions")
async def add_sub_action(
    request: Request, mitigation_id: uuid.UUID, web: FormDep, uow: UowDep
) -> Response:
    web.require("mitigation:update")
    assert web.form is not None
    risk_id = forms.text(web.form, "risk_id")
    try:
        data = SubActionCreate.model_validate({"title": forms.text(web.form, "title")})
        await mitigations.add_sub_action(
            uow=uow,
            context=web.context,
            mitigation_id=mitigation_id,
            data=data,
        )
    except ValidationError as error:
        return _failed(request, risk_id, "Sub-action " + _first(forms.pydantic_errors(error)))
    except ValidationFailed as error:
        return _failed(request, risk_id, error.detail)
    response = _back(request, risk_id, f"mitigation-{mitigation_id}")
    set_flash(request, response, f"Sub-action “{data.title}” added.")
    return response


@router.post("/mitigations/{mitigation_id}/subactions/{sub_id}/toggle")
async def toggle_sub_action(
    request: Request,
    mitigation_id: uuid.UUID,
    sub_id: uuid.UUID,
    web: FormDep,
    uow: UowDep,
) -> Response:
    web.require("mitigation:update")
    assert web.form is not None
    completed = forms.text(web.form, "completed") == "true"
    view = await mitigations.update_sub_action(
        uow=uow,
        context=web.context,
        mitigation_id=mitigation_id,
        sub_id=sub_id,
        data=SubActionUpdate(completed=completed),
    )
    # back to the sub-action itself: the page focuses it, not the top of the page
    response = _back(request, forms.text(web.form, "risk_id"), f"sub-{sub_id}")
    set_flash(request, response, _toggled(view, sub_id, completed))
    return response


def _toggled(view: mitigations.MitigationView, sub_id: uuid.UUID, completed: bool) -> str:
    title = next((s.title for s in view.mitigation.sub_actions if s.id == sub_id), "Sub-action")
    state = "done" if completed else "to do again"
    return (
        f"“{title}” marked {state}; “{view.mitigation.title}” is {view.mitigation.progress} % done."
    )


@router.post("/mitigations/{mitigation_id}/subactions/{sub_id}/delete")
async def delete_sub_action(
    request: Request,
    mitigation_id: uuid.UUID,
    sub_id: uuid.UUID,
    web: FormDep,
    uow: UowDep,
) -> Response:
    web.require("mitigation:update")
    assert web.form is not None
    await mitigations.delete_sub_action(
        uow=uow,
        context=web.context,
        mitigation_id=mitigation_id,
        sub_id=sub_id,
    )
    response = _back(request, forms.text(web.form, "risk_id"), f"mitigation-{mitigation_id}")
    set_flash(request, response, "Sub-action removed.")
    return response
