"""The dashboard: global score, counts per band of the tenant's risk model, appetite, reviews
and acceptances, the model's heatmap for any of the four levels, trend charts, top risks.

Through the same declared cached reads as the API's dashboard routes: one cache entry each."""

from __future__ import annotations

from decimal import Decimal

from fastapi import Request
from starlette.responses import Response

from openrisk.core.cache.response import ResponseCache
from openrisk.core.deps import SessionDep
from openrisk.dashboard import service as dashboard
from openrisk.dashboard.schemas import Period, Timeline, TopRisks
from openrisk.methodology import store
from openrisk.risks.reads import MATRIX_BASES
from openrisk.risks.scoring import ScoringModel
from openrisk.web import charts
from openrisk.web.context import WebDep
from openrisk.web.rendering import NAV, redirect, render
from openrisk.web.views.common import choice, member_directory, page_router

router = page_router()

TIMELINE_DAYS = ("7", "30", "90", "365")
TOP_RISKS = 10
CENT = Decimal("0.01")


def band_cards(model: ScoringModel, counts: dict[str, int]) -> list[dict[str, object]]:
    """One card per band of the model, highest first, with the scores it spans."""
    bands = model.bands
    cards = []
    for i in reversed(range(len(bands))):
        band = bands[i]
        if i == len(bands) - 1:
            span = f"{float(band.min_score):g} or more" if i else "any score"
        elif i == 0:
            span = f"under {float(bands[1].min_score):g}"
        else:
            span = f"{float(band.min_score):g} to {float(bands[i + 1].min_score - CENT):g}"
        count = counts.get(band.name, 0)
        cards.append({"name": band.name, "count": count, "span": span, "color": band.color})
    return cards


@router.get("/")
async def dashboard_page(request: Request, web: WebDep, session: SessionDep) -> Response:
    if not web.has("dashboard:read"):
        # people without the dashboard land on the first page they may see
        for item in NAV:
            if web.has(item.permission):
                return redirect(item.href)
    web.require("dashboard:read")
    period = Period(choice(request, "period", [p.value for p in Period], Period.all.value))
    days = int(choice(request, "days", TIMELINE_DAYS, "30"))
    basis = choice(request, "basis", MATRIX_BASES, "current")
    model = (await store.load(session, tenant_id=web.tenant_id)).scoring
    cache: ResponseCache = request.app.state.response_cache
    tenant = {"session": session, "tenant_id": web.tenant_id}
    stats = await dashboard.STATS.value(cache, **tenant, period=period)
    matrix = await dashboard.MATRIX.value(cache, **tenant, basis=basis)
    timeline: Timeline = await dashboard.TIMELINE.value(cache, **tenant, days=days)
    top: TopRisks = await dashboard.TOP_RISKS.value(cache, **tenant, limit=TOP_RISKS)
    points = timeline.points
    day_list = [p.date for p in points]
    trend = charts.line_chart(
        day_list, [float(p.total) for p in points], bars=[float(p.created) for p in points]
    )
    mean = charts.line_chart(day_list, [p.mean_score for p in points])
    residual = charts.line_chart(day_list, [p.mean_residual_score for p in points])
    return render(
        request,
        "dashboard.html",
        {
            "stats": stats,
            "period": period.value,
            "periods": [p.value for p in Period],
            "days": str(days),
            "day_options": TIMELINE_DAYS,
            "heatmap": charts.heatmap(matrix["cells"]),
            "matrix": matrix,
            "matrix_total": matrix["total"],
            "basis": basis,
            "bases": MATRIX_BASES,
            "bands": band_cards(model, stats["by_severity"]),
            "band_colors": {b.name: b.color for b in model.bands},
            "appetite": model.appetite_score,
            "points": points,
            "trend": trend,
            "mean_chart": mean,
            "residual_chart": residual,
            "top": top.items,
            "directory": await member_directory(request, session, web) if top.items else {},
        },
        web=web,
        section="dashboard",
    )
