"""What a new risk model does to each live risk of a tenant, as one SQL query (the plan).

The plan has, per live risk, its stored values and the new ones: the four levels (with the
axes' level mapping), their scores in integer cents, their bands, the appetite flags and the
next review date. The dry run counts it with one GROUP BY; applying updates only the rows
whose stored values change, from the same plan, so the preview is what applying does.

Each risk's asset factor (sum of its live assets' factors and their number) and its open
mitigations' reductions are grouped subqueries joined in once, not correlated subqueries per
level; they are only joined when the scores can move (new factors or a level mapping):
otherwise every level and score stays and only bands, flags and review dates are recomputed.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Integer, and_, case, func, literal, or_, select, type_coerce
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql import Subquery
from sqlalchemy.sql.elements import ColumnElement

from openrisk.assets.models import Asset
from openrisk.methodology import levels
from openrisk.methodology.schemas import LevelMapping
from openrisk.mitigations.models import Mitigation
from openrisk.risks import queries
from openrisk.risks.models import Risk, RiskAsset
from openrisk.risks.scoring import ScoringModel

# the stored values a model change may move, as (plan column, risks column)
LEVELS = ("impact", "probability")
BASES = ("inherent", "residual", "target")


@dataclass(frozen=True)
class Plan:
    """``rows``: one row per live risk, ``o_*`` the stored values, ``n_*`` the new ones;
    ``current_changed`` and ``changed`` say whether the current level (levels, score,
    severity) or anything stored moves."""

    rows: Subquery

    def column(self, name: str) -> ColumnElement[Any]:
        return self.rows.c[name]

    @property
    def current_changed(self) -> ColumnElement[Any]:
        return self.rows.c.current_changed

    @property
    def changed(self) -> ColumnElement[Any]:
        return self.rows.c.changed


def _stored_cents(score: Any) -> ColumnElement[Any]:
    return type_coerce(func.round(score * 100), Integer)


def _at_least_one(value: Any) -> ColumnElement[Any]:
    return case((value < 1, 1), else_=value)


def plan(
    session: AsyncSession,
    *,
    tenant_id: uuid.UUID,
    old: ScoringModel,
    new: ScoringModel,
    mapping: LevelMapping,
) -> Plan:
    """The re-scoring of the tenant's live risks by ``new`` (``old`` is the stored model)."""
    scorer = levels.Scorer(session, new)
    rescore = bool(mapping.impact or mapping.probability) or new.factors != old.factors
    impact_map: Mapping[int, int] = mapping.impact
    probability_map: Mapping[int, int] = mapping.probability

    stored: list[ColumnElement[Any]] = [
        Risk.id.label("id"),
        Risk.status.label("status"),
        Risk.created_at.label("created_at"),
        Risk.last_reviewed_on.label("last_reviewed_on"),
        Risk.review_date.label("review_date"),
        Risk.impact.label("o_impact"),
        Risk.probability.label("o_probability"),
        Risk.score.label("o_score"),
        Risk.severity.label("o_severity"),
        Risk.within_appetite.label("o_within_appetite"),
        Risk.residual_within_appetite.label("o_residual_within_appetite"),
        Risk.next_review_date.label("o_next_review_date"),
    ]
    for basis in BASES:
        for part in (*LEVELS, "score", "severity"):
            stored.append(getattr(Risk, f"{basis}_{part}").label(f"o_{basis}_{part}"))

    if not rescore:  # levels and scores stay: their bands, flags and review dates may move
        new_levels: list[ColumnElement[Any]] = [
            Risk.impact.label("n_impact"),
            Risk.probability.label("n_probability"),
            _stored_cents(Risk.score).label("c_current"),
        ]
        for basis in BASES:
            new_levels += [
                getattr(Risk, f"{basis}_impact").label(f"n_{basis}_impact"),
                getattr(Risk, f"{basis}_probability").label(f"n_{basis}_probability"),
                _stored_cents(getattr(Risk, f"{basis}_score")).label(f"c_{basis}"),
            ]
        first = select(*stored, *new_levels).where(*queries.live(tenant_id)).subquery("stay")
    else:
        factor_cents = case(
            {name: int(value * 100) for name, value in sorted(new.factors.items())},
            value=Asset.criticality,
            else_=100,
        )
        factors = (
            select(
                RiskAsset.risk_id.label("risk_id"),
                func.sum(factor_cents).label("factor_sum"),
                func.count().label("links"),
            )
            .join(Asset, Asset.id == RiskAsset.asset_id)
            .where(
                RiskAsset.tenant_id == tenant_id,
                Asset.tenant_id == tenant_id,
                Asset.deleted_at.is_(None),
            )
            .group_by(RiskAsset.risk_id)
            .subquery("factors")
        )
        reductions = (
            select(
                Mitigation.risk_id.label("risk_id"),
                func.sum(Mitigation.impact_reduction).label("impact"),
                func.sum(Mitigation.probability_reduction).label("probability"),
            )
            .where(
                Mitigation.tenant_id == tenant_id,
                Mitigation.deleted_at.is_(None),
                Mitigation.status.in_(levels.OPEN_MITIGATIONS),
            )
            .group_by(Mitigation.risk_id)
            .subquery("reductions")
        )
        impact = levels.mapped(Risk.impact, impact_map)
        probability = levels.mapped(Risk.probability, probability_map)
        mapped_select = select(
            *stored,
            impact.label("n_impact"),
            probability.label("n_probability"),
            levels.mapped(Risk.inherent_impact, impact_map).label("n_inherent_impact"),
            levels.mapped(Risk.inherent_probability, probability_map).label(
                "n_inherent_probability"
            ),
            _at_least_one(impact - func.coalesce(reductions.c.impact, 0)).label(
                "n_residual_impact"
            ),
            _at_least_one(probability - func.coalesce(reductions.c.probability, 0)).label(
                "n_residual_probability"
            ),
            levels.mapped(Risk.target_impact, impact_map).label("n_target_impact"),
            levels.mapped(Risk.target_probability, probability_map).label("n_target_probability"),
            type_coerce(func.coalesce(factors.c.factor_sum, 0), Integer).label("factor_sum"),
            type_coerce(func.coalesce(factors.c.links, 0), Integer).label("links"),
        )
        mapped_levels = (
            mapped_select.select_from(
                Risk.__table__.outerjoin(factors, factors.c.risk_id == Risk.id).outerjoin(
                    reductions, reductions.c.risk_id == Risk.id
                )
            )
            .where(*queries.live(tenant_id))
            .subquery("mapped")
        )
        m = mapped_levels.c

        def cents(i: Any, p: Any) -> ColumnElement[Any]:
            base = type_coerce(i * p, Integer)
            return case(
                (m.links == 0, base * 100),
                else_=(base * m.factor_sum * 2 + m.links) // (m.links * 2),
            )

        scored = [cents(m.n_impact, m.n_probability).label("c_current")]
        for basis in BASES:
            scored.append(
                cents(m[f"n_{basis}_impact"], m[f"n_{basis}_probability"]).label(f"c_{basis}")
            )
        kept = [c for c in m if c.name not in ("factor_sum", "links")]
        first = select(*kept, *scored).subquery("scored")

    s = first.c
    severity = scorer.severity(s.c_current)
    no_target = s.n_target_impact.is_(None)
    new_values: dict[str, ColumnElement[Any]] = {
        "n_score": scorer.as_score(s.c_current),
        "n_severity": severity,
        "n_within_appetite": scorer.within_appetite(s.c_current),
        "n_residual_within_appetite": scorer.within_appetite(s.c_residual),
        "n_next_review_date": levels.next_review_sql(
            session,
            new,
            severity=severity,
            last_reviewed_on=s.last_reviewed_on,
            created_at=s.created_at,
            review_date=s.review_date,
        ),
    }
    for basis in ("inherent", "residual"):
        new_values[f"n_{basis}_score"] = scorer.as_score(s[f"c_{basis}"])
        new_values[f"n_{basis}_severity"] = scorer.severity(s[f"c_{basis}"])
    new_values["n_target_score"] = case((no_target, None), else_=scorer.as_score(s.c_target))
    new_values["n_target_severity"] = case((no_target, None), else_=scorer.severity(s.c_target))

    current_changed = or_(
        s.n_impact != s.o_impact,
        s.n_probability != s.o_probability,
        s.c_current != _stored_cents(s.o_score),
        severity != s.o_severity,
    )
    moved = [
        current_changed,
        new_values["n_within_appetite"] != s.o_within_appetite,
        new_values["n_residual_within_appetite"] != s.o_residual_within_appetite,
        new_values["n_next_review_date"] != s.o_next_review_date,
    ]
    for basis in ("inherent", "residual"):
        moved += [
            s[f"n_{basis}_impact"] != s[f"o_{basis}_impact"],
            s[f"n_{basis}_probability"] != s[f"o_{basis}_probability"],
            s[f"c_{basis}"] != _stored_cents(s[f"o_{basis}_score"]),
            new_values[f"n_{basis}_severity"] != s[f"o_{basis}_severity"],
        ]
    moved += [
        s.n_target_impact.is_distinct_from(s.o_target_impact),
        s.n_target_probability.is_distinct_from(s.o_target_probability),
        and_(
            ~no_target,
            or_(
                s.o_target_score.is_(None),
                s.c_target != _stored_cents(s.o_target_score),
            ),
        ),
        new_values["n_target_severity"].is_distinct_from(s.o_target_severity),
    ]
    rows = select(
        *s,
        *(value.label(name) for name, value in new_values.items()),
        case((current_changed, literal(True)), else_=literal(False)).label("current_changed"),
        case((or_(*moved), literal(True)), else_=literal(False)).label("changed"),
    ).subquery("plan")
    return Plan(rows)
