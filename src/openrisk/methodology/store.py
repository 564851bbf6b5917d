"""Reading a tenant's risk model: the stored one, or the default (today's 5×5 model).

Every request that scores or renders bands needs it, so each process keeps the models it has
read, keyed by tenant and checked against the stored ``(version, updated_at)`` on every use:
a read costs two small columns instead of the definition's JSON and its parsing, and reads
that run a statement anyway carry the check in it (``stamp_columns``), so the model costs
them no statement at all. A change (which moves both) is seen by the next read in every
process; the cache never answers without that check.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from functools import cached_property
from typing import Any

from sqlalchemy import bindparam, select
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
    """A version of a tenant's model. Shared by the requests of a process: read only."""

    definition: dict[str, Any]
    version: int
    updated_at: datetime | None

    @cached_property
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


DEFAULT = StoredModel(default_definition(), 1, None)
Stamp = tuple[int, datetime] | None  # (version, updated_at) of the stored row; None: no row
_MAX_CACHED = 10_000
_cached: dict[uuid.UUID, tuple[Stamp, StoredModel]] = {}

_STAMP = select(RiskModelRecord.version, RiskModelRecord.updated_at).where(
    RiskModelRecord.tenant_id == bindparam("model_tenant")
)
_DEFINITION = select(
    RiskModelRecord.definition, RiskModelRecord.version, RiskModelRecord.updated_at
).where(RiskModelRecord.tenant_id == bindparam("model_tenant"))


def stamp_columns(tenant_id: Any) -> list[Any]:
    """Two scalar subqueries (``model_version``, ``model_updated_at``) to add to a statement
    of one row, for ``cached``: the check of the process's copy, without a statement."""
    where = RiskModelRecord.tenant_id == tenant_id
    return [
        select(RiskModelRecord.version).where(where).scalar_subquery().label("model_version"),
        select(RiskModelRecord.updated_at).where(where).scalar_subquery().label("model_updated_at"),
    ]


def stamp_of(version: Any, updated_at: Any) -> Stamp:
    return None if version is None else (int(version), updated_at)


async def cached(session: AsyncSession, *, tenant_id: uuid.UUID, stamp: Stamp) -> StoredModel:
    """The tenant's model at ``stamp`` (read from a ``stamp_columns`` statement of the same
    transaction): the process's copy when it is that version, else read and kept."""
    if stamp is None:
        return DEFAULT
    kept = _cached.get(tenant_id)
    if kept is not None and kept[0] == stamp:
        return kept[1]
    row = (await session.execute(_DEFINITION, {"model_tenant": tenant_id})).first()
    if row is None:  # deleted since: the default, never kept
        return DEFAULT
    model = StoredModel(dict(row.definition), int(row.version), row.updated_at)
    if len(_cached) >= _MAX_CACHED:
        _cached.clear()
    _cached[tenant_id] = ((model.version, row.updated_at), model)
    return model


async def load(session: AsyncSession, *, tenant_id: uuid.UUID) -> StoredModel:
    """The tenant's model (version 1, the default, when it never changed it): one primary-key
    read of its version, and of its definition only when this process has not read that
    version yet."""
    row = (await session.execute(_STAMP, {"model_tenant": tenant_id})).first()
    return await cached(session, tenant_id=tenant_id, stamp=None if row is None else stamp_of(*row))


async def scoring_for(session: AsyncSession, *, tenant_id: uuid.UUID) -> ScoringModel:
    """How the tenant's risks are scored (one primary-key read)."""
    return (await load(session, tenant_id=tenant_id)).scoring
