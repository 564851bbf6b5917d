"""The dashboard: global score, severity counts, 5×5 heatmap, trend charts, top risks.

Through the same declared cached reads as the API's dashboard routes: one cache entry each."""

from __future__ import annotations

from fastapi import Request
from starlette.responses import Response

from openrisk.core.cache.response import ResponseCache
from openrisk.core.deps import SessionDep
from openrisk.dashboard import service as dashboard
from openrisk.dashboard.schemas import Period, Timeline, TopRisks
from openrisk.web import charts
from openrisk.web.context import WebDep
from openrisk.web.rendering import NAV, redirect, render
from openrisk.web.views.common import choice, member_directory, page_router

router = page_router()

TIMELINE_DAYS = ("7", "30", "90", "365")
TOP_RISKS = 10


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
    cache: ResponseCache = request.app.state.response_cache
    tenant = {"session": session, "tenant_id": web.tenant_id}
    stats = await dashboard.STATS.value(cache, **tenant, period=period)
    matrix = await dashboard.MATRIX.value(cache, **tenant)
    timeline: Timeline = await dashboard.TIMELINE.value(cache, **tenant, days=days)
    top: TopRisks = await dashboard.TOP_RISKS.value(cache, **tenant, limit=TOP_RISKS)
    points = timeline.points
    day_list = [p.date for p in points]
    trend = charts.line_chart(
        day_list, [float(p.total) for p in points], bars=[float(p.created) for p in points]
    )
    mean = charts.line_chart(day_list, [p.mean_score for p in points])
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
            "matrix_total": matrix["total"],
            "points": points,
            "trend": trend,
            "mean_chart": mean,
            "top": top.items,
            "directory": await member_directory(request, session, web) if top.items else {},
        },
        web=web,
        section="dashboard",
    )
