from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Depends, Query, status

from openrisk.assets import service
from openrisk.assets.schemas import AssetCreate, AssetOut, AssetSort, AssetUpdate
from openrisk.auth.deps import require
from openrisk.core.context import RequestContext
from openrisk.core.deps import SessionDep
from openrisk.core.pagination import Page, PageParams, page_params
from openrisk.core.routing import api_router
from openrisk.core.uow import UowDep
from openrisk.risks.enums import SortOrder
from openrisk.risks.responses import ERRORS, errors
from openrisk.risks.scoring import Criticality
from openrisk.risks.text import reject_nul

router = api_router("/assets", tags=["assets"])
router.responses = dict(ERRORS)


def _out(asset: object, risk_count: int = 0) -> AssetOut:
    out = AssetOut.model_validate(asset)
    out.risk_count = risk_count
    return out


@router.get("")
async def list_assets(
    context: Annotated[RequestContext, Depends(require("asset:read"))],
    session: SessionDep,
    page: Annotated[PageParams, Depends(page_params)],
    q: Annotated[str | None, Query(max_length=200, description="Name contains")] = None,
    type: Annotated[list[str] | None, Query(description="Asset types (any of)")] = None,
    criticality: Annotated[list[Criticality] | None, Query()] = None,
    sort: AssetSort = AssetSort.name,
    order: SortOrder = SortOrder.ASC,
) -> Page[AssetOut]:
    """The tenant's assets, with the number of live risks linked to each."""
    reject_nul("q", q)
    reject_nul("type", *(type or []))
    assets, total = await service.list_assets(
        session,
        tenant_id=context.tenant_id,
        q=q,
        types=type or [],
        criticality=[c.value for c in criticality or []],
        sort=sort,
        descending=order is SortOrder.DESC,
        offset=page.offset,
        limit=page.page_size,
    )
    counts = await service.risk_counts(
        session, tenant_id=context.tenant_id, asset_ids=[a.id for a in assets]
    )
    return Page(
        items=[_out(a, counts.get(a.id, 0)) for a in assets],
        total=total,
        page=page.page,
        page_size=page.page_size,
    )


@router.post("", status_code=status.HTTP_201_CREATED)
async def create_asset(
    body: AssetCreate,
    context: Annotated[RequestContext, Depends(require("asset:create"))],
    uow: UowDep,
) -> AssetOut:
    asset = await service.create_asset(uow=uow, context=context, data=body)
    return _out(asset)


@router.get("/{asset_id}", responses=errors(404))
async def get_asset(
    asset_id: uuid.UUID,
    context: Annotated[RequestContext, Depends(require("asset:read"))],
    session: SessionDep,
) -> AssetOut:
    asset = await service.get_asset(session, tenant_id=context.tenant_id, asset_id=asset_id)
    counts = await service.risk_counts(session, tenant_id=context.tenant_id, asset_ids=[asset.id])
    return _out(asset, counts.get(asset.id, 0))


@router.patch("/{asset_id}", responses=errors(404))
async def update_asset(
    asset_id: uuid.UUID,
    body: AssetUpdate,
    context: Annotated[RequestContext, Depends(require("asset:update"))],
    session: SessionDep,
    uow: UowDep,
) -> AssetOut:
    """Update an asset; a new criticality rescores every linked risk (SCORE_CHANGE history)."""
    asset = await service.update_asset(uow=uow, context=context, asset_id=asset_id, data=body)
    counts = await service.risk_counts(session, tenant_id=context.tenant_id, asset_ids=[asset.id])
    return _out(asset, counts.get(asset.id, 0))


@router.delete("/{asset_id}", status_code=status.HTTP_204_NO_CONTENT, responses=errors(404))
async def delete_asset(
    asset_id: uuid.UUID,
    context: Annotated[RequestContext, Depends(require("asset:delete"))],
    uow: UowDep,
) -> None:
    """Soft-delete an asset; it is unlinked and its risks are rescored."""
    await service.delete_asset(uow=uow, context=context, asset_id=asset_id)
