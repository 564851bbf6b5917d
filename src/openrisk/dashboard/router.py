"""Dashboard routes: each answers one of the dashboard service's declared cached reads
(``dashboard/service.py``), which say what invalidates them."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import Depends, Query, Request
from starlette.responses import Response

from openrisk.auth.deps import require
from openrisk.core.cache.http import respond, serves
from openrisk.core.context import RequestContext
from openrisk.core.deps import SessionDep
from openrisk.core.routing import api_router
from openrisk.dashboard import service
from openrisk.dashboard.schemas import Period, Stats, Timeline, TopRisks
from openrisk.risks.responses import ERRORS
from openrisk.risks.schemas import Matrix

router = api_router("/dashboard", tags=["dashboard"])
router.responses = dict(ERRORS)

Reader = Annotated[RequestContext, Depends(require("dashboard:read"))]


@router.get("/stats", response_model=Stats)
@serves(service.STATS)
async def dashboard_stats(
    request: Request, context: Reader, session: SessionDep, period: Period = Period.all
) -> Response:
    """Counts by severity (the bands of the tenant's risk model) and status, the global risk
    score, mitigation progress, risks above the appetite (current and residual), reviews
    overdue or due soon and acceptances waiting, ending or ended, for the risks (and
    mitigations) created within ``period``."""
    return await respond(
        request, service.STATS, session=session, tenant_id=context.tenant_id, period=period
    )


Basis = Literal["inherent", "current", "residual", "target"]


@router.get("/matrix", response_model=Matrix)
@serves(service.MATRIX)
async def dashboard_matrix(
    request: Request,
    context: Reader,
    session: SessionDep,
    basis: Annotated[
        Basis, Query(description="Which level of the risks to count (target: risks with one)")
    ] = "current",
) -> Response:
    """The heatmap on the tenant's impact × probability grid: live risks per cell, every cell
    present with its band and colour, and the levels' names."""
    return await respond(
        request, service.MATRIX, session=session, tenant_id=context.tenant_id, basis=basis
    )


@router.get("/timeline", response_model=Timeline)
@serves(service.TIMELINE)
async def dashboard_timeline(
    request: Request,
    context: Reader,
    session: SessionDep,
    days: Annotated[int, Query(ge=1, le=365)] = 30,
) -> Response:
    """Daily series from the risks' history: live risks, mean score and mean residual score at
    the end of each day, risks created and mitigated that day. One point per day, oldest
    first."""
    return await respond(
        request, service.TIMELINE, session=session, tenant_id=context.tenant_id, days=days
    )


@router.get("/top-risks", response_model=TopRisks)
@serves(service.TOP_RISKS)
async def dashboard_top_risks(
    request: Request,
    context: Reader,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=50)] = 10,
) -> Response:
    """The highest-scored risks that are still open."""
    return await respond(
        request, service.TOP_RISKS, session=session, tenant_id=context.tenant_id, limit=limit
    )
