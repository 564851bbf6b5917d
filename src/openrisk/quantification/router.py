"""Quantified risks: a risk's inputs and results, the register's annual loss distribution
(``/dashboard/quantitative``, cached) and the tenant's loss appetite."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, status
from starlette.responses import Response

from openrisk.auth.deps import require
from openrisk.core.cache.http import respond, serves
from openrisk.core.context import RequestContext
from openrisk.core.deps import SessionDep
from openrisk.core.routing import api_router
from openrisk.core.uow import UowDep
from openrisk.quantification import cached, service
from openrisk.quantification.schemas import (
    DEFAULT_PORTFOLIO_ITERATIONS,
    DEFAULT_PORTFOLIO_SEED,
    MAX_PORTFOLIO_ITERATIONS,
    MIN_PORTFOLIO_ITERATIONS,
    AppetiteIn,
    AppetiteState,
    PortfolioOut,
    QuantificationIn,
    QuantificationOut,
)
from openrisk.risks.responses import ERRORS, errors

risk_router = api_router("/risks", tags=["quantification"])
dashboard_router = api_router("/dashboard", tags=["dashboard"])
appetite_router = api_router("/quantitative", tags=["quantification"])
ROUTERS: tuple[APIRouter, ...] = (risk_router, dashboard_router, appetite_router)
for _r in ROUTERS:
    _r.responses = dict(ERRORS)

RiskReader = Annotated[RequestContext, Depends(require("risk:read"))]
RiskUpdater = Annotated[RequestContext, Depends(require("risk:update"))]
DashboardReader = Annotated[RequestContext, Depends(require("dashboard:read"))]
TenantUpdater = Annotated[RequestContext, Depends(require("tenant:update"))]

Iterations = Annotated[
    int,
    Query(
        ge=MIN_PORTFOLIO_ITERATIONS,
        le=MAX_PORTFOLIO_ITERATIONS,
        description=f"Simulated years, {MIN_PORTFOLIO_ITERATIONS:,} to "
        f"{MAX_PORTFOLIO_ITERATIONS:,}",
    ),
]
Seed = Annotated[int, Query(ge=0, le=2**63 - 1, description="Same seed, same numbers")]
Correlation = Annotated[
    float,
    Query(
        ge=0,
        le=1,
        allow_inf_nan=False,
        description="How much the risks' bad years coincide (Gaussian copula, one factor)",
    ),
]


@risk_router.get("/{risk_id}/quantification", responses=errors(404))
async def get_quantification(
    risk_id: uuid.UUID, context: RiskReader, uow: UowDep
) -> QuantificationOut:
    """The risk's frequency and loss inputs and the results for them and its mitigations (not
    cancelled ones): ALE mean and median, p90/p95/p99 annual loss, P(≥ 1 event), the loss
    exceedance curve, inherent and residual, and ROSI per mitigation. A mitigation's change
    has them simulated again in the background; one the background has not reached yet is
    simulated before the answer."""
    return await service.get_quantification(uow=uow, tenant_id=context.tenant_id, risk_id=risk_id)


@risk_router.put("/{risk_id}/quantification", responses=errors(404))
async def put_quantification(
    risk_id: uuid.UUID,
    body: QuantificationIn,
    context: RiskUpdater,
    uow: UowDep,
) -> QuantificationOut:
    """Set the risk's loss events per year (PERT) and loss per event (a 90 % interval, or a
    PERT); answers with the results simulated from them."""
    return await service.set_quantification(uow=uow, context=context, risk_id=risk_id, data=body)


@risk_router.delete(
    "/{risk_id}/quantification", status_code=status.HTTP_204_NO_CONTENT, responses=errors(404)
)
async def delete_quantification(risk_id: uuid.UUID, context: RiskUpdater, uow: UowDep) -> None:
    await service.delete_quantification(uow=uow, context=context, risk_id=risk_id)


@dashboard_router.get("/quantitative", response_model=PortfolioOut)
@serves(cached.PORTFOLIO)
async def dashboard_quantitative(
    request: Request,
    context: DashboardReader,
    session: SessionDep,
    iterations: Iterations = DEFAULT_PORTFOLIO_ITERATIONS,
    seed: Seed = DEFAULT_PORTFOLIO_SEED,
    correlation: Correlation = 0.0,
) -> Response:
    """The register's annual loss: every quantified risk simulated over the same years and
    summed year by year; ALE, VaR p95/p99, top contributors, the loss exceedance curve
    inherent and residual, and the verdict against the loss appetite. Cached per digest of
    the inputs."""
    inputs = await service.portfolio_inputs(
        session,
        tenant_id=context.tenant_id,
        iterations=iterations,
        seed=seed,
        correlation=correlation,
    )
    return await respond(request, cached.PORTFOLIO, tenant_id=context.tenant_id, inputs=inputs)


@appetite_router.get("/appetite")
async def get_appetite(context: DashboardReader, session: SessionDep) -> AppetiteState:
    """The tenant's loss appetite: "P(annual loss > threshold) ≤ max_probability" (null while
    none is set); ``/dashboard/quantitative`` gives the verdict against it."""
    found = await service.get_appetite(session, tenant_id=context.tenant_id)
    return AppetiteState(loss_appetite=found)


@appetite_router.put("/appetite")
async def put_appetite(body: AppetiteIn, context: TenantUpdater, uow: UowDep) -> AppetiteState:
    """Set the loss appetite (needs tenant:update)."""
    found = await service.set_appetite(uow=uow, context=context, data=body)
    return AppetiteState(loss_appetite=found)


@appetite_router.delete("/appetite", status_code=status.HTTP_204_NO_CONTENT, responses=errors(404))
async def delete_appetite(context: TenantUpdater, uow: UowDep) -> None:
    await service.delete_appetite(uow=uow, context=context)
