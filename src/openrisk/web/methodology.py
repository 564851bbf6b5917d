"""The methodology on a risk page: its four levels (with a small chart), its acceptances (the
request form, withdraw) and its reviews (record one); read through the same services as the
API."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from openrisk.methodology import acceptance, clock, reviews, store
from openrisk.risks.models import Risk
from openrisk.web.context import WebContext

ACCEPTANCES_SHOWN = 10
REVIEWS_SHOWN = 5
LEVELS = ("inherent", "current", "residual", "target")
CHART_WIDTH, CHART_HEIGHT, BAR_GAP = 320, 120, 16


def _level(risk: Risk, name: str) -> dict[str, Any] | None:
    prefix = "" if name == "current" else f"{name}_"
    score = getattr(risk, f"{prefix}score")
    if score is None:
        return None
    return {
        "name": name,
        "impact": getattr(risk, f"{prefix}impact"),
        "probability": getattr(risk, f"{prefix}probability"),
        "score": Decimal(score),
        "severity": getattr(risk, f"{prefix}severity"),
    }


def level_chart(levels: list[dict[str, Any]], top: Decimal, appetite: Decimal) -> dict[str, Any]:
    """Bars of the four scores (inherent → current → residual → target), the appetite line."""
    top = max(top, *(lv["score"] for lv in levels), appetite, Decimal(1))
    width = (CHART_WIDTH - BAR_GAP * (len(levels) + 1)) / len(levels)
    plot = CHART_HEIGHT - 20

    def y(score: Decimal) -> float:
        return round(plot - float(score / top) * (plot - 10), 1)

    bars = []
    for i, lv in enumerate(levels):
        x = BAR_GAP + i * (width + BAR_GAP)
        bars.append(
            {
                **lv,
                "x": round(x, 1),
                "y": y(lv["score"]),
                "width": round(width, 1),
                "height": round(plot - y(lv["score"]), 1),
                "label_x": round(x + width / 2, 1),
            }
        )
    return {
        "width": CHART_WIDTH,
        "height": CHART_HEIGHT,
        "bars": bars,
        "appetite_y": y(appetite),
        "base": plot,
    }


async def risk_panel(
    session: AsyncSession,
    web: WebContext,
    risk: Risk,
    *,
    acceptance_values: dict[str, str] | None = None,
    acceptance_errors: dict[str, str] | None = None,
) -> dict[str, Any]:
    """What the risk page shows of the methodology: levels, acceptances, reviews, forms."""
    model = await store.load(session, tenant_id=web.tenant_id)
    scoring = model.scoring
    levels = [lv for lv in (_level(risk, name) for name in LEVELS) if lv is not None]
    found, _ = await acceptance.list_acceptances(
        session,
        context=web.context,
        status=None,
        risk_id=risk.id,
        offset=0,
        limit=ACCEPTANCES_SHOWN,
    )
    past_reviews, review_total = await reviews.list_reviews(
        session, context=web.context, risk_id=risk.id, offset=0, limit=REVIEWS_SHOWN
    )
    today = clock.today()
    rules = model.definition.get("acceptance", store.DEFAULT_ACCEPTANCE)
    max_days = int(rules["max_days"])
    default_expiry = today + timedelta(days=min(90, max_days))
    return {
        "levels": levels,
        "level_chart": level_chart(levels, scoring.max_score, scoring.appetite_score),
        "appetite": scoring.appetite_score,
        "impact_names": {lv["value"]: lv["name"] for lv in model.definition["impact_levels"]},
        "probability_names": {
            lv["value"]: lv["name"] for lv in model.definition["probability_levels"]
        },
        "impact_top": scoring.impact_levels,
        "probability_top": scoring.probability_levels,
        "band_colors": {b.name: b.color for b in scoring.bands},
        "acceptances": found,
        "pending_acceptance": next((a for a in found if a.status == acceptance.SUBMITTED), None),
        "acceptance_values": acceptance_values
        or {"expires_on": default_expiry.isoformat(), "justification": ""},
        "acceptance_errors": acceptance_errors or {},
        "acceptance_max_day": (today + timedelta(days=max_days)).isoformat(),
        "acceptance_min_day": (today + timedelta(days=1)).isoformat(),
        "reviews": past_reviews,
        "review_total": review_total,
        "today": today,
    }
