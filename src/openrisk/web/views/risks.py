"""The risk register: list (filters, sort, search, pages, saved views), the risk form and the
risk page with its history. Every write goes through the register's services, with the same
permission checks as the API routes; mitigations and the register's files have pages of their
own (``mitigations``, ``register_files``)."""

from __future__ import annotations

import uuid
from decimal import Decimal, InvalidOperation
from typing import Any

from fastapi import Request
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.datastructures import FormData
from starlette.responses import Response

from openrisk.assets import service as assets
from openrisk.assets.models import Asset
from openrisk.assets.schemas import AssetSort
from openrisk.audit import labels
from openrisk.core.deps import SessionDep
from openrisk.core.errors import Conflict, PreconditionFailed, ValidationFailed
from openrisk.core.pagination import InvalidCursor
from openrisk.core.uow import UnitOfWork, UowDep
from openrisk.custom_fields import service as custom_fields
from openrisk.custom_fields.models import CustomField
from openrisk.methodology import clock
from openrisk.methodology.store import scoring_for
from openrisk.mitigations import service as mitigations
from openrisk.mitigations.schemas import (
    MitigationStatus,
)
from openrisk.risks import commands, cursors, reads
from openrisk.risks.enums import RiskStatus, Severity, SortField, SortOrder, Treatment
from openrisk.risks.schemas import (
    RiskCreate,
    RiskUpdate,
)
from openrisk.saved_views import service as saved_views
from openrisk.saved_views.schemas import SavedViewCreate
from openrisk.web import changes, forms, methodology, quantification, register
from openrisk.web.context import FormDep, WebContext, WebDep
from openrisk.web.rendering import flash_redirect, render
from openrisk.web.views.common import (
    Pager,
    member_directory,
    page_router,
    pager,
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


async def register_query(
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
    query, bands = await register_query(request, session, web)
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
        message = "View name: " + forms.first_message(error)
    except (ValidationFailed, Conflict) as error:
        message = error.detail
    else:
        return flash_redirect(request, back, f"View “{view.name}” saved.")
    return flash_redirect(request, back, message, level="error")


@router.post("/risks/views/{view_id}/delete")
async def delete_view(request: Request, view_id: uuid.UUID, web: FormDep, uow: UowDep) -> Response:
    await saved_views.delete_view(uow=uow, context=web.context, view_id=view_id)
    return flash_redirect(request, "/risks", "View deleted.")


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
        return flash_redirect(
            request, f"/risks/{created.risk.id}", f"Risk “{created.risk.title}” created."
        )
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
        return flash_redirect(request, f"/risks/{updated.risk.id}", "Risk saved.")
    return _form_page(request, web, options, values, record=record, errors=errors, status=422)


@router.post("/risks/{risk_id}/delete")
async def delete_risk(request: Request, risk_id: uuid.UUID, web: FormDep, uow: UowDep) -> Response:
    web.require("risk:delete")
    await commands.delete_risk(uow=uow, context=web.context, risk_id=risk_id)
    return flash_redirect(request, "/risks", "Risk deleted.")


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


async def risk_detail_page(
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
    """The risk page, with a form of the page (mitigation, quantification, acceptance) as typed
    and its errors when it was refused."""
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
                UnitOfWork.for_app(request.app.state, session),
                web,
                risk_id,
                values=quant_values,
                errors=quant_errors,
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


@router.get("/risks/{risk_id}")
async def risk_detail(
    request: Request, risk_id: uuid.UUID, web: WebDep, session: SessionDep
) -> Response:
    return await risk_detail_page(request, web, session, risk_id)
