from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, status

from openrisk.auth.deps import require
from openrisk.core.context import RequestContext
from openrisk.core.deps import SessionDep
from openrisk.core.pagination import Page, PageParams, page_params
from openrisk.core.routing import api_router
from openrisk.core.uow import UowDep
from openrisk.mitigations import service
from openrisk.mitigations.schemas import (
    MitigationCreate,
    MitigationOut,
    MitigationUpdate,
    SubActionCreate,
    SubActionUpdate,
)
from openrisk.risks.responses import ERRORS, errors

risk_router = api_router("/risks", tags=["mitigations"])
router = api_router("/mitigations", tags=["mitigations"])
for _r in (risk_router, router):
    _r.responses = dict(ERRORS)
ROUTERS: tuple[APIRouter, ...] = (router, risk_router)

Reader = Annotated[RequestContext, Depends(require("mitigation:read"))]
Updater = Annotated[RequestContext, Depends(require("mitigation:update"))]
Pagination = Annotated[PageParams, Depends(page_params)]


def _page(views: list[service.MitigationView], total: int, page: PageParams) -> Page[MitigationOut]:
    return Page(
        items=[v.out() for v in views], total=total, page=page.page, page_size=page.page_size
    )


@risk_router.get("/{risk_id}/mitigations", responses=errors(404))
async def list_risk_mitigations(
    risk_id: uuid.UUID, context: Reader, session: SessionDep, page: Pagination
) -> Page[MitigationOut]:
    views, total = await service.list_for_risk(
        session,
        tenant_id=context.tenant_id,
        risk_id=risk_id,
        offset=page.offset,
        limit=page.page_size,
    )
    return _page(views, total, page)


@risk_router.post(
    "/{risk_id}/mitigations", status_code=status.HTTP_201_CREATED, responses=errors(404)
)
async def create_mitigation(
    risk_id: uuid.UUID,
    body: MitigationCreate,
    context: Annotated[RequestContext, Depends(require("mitigation:create"))],
    uow: UowDep,
) -> MitigationOut:
    """Plan a mitigation (assigning someone else needs mitigation:assign)."""
    view = await service.create_mitigation(uow=uow, context=context, risk_id=risk_id, data=body)
    return view.out()


@router.get("/recommended")
async def recommended_mitigations(
    context: Reader, session: SessionDep, page: Pagination
) -> Page[MitigationOut]:
    """Open mitigations, best value first: round(risk score / max(cost + effort_days, 2), 2)."""
    views, total = await service.recommended(
        session, tenant_id=context.tenant_id, offset=page.offset, limit=page.page_size
    )
    return _page(views, total, page)


@router.get("/{mitigation_id}", responses=errors(404))
async def get_mitigation(
    mitigation_id: uuid.UUID, context: Reader, session: SessionDep
) -> MitigationOut:
    view = await service.get_view(session, tenant_id=context.tenant_id, mitigation_id=mitigation_id)
    return view.out()


@router.patch("/{mitigation_id}", responses=errors(404))
async def update_mitigation(
    mitigation_id: uuid.UUID,
    body: MitigationUpdate,
    context: Updater,
    uow: UowDep,
) -> MitigationOut:
    """Update (Analysts: mitigations they created or are assigned; re-assigning needs
    mitigation:assign)."""
    view = await service.update_mitigation(
        uow=uow, context=context, mitigation_id=mitigation_id, data=body
    )
    return view.out()


@router.delete("/{mitigation_id}", status_code=status.HTTP_204_NO_CONTENT, responses=errors(404))
async def delete_mitigation(
    mitigation_id: uuid.UUID,
    context: Annotated[RequestContext, Depends(require("mitigation:delete"))],
    uow: UowDep,
) -> None:
    await service.delete_mitigation(uow=uow, context=context, mitigation_id=mitigation_id)


@router.post(
    "/{mitigation_id}/subactions", status_code=status.HTTP_201_CREATED, responses=errors(404)
)
async def add_sub_action(
    mitigation_id: uuid.UUID,
    body: SubActionCreate,
    context: Updater,
    uow: UowDep,
) -> MitigationOut:
    """Add a sub-action; progress is recomputed. Answers the whole mitigation."""
    view = await service.add_sub_action(
        uow=uow, context=context, mitigation_id=mitigation_id, data=body
    )
    return view.out()


@router.patch("/{mitigation_id}/subactions/{sub_id}", responses=errors(404))
async def update_sub_action(
    mitigation_id: uuid.UUID,
    sub_id: uuid.UUID,
    body: SubActionUpdate,
    context: Updater,
    uow: UowDep,
) -> MitigationOut:
    """Rename or toggle a sub-action; progress is recomputed."""
    view = await service.update_sub_action(
        uow=uow,
        context=context,
        mitigation_id=mitigation_id,
        sub_id=sub_id,
        data=body,
    )
    return view.out()


@router.delete("/{mitigation_id}/subactions/{sub_id}", responses=errors(404))
async def delete_sub_action(
    mitigation_id: uuid.UUID,
    sub_id: uuid.UUID,
    context: Updater,
    uow: UowDep,
) -> MitigationOut:
    """Remove a sub-action; progress is recomputed. Answers the whole mitigation."""
    view = await service.delete_sub_action(
        uow=uow, context=context, mitigation_id=mitigation_id, sub_id=sub_id
    )
    return view.out()
