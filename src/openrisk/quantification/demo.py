"""Sample estimates for the demo tenant: every fourth risk quantified from its impact and
probability, its mitigations given reductions and a cost, and a loss appetite."""

from __future__ import annotations

import uuid

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from openrisk.mitigations.models import Mitigation
from openrisk.quantification.models import LossAppetiteSetting, RiskQuantification
from openrisk.risks import queries
from openrisk.risks.models import Risk

EVENTS_BY_PROBABILITY = (0.02, 0.05, 0.1, 0.3, 0.8)
LOSS_BY_IMPACT = (1_000.0, 5_000.0, 20_000.0, 50_000.0, 150_000.0)


async def quantify_sample(session: AsyncSession, *, tenant_id: uuid.UUID, every: int = 4) -> int:
    """Estimates for every ``every``-th live risk (results follow on first read). No commit."""
    rows = await session.execute(
        select(Risk.id, Risk.impact, Risk.probability)
        .where(*queries.live(tenant_id))
        .order_by(Risk.created_at, Risk.id)
    )
    chosen = [row for index, row in enumerate(rows) if index % every == 0]
    for index, row in enumerate(chosen):
        events = EVENTS_BY_PROBABILITY[row.probability - 1]
        low = LOSS_BY_IMPACT[row.impact - 1]
        loss: dict[str, object] = {"low": low, "high": low * (10 + 5 * (index % 5))}
        if index % 5 == 4:
            loss = {"min": low, "most_likely": low * 3, "max": low * 15}
        session.add(
            RiskQuantification(
                risk_id=row.id,
                tenant_id=tenant_id,
                inputs={
                    "frequency": {
                        "min": round(events * 0.3, 3),
                        "most_likely": events,
                        "max": round(events * 3, 3),
                    },
                    "loss": {**loss, "currency": "EUR"},
                },
            )
        )
    if chosen:
        await session.execute(
            update(Mitigation)
            .where(
                Mitigation.tenant_id == tenant_id,
                Mitigation.risk_id.in_([row.id for row in chosen]),
            )
            .values(frequency_reduction=0.4, loss_reduction=0.2, annual_cost=15_000.0)
        )
    session.add(
        LossAppetiteSetting(
            tenant_id=tenant_id, threshold=5_000_000.0, max_probability=0.05, currency="EUR"
        )
    )
    await session.flush()
    return len(chosen)
