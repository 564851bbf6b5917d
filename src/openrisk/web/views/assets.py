"""Assets: list with filters, create, edit (a new criticality rescores the linked risks)."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import Request
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.datastructures import FormData
from starlette.responses import Response

from openrisk.assets import service as assets
from openrisk.assets.schemas import AssetCreate, AssetSort, AssetUpdate
from openrisk.core.deps import SessionDep
from openrisk.core.uow import UowDep
from openrisk.risks import reads
from openrisk.risks.queries import RiskFilters
from openrisk.risks.scoring import Criticality
from openrisk.web import forms
from openrisk.web.context import FormDep, WebContext, WebDep
from openrisk.web.rendering import flash_redirect, render
from openrisk.web.views.common import choice, choices, page_router, pager

router = page_router()

CRITICALITIES = [c.value for c in Criticality]
SORTS = [s.value for s in AssetSort]
ASSET_TYPES = ("application", "server", "database", "data", "network", "cloud", "vendor")
LINKED_RISKS_LIMIT = 50
FIELDS = ("name", "type", "criticality", "owner", "external_id", "description")


def _values(form: FormData) -> dict[str, str]:
    values = {name: forms.text(form, name) for name in FIELDS}
    values["description"] = str(form.get("description") or "")
    return values


def _body(values: dict[str, str], *, update: bool) -> dict[str, Any]:
    body: dict[str, Any] = dict(values)
    for name in ("owner", "external_id"):
        if not body[name]:
            body[name] = None
    if not update:
        body = {k: v for k, v in body.items() if v is not None and v != ""}
    return body


async def _list_page(
    request: Request,
    web: WebContext,
    session: AsyncSession,
    *,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    status: int = 200,
) -> Response:
    web.require("asset:read")
    q = (request.query_params.get("q") or "").strip()[:200]
    types = [t for t in request.query_params.getlist("type") if t and len(t) <= 40]
    criticality = choices(request, "criticality", CRITICALITIES)
    sort = AssetSort(choice(request, "sort", SORTS, AssetSort.name.value))
    order = choice(request, "order", ["asc", "desc"], "asc")
    page = pager(request)
    rows, total = await assets.list_assets(
        session,
        tenant_id=web.tenant_id,
        q=q or None,
        types=types,
        criticality=criticality,
        sort=sort,
        descending=order == "desc",
        offset=page.offset,
        limit=page.page_size,
    )
    counts = await assets.risk_counts(
        session, tenant_id=web.tenant_id, asset_ids=[a.id for a in rows]
    )
    return render(
        request,
        "assets/list.html",
        {
            "assets": rows,
            "counts": counts,
            "pager": page.with_total(total),
            "q": q,
            "types": types,
            "criticality": criticality,
            "criticalities": CRITICALITIES,
            "asset_types": ASSET_TYPES,
            "sort": sort.value,
            "order": order,
            "values": values or {"criticality": "MEDIUM", "type": "application"},
            "errors": errors or {},
        },
        web=web,
        section="assets",
        status=status,
    )


@router.get("/assets")
async def asset_list(request: Request, web: WebDep, session: SessionDep) -> Response:
    return await _list_page(request, web, session)


@router.post("/assets")
async def create_asset(
    request: Request, web: FormDep, session: SessionDep, uow: UowDep
) -> Response:
    web.require("asset:create")
    assert web.form is not None
    values = _values(web.form)
    with forms.refusals() as refused:
        data = AssetCreate.model_validate(_body(values, update=False))
        asset = await assets.create_asset(uow=uow, context=web.context, data=data)
    if refused:
        return await _list_page(
            request, web, session, values=values, errors=refused.errors, status=422
        )
    return flash_redirect(request, f"/assets/{asset.id}", f"Asset “{asset.name}” added.")


async def _detail_page(
    request: Request,
    web: WebContext,
    session: AsyncSession,
    asset_id: uuid.UUID,
    *,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    status: int = 200,
) -> Response:
    web.require("asset:read")
    asset = await assets.get_asset(session, tenant_id=web.tenant_id, asset_id=asset_id)
    linked: list[reads.ListedRisk] = []
    linked_total = 0
    if web.has("risk:read"):
        found = await reads.list_risks(
            session,
            tenant_id=web.tenant_id,
            filters=RiskFilters(asset_id=asset.id),
            limit=LINKED_RISKS_LIMIT,
        )
        linked, linked_total = found.items, found.total
    current = {name: str(getattr(asset, name) or "") for name in FIELDS}
    return render(
        request,
        "assets/detail.html",
        {
            "asset": asset,
            "values": values or current,
            "errors": errors or {},
            "criticalities": CRITICALITIES,
            "asset_types": ASSET_TYPES,
            "linked": linked,
            "linked_total": linked_total,
        },
        web=web,
        section="assets",
        status=status,
    )


@router.get("/assets/{asset_id}")
async def asset_detail(
    request: Request, asset_id: uuid.UUID, web: WebDep, session: SessionDep
) -> Response:
    return await _detail_page(request, web, session, asset_id)


@router.post("/assets/{asset_id}")
async def update_asset(
    request: Request, asset_id: uuid.UUID, web: FormDep, session: SessionDep, uow: UowDep
) -> Response:
    web.require("asset:update")
    assert web.form is not None
    values = _values(web.form)
    with forms.refusals() as refused:
        data = AssetUpdate.model_validate(_body(values, update=True))
        await assets.update_asset(uow=uow, context=web.context, asset_id=asset_id, data=data)
    if refused:
        return await _detail_page(
            request, web, session, asset_id, values=values, errors=refused.errors, status=422
        )
    return flash_redirect(request, f"/assets/{asset_id}", "Asset saved.")


@router.post("/assets/{asset_id}/delete")
async def delete_asset(
    request: Request, asset_id: uuid.UUID, web: FormDep, uow: UowDep
) -> Response:
    web.require("asset:delete")
    await assets.delete_asset(uow=uow, context=web.context, asset_id=asset_id)
    return flash_redirect(request, "/assets", "Asset deleted; its risks were rescored.")
