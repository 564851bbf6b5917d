"""``/risk-model``: the tenant's risk model (read by every member, changed by tenant:update)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Query

from openrisk.auth.deps import require
from openrisk.core.context import RequestContext
from openrisk.core.deps import SessionDep
from openrisk.core.routing import api_router
from openrisk.core.uow import UowDep
from openrisk.methodology import service
from openrisk.methodology.schemas import RiskModelOut, RiskModelUpdate

router = api_router("/risk-model", tags=["risk model"])


@router.get("", response_model_exclude_none=True)
async def get_risk_model(
    context: Annotated[RequestContext, Depends(require("risk:read"))], session: SessionDep
) -> RiskModelOut:
    """Impact and probability levels, severity bands, asset factors, appetite, review days
    per band and acceptance rules; ``version`` is what a change must send back."""
    return await service.get_model(session, context=context)


@router.put("", response_model_exclude_none=True)
async def put_risk_model(
    body: RiskModelUpdate,
    context: Annotated[RequestContext, Depends(require("tenant:update"))],
    uow: UowDep,
    dry_run: Annotated[
        bool, Query(description="Answer the re-mapping this change would cause; write nothing")
    ] = False,
) -> RiskModelOut:
    """Replace the model and re-score every risk of the tenant in one transaction (a history
    row per risk that moved). ``version`` must be the current one (409 otherwise). Removing
    levels needs ``level_mapping`` for each of them (422 naming the missing ones)."""
    return await service.put_model(uow=uow, context=context, data=body, dry_run=dry_run)
