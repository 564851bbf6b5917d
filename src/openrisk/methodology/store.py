"""Reading a tenant's risk model: the stored one, or the default (today's 5×5 model)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from openrisk.methodology.models import RiskModelRecord
from openrisk.risks.scoring import (
    ASSET_FACTORS,
    DEFAULT_APPETITE,
    DEFAULT_MODEL,
    DEFAULT_REVIEW_DAYS,
    Band,
    Criticality,
    ScoringModel,
)

DEFAULT_IMPACT_NAMES = ("Negligible", "Minor", "Moderate", "Major", "Severe")
DEFAULT_PROBABILITY_NAMES = ("Rare", "Unlikely", "Possible", "Likely", "Almost certain")
FALLBACK_REVIEW_DAYS = 365
DEFAULT_ACCEPTANCE = {"max_days": 365, "approver_min_level": 6}


def _levels(names: tuple[str, ...]) -> list[dict[str, Any]]:
    return [{"value": i, "name": name, "description": ""} for i, name in enumerate(names, 1)]


def default_definition() -> dict[str, Any]:
    """The model every tenant starts with: exactly the fixed scoring of earlier versions."""
    return {
        "impact_levels": _levels(DEFAULT_IMPACT_NAMES),
        "probability_levels": _levels(DEFAULT_PROBABILITY_NAMES),
        "bands": [
            {"name": b.name, "min_score": float(b.min_score), "color": b.color}
            for b in DEFAULT_MODEL.bands
        ],
        "asset_factors": {str(k): float(v) for k, v in ASSET_FACTORS.items()},
        "appetite_score": float(DEFAULT_APPETITE),
        "review_days": dict(DEFAULT_REVIEW_DAYS),
        "acceptance": dict(DEFAULT_ACCEPTANCE),
    }


@dataclass(frozen=True)
class StoredModel:
    definition: dict[str, Any]
    version: int
    updated_at: datetime | None

    @property
    def scoring(self) -> ScoringModel:
        return to_scoring(self.definition)

    def review_days(self, band: str) -> int:
        return int(self.definition.get("review_days", {}).get(band, FALLBACK_REVIEW_DAYS))


def _decimal(value: Any) -> Decimal:
    return Decimal(str(value)).quantize(Decimal("0.01"))


def to_scoring(definition: dict[str, Any]) -> ScoringModel:
    factors = dict(ASSET_FACTORS)
    for name, value in definition.get("asset_factors", {}).items():
        factors[Criticality(name)] = _decimal(value)
    return ScoringModel(
        impact_levels=len(definition["impact_levels"]),
        probability_levels=len(definition["probability_levels"]),
        factors=factors,
        bands=tuple(
            Band(b["name"], _decimal(b["min_score"]), b.get("color", "#9e9e9e"))
            for b in definition["bands"]
        ),
        appetite_score=_decimal(definition.get("appetite_score", DEFAULT_APPETITE)),
        review_days={
            str(k): int(v) for k, v in definition.get("review_days", DEFAULT_REVIEW_DAYS).items()
        },
    )


async def load(session: AsyncSession, *, tenant_id: uuid.UUID) -> StoredModel:
    """The tenant's model (version 1, the default, when it never changed it)."""
    row = (
        await session.execute(
            select(
                RiskModelRecord.definition, RiskModelRecord.version, RiskModelRecord.updated_at
            ).where(RiskModelRecord.tenant_id == tenant_id)
        )
    ).first()
    if row is None:
        return StoredModel(default_definition(), 1, None)
    return StoredModel(dict(row.definition), int(row.version), row.updated_at)


async def scoring_for(session: AsyncSession, *, tenant_id: uuid.UUID) -> ScoringModel:
    """How the tenant's risks are scored (one primary-key read)."""
    return (await load(session, tenant_id=tenant_id)).scoring
