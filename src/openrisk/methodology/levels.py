"""The four levels of a risk: inherent, current, residual and target.

``current`` is the risk's own impact, probability, score and severity. ``inherent`` (without
controls; the current levels at creation unless given) and ``target`` (set by the owner,
optional) are levels the owner sets; ``residual`` is current minus the reductions of every
planned or in-progress mitigation (never below level 1). Each level's score and severity come
from the tenant's risk model, with the risk's asset factor; the appetite flags compare the
current and the residual score with the model's appetite.

They are stored on the risk (filtered, sorted, indexed). A write of one risk derives them in
Python (``derive``); writes that move many risks at once (a model change, an asset's new
criticality, a mitigation's change) recompute them with one UPDATE (``refresh``), computed by
the database exactly like the Python scoring (integer cents, ties half up).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    Date,
    Float,
    Integer,
    Numeric,
    and_,
    case,
    func,
    literal,
    select,
    text,
    type_coerce,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from openrisk.assets.models import Asset
from openrisk.core.db.bulk import among
from openrisk.mitigations.models import Mitigation
from openrisk.risks import queries
from openrisk.risks.common import dialect_name
from openrisk.risks.models import Risk, RiskAsset
from openrisk.risks.scoring import ScoringModel

OPEN_MITIGATIONS = ("PLANNED", "IN_PROGRESS")
CENT = Decimal("0.01")


# --------------------------------------------------------------------------- in Python


def reduced(level: int, reduction: int) -> int:
    return max(1, level - reduction)


def derive(
    risk: Risk,
    scoring: ScoringModel,
    criticalities: Iterable[str],
    reduction: tuple[int, int] = (0, 0),
) -> None:
    """Set the current score and severity, the other levels' scores and the appetite flags
    of ``risk`` from its levels (``reduction``: the open mitigations' impact and probability
    reductions)."""
    for name, value in derived(risk, scoring, criticalities, reduction).items():
        setattr(risk, name, value)


def derived(
    risk: Risk,
    scoring: ScoringModel,
    criticalities: Iterable[str],
    reduction: tuple[int, int] = (0, 0),
) -> dict[str, Any]:
    """What ``derive`` sets, by column: a risk built in memory takes them into its dict
    without the ORM's change events (an import derives the levels of every row it changes)."""
    crits = tuple(sorted(criticalities))  # the mean factor does not depend on their order
    levels = scoring.levels
    impact, probability = risk.impact, risk.probability
    score, severity, within = levels(impact, probability, crits)
    inherent_score, inherent_severity, _ = levels(
        risk.inherent_impact, risk.inherent_probability, crits
    )
    residual_impact = reduced(impact, reduction[0])
    residual_probability = reduced(probability, reduction[1])
    residual_score, residual_severity, residual_within = levels(
        residual_impact, residual_probability, crits
    )
    target_impact, target_probability = risk.target_impact, risk.target_probability
    target_score = target_severity = None
    if target_impact is None or target_probability is None:
        target_impact = target_probability = None
    else:
        target_score, target_severity, _ = levels(target_impact, target_probability, crits)
    return {
        "score": score,
        "severity": severity,
        "within_appetite": within,
        "inherent_score": inherent_score,
        "inherent_severity": inherent_severity,
        "residual_impact": residual_impact,
        "residual_probability": residual_probability,
        "residual_score": residual_score,
        "residual_severity": residual_severity,
        "residual_within_appetite": residual_within,
        "target_impact": target_impact,
        "target_probability": target_probability,
        "target_score": target_score,
        "target_severity": target_severity,
        "next_review_date": review_due(risk, scoring, severity),
    }


def next_review(risk: Risk, scoring: ScoringModel) -> date:
    """The last review (or the creation day) plus the band's review days, unless the owner's
    ``review_date`` is earlier."""
    return review_due(risk, scoring, risk.severity)


def review_due(risk: Risk, scoring: ScoringModel, severity: str) -> date:
    """``next_review`` for a risk whose severity is (about to be) ``severity``."""
    base = risk.last_reviewed_on or risk.created_at.astimezone(UTC).date()
    due = base + timedelta(days=scoring.days_between_reviews(severity))
    return risk.review_date if risk.review_date and risk.review_date < due else due


async def open_reductions(
    session: AsyncSession, *, tenant_id: uuid.UUID, risk_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, tuple[int, int]]:
    """Sum of the impact and probability reductions of each risk's open mitigations."""
    if not risk_ids:
        return {}
    rows = await session.execute(
        select(
            Mitigation.risk_id,
            func.sum(Mitigation.impact_reduction),
            func.sum(Mitigation.probability_reduction),
        )
        .where(
            Mitigation.tenant_id == tenant_id,
            among(session, Mitigation.risk_id, risk_ids),
            Mitigation.deleted_at.is_(None),
            Mitigation.status.in_(OPEN_MITIGATIONS),
        )
        .group_by(Mitigation.risk_id)
    )
    return {risk_id: (int(i or 0), int(p or 0)) for risk_id, i, p in rows}


# --------------------------------------------------------------------------- in SQL


@dataclass(frozen=True)
class Scored:
    """A level's score as SQL: in integer cents, as a stored score, and its band."""

    cents: ColumnElement[Any]
    score: ColumnElement[Any]
    severity: ColumnElement[Any]


class Scorer:
    """SQL expressions over the ``risks`` row scoring any pair of levels with the model (the
    mean factor of the risk's live linked assets, in hundredths)."""

    def __init__(self, session: AsyncSession, model: ScoringModel) -> None:
        self.model = model
        self.postgresql = dialect_name(session) == "postgresql"
        factor_cents = case(
            {name: int(value * 100) for name, value in sorted(model.factors.items())},
            value=Asset.criticality,
            else_=100,
        )
        linked = (
            select(RiskAsset.risk_id)
            .join(Asset, Asset.id == RiskAsset.asset_id)
            .where(RiskAsset.risk_id == Risk.id, Asset.deleted_at.is_(None))
        )
        self.factor_sum = type_coerce(
            linked.with_only_columns(func.coalesce(func.sum(factor_cents), 0)).scalar_subquery(),
            Integer,
        )
        self.links = type_coerce(linked.with_only_columns(func.count()).scalar_subquery(), Integer)

    def score(self, impact: Any, probability: Any) -> Scored:
        base = type_coerce(impact * probability, Integer)
        cents = case(
            (self.links == 0, base * 100),
            else_=(base * self.factor_sum * 2 + self.links) // (self.links * 2),
        )
        return Scored(cents, self.as_score(cents), self.severity(cents))

    def as_score(self, cents: Any) -> ColumnElement[Any]:
        if self.postgresql:
            return func.cast(cents, Numeric(9, 2)) / literal(100)
        return func.cast(cents, Float) / literal(100.0)

    def severity(self, cents: Any) -> ColumnElement[Any]:
        bands = self.model.bands
        if len(bands) == 1:  # a CASE needs a WHEN
            return literal(bands[0].name)
        return case(
            *[(cents >= int(b.min_score * 100), literal(b.name)) for b in reversed(bands[1:])],
            else_=literal(bands[0].name),
        )

    def within_appetite(self, cents: Any) -> ColumnElement[Any]:
        return case((cents <= int(self.model.appetite_score * 100), True), else_=False)


def mapped(column: Any, mapping: Mapping[int, int]) -> ColumnElement[Any]:
    """A level column with levels an axis lost moved to their new level."""
    if not mapping:
        return type_coerce(column, Integer)
    return case(
        {source: target for source, target in sorted(mapping.items())},
        value=column,
        else_=column,
    )


def _open_sum(column: Any) -> ColumnElement[Any]:
    """The risk's open mitigations' reductions; by tenant and risk, as the live-risk index of
    mitigations is keyed (without the tenant each sum scanned the whole index)."""
    return type_coerce(
        select(func.coalesce(func.sum(column), 0))
        .where(
            Mitigation.tenant_id == Risk.tenant_id,
            Mitigation.risk_id == Risk.id,
            Mitigation.deleted_at.is_(None),
            Mitigation.status.in_(OPEN_MITIGATIONS),
        )
        .scalar_subquery(),
        Integer,
    )


def next_review_sql(
    session: AsyncSession,
    model: ScoringModel,
    *,
    severity: Any = Risk.severity,
    last_reviewed_on: Any = Risk.last_reviewed_on,
    created_at: Any = Risk.created_at,
    review_date: Any = Risk.review_date,
) -> ColumnElement[Any]:
    """``next_review`` in SQL, from the row's current severity (or the columns given, e.g.
    a re-scoring plan's new severity)."""
    days = case(
        {b.name: model.days_between_reviews(b.name) for b in model.bands},
        value=severity,
        else_=365,
    )
    if dialect_name(session) == "postgresql":
        base = func.coalesce(last_reviewed_on, func.date(func.timezone("UTC", created_at)))
        due: ColumnElement[Any] = type_coerce(base + type_coerce(days, Integer), Date)
    else:
        base = func.coalesce(last_reviewed_on, func.date(created_at))
        due = func.date(base, func.printf("+%d days", days), type_=Date)
    return case(
        (and_(review_date.is_not(None), review_date < due), review_date),
        else_=due,
    )


def _at_least_one(value: Any) -> ColumnElement[Any]:
    return case((value < 1, 1), else_=value)


async def refresh(
    session: AsyncSession,
    *,
    tenant_id: uuid.UUID,
    model: ScoringModel,
    risk_ids: Sequence[uuid.UUID] | None = None,
    impact_mapping: Mapping[int, int] | None = None,
    probability_mapping: Mapping[int, int] | None = None,
) -> None:
    """Recompute inherent, residual and target (levels and scores) and the appetite flags of
    the given live risks (every live risk of the tenant without ``risk_ids``) from their
    current levels, in one UPDATE. The mappings move inherent and target levels an axis lost.
    """
    if risk_ids is not None and not risk_ids:
        return
    scorer = Scorer(session, model)
    inherent_i = mapped(Risk.inherent_impact, impact_mapping or {})
    inherent_p = mapped(Risk.inherent_probability, probability_mapping or {})
    target_i = mapped(Risk.target_impact, impact_mapping or {})
    target_p = mapped(Risk.target_probability, probability_mapping or {})
    residual_i = _at_least_one(Risk.impact - _open_sum(Mitigation.impact_reduction))
    residual_p = _at_least_one(Risk.probability - _open_sum(Mitigation.probability_reduction))
    inherent = scorer.score(inherent_i, inherent_p)
    residual = scorer.score(residual_i, residual_p)
    target = scorer.score(target_i, target_p)
    no_target = Risk.target_impact.is_(None)
    current_cents = func.round(Risk.score * 100)
    where = list(queries.live(tenant_id))
    if risk_ids is not None:
        where.append(Risk.id.in_(list(risk_ids)))
    if scorer.postgresql:
        # the statement's many small correlated sums look expensive to the planner, which then
        # JIT-compiles them: 0.9 s of compiling to update 300 risks in 0.1 s (for this
        # transaction only; the other statements are short and never gain from JIT either)
        await session.execute(text("SET LOCAL jit = off"))
    await session.execute(
        update(Risk)
        .where(*where)
        .values(
            inherent_impact=inherent_i,
            inherent_probability=inherent_p,
            inherent_score=inherent.score,
            inherent_severity=inherent.severity,
            residual_impact=residual_i,
            residual_probability=residual_p,
            residual_score=residual.score,
            residual_severity=residual.severity,
            target_impact=target_i,
            target_probability=target_p,
            target_score=case((no_target, None), else_=target.score),
            target_severity=case((no_target, None), else_=target.severity),
            within_appetite=scorer.within_appetite(current_cents),
            residual_within_appetite=scorer.within_appetite(residual.cents),
            next_review_date=next_review_sql(session, model),
        )
        .execution_options(synchronize_session=False)
    )
    for obj in list(session.identity_map.values()):  # loaded risks read what was written
        if isinstance(obj, Risk) and (risk_ids is None or obj.id in risk_ids):
            await session.refresh(obj)
