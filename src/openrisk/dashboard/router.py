"""Dashboard routes. Every answer is cached and made stale by the writes
that change it: any risk or asset write; a mitigation write only for the statistics (the one
answer reporting mitigations); custom field changes for the top risks (shown in full)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import Depends, Query, Request
from starlette.responses import Response

from openrisk.auth.deps import require
from openrisk.core.cache.http import cached_json, dump
from openrisk.core.cache.invalidation import DASHBOARD_STATS, REGISTER_VIEWS, RISK_FIGURES
from openrisk.core.context import RequestContext
from openrisk.core.deps import SessionDep
from openrisk.core.routing import api_router
from openrisk.dashboard import service
from openrisk.dashboard.schemas import Period, Stats, Timeline, TopRisks
from openrisk.risks import documents, reads
from openrisk.risks.responses import ERRORS
from openrisk.risks.schemas import Matrix

router = api_router("/dashboard", tags=["dashboard"])
router.responses = dict(ERRORS)

Reader = Annotated[RequestContext, Depends(require("dashboard:read"))]


@router.get("/stats", response_model=Stats)
async def dashboard_stats(
    request: Request, context: Reader, session: SessionDep, period: Period = Period.all
) -> Response:
    """Counts by severity and status, the global risk score and mitigation progress, for the
    risks (and mitigations) created within ``period``."""

    async def compute() -> bytes:
        stats = await service.stats(session, tenant_id=context.tenant_id, period=period)
        return dump(Stats.model_validate(stats))

    return await cached_json(
        request,
        tenant_id=context.tenant_id,
        namespace="dashboard:stats",
        depends_on=DASHBOARD_STATS,
        compute=compute,
        params={"period": period, "day": _today()},
    )


@router.get("/matrix", response_model=Matrix)
async def dashboard_matrix(request: Request, context: Reader, session: SessionDep) -> Response:
    """The 5×5 heatmap: live risks per impact × probability (all 25 cells)."""

    async def compute() -> bytes:
        return documents.dumps(await reads.matrix(session, tenant_id=context.tenant_id))

    return await cached_json(
        request,
        tenant_id=context.tenant_id,
        namespace="dashboard:matrix",
        depends_on=RISK_FIGURES,
        compute=compute,
    )


@router.get("/timeline", response_model=Timeline)
async def dashboard_timeline(
    request: Request,
    context: Reader,
    session: SessionDep,
    days: Annotated[int, Query(ge=1, le=365)] = 30,
) -> Response:
    """Daily series from the risks' history: live risks and mean score at the end of each day,
    risks created and mitigated that day. One point per day, oldest first."""

    async def compute() -> bytes:
        points = await service.timeline(session, tenant_id=context.tenant_id, days=days)
        return dump(Timeline.model_validate({"points": points}))

    return await cached_json(
        request,
        tenant_id=context.tenant_id,
        namespace="dashboard:timeline",
        depends_on=RISK_FIGURES,
        compute=compute,
        params={"days": days, "day": _today()},  # the series ends today
    )


@router.get("/top-risks", response_model=TopRisks)
async def dashboard_top_risks(
    request: Request,
    context: Reader,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=50)] = 10,
) -> Response:
    """The highest-scored risks that are still open."""

    async def compute() -> bytes:
        found = await service.top_risks(session, tenant_id=context.tenant_id, limit=limit)
        return documents.dumps({"items": [r.document() for r in found]})

    return await cached_json(
        request,
        tenant_id=context.tenant_id,
        namespace="dashboard:top_risks",
        depends_on=REGISTER_VIEWS,
        compute=compute,
        params={"limit": limit},
    )


def _today() -> str:
    return datetime.now(UTC).date().isoformat()
