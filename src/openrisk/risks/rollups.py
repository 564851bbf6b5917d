"""Roll-ups that keep the dashboard O(days) instead of O(risks): live risks by creation day,
status and severity (count, score sum); live risks per matrix cell and status; live
mitigations by creation day and status.

They move in the same transaction as the change that moves them (``apply_*``; upserts sorted by
key, so concurrent writers lock rows in the same order) and ``rebuild`` recomputes them from the
risks and mitigations tables with one statement each (seeds use it; tests check both agree).
The cells of the other levels, the appetite flags by creation day and the next review dates
are moved by triggers on ``risks`` instead; ``rebuild`` recomputes them too (seeds write with
the triggers off).
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any, NamedTuple

from sqlalchemy import delete, func, insert, literal, not_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from openrisk.mitigations.models import Mitigation, MitigationDayCount
from openrisk.risks.common import dialect_name
from openrisk.risks.models import (
    Risk,
    RiskAppetiteDay,
    RiskCellCount,
    RiskDayCount,
    RiskLevelCell,
    RiskReviewDate,
)

ROLLUPS: tuple[type[Any], ...] = (
    RiskDayCount,
    RiskCellCount,
    MitigationDayCount,
    RiskLevelCell,
    RiskAppetiteDay,
    RiskReviewDate,
)


class RiskState(NamedTuple):
    """What the roll-ups count of a live risk (tuples: an import makes two per row)."""

    impact: int
    probability: int
    status: str
    severity: str
    score: Decimal


class RiskChange(NamedTuple):
    """A live risk appearing (before=None), changing, or disappearing (after=None)."""

    tenant_id: uuid.UUID
    created: datetime
    before: RiskState | None
    after: RiskState | None


@dataclass(frozen=True)
class MitigationChange:
    tenant_id: uuid.UUID
    created: datetime
    before: str | None
    after: str | None
    count: int = 1


def utc_day(session: AsyncSession, column: Any) -> ColumnElement[Any]:
    """The UTC calendar day of a timestamp column, in SQL."""
    if dialect_name(session) == "postgresql":
        return func.date(func.timezone("UTC", column))
    return func.date(column)


def _insert(session: AsyncSession) -> Any:
    return postgresql.insert if dialect_name(session) == "postgresql" else sqlite.insert


async def _upsert(
    session: AsyncSession, model: Any, keys: Sequence[str], rows: list[dict[str, Any]]
) -> None:
    if not rows:
        return
    rows.sort(key=lambda row: tuple(str(row[k]) for k in keys))
    stmt = _insert(session)(model).values(rows)
    table = model.__table__
    stmt = stmt.on_conflict_do_update(
        index_elements=[table.c[k] for k in keys],
        set_={name: table.c[name] + stmt.excluded[name] for name in rows[0] if name not in keys},
    )
    await session.execute(stmt)


async def apply_risk_changes(session: AsyncSession, changes: Iterable[RiskChange]) -> None:
    days: dict[tuple[Any, ...], list[Any]] = defaultdict(lambda: [0, Decimal(0)])
    cells: dict[tuple[Any, ...], int] = defaultdict(int)
    for change in changes:
        if change.before == change.after:
            continue
        day = change.created.date()
        for state, sign in ((change.before, -1), (change.after, 1)):
            if state is None:
                continue
            bucket = days[(change.tenant_id, day, state.status, state.severity)]
            bucket[0] += sign
            bucket[1] += sign * Decimal(state.score)
            cells[(change.tenant_id, state.impact, state.probability, state.status)] += sign
    await _upsert(
        session,
        RiskDayCount,
        ("tenant_id", "day", "status", "severity"),
        [
            {
                "tenant_id": t,
                "day": d,
                "status": st,
                "severity": sv,
                "n": n,
                "score_sum": total,
            }
            for (t, d, st, sv), (n, total) in days.items()
            if n or total
        ],
    )
    await _upsert(
        session,
        RiskCellCount,
        ("tenant_id", "impact", "probability", "status"),
        [
            {"tenant_id": t, "impact": i, "probability": p, "status": st, "n": n}
            for (t, i, p, st), n in cells.items()
            if n
        ],
    )


async def apply_mitigation_changes(
    session: AsyncSession, changes: Iterable[MitigationChange]
) -> None:
    counts: dict[tuple[Any, ...], int] = defaultdict(int)
    for change in changes:
        if change.before == change.after:
            continue
        day = change.created.date()
        if change.before is not None:
            counts[(change.tenant_id, day, change.before)] -= change.count
        if change.after is not None:
            counts[(change.tenant_id, day, change.after)] += change.count
    await _upsert(
        session,
        MitigationDayCount,
        ("tenant_id", "day", "status"),
        [{"tenant_id": t, "day": d, "status": st, "n": n} for (t, d, st), n in counts.items() if n],
    )


async def live_mitigations_of(
    session: AsyncSession, *, tenant_id: uuid.UUID, risk_ids: Sequence[uuid.UUID]
) -> list[MitigationChange]:
    """Removal of the live mitigations of ``risk_ids`` (they go when their risk goes)."""
    day = utc_day(session, Mitigation.created_at).label("day")
    rows = await session.execute(
        select(day, Mitigation.status, func.count())
        .where(
            Mitigation.tenant_id == tenant_id,
            Mitigation.risk_id.in_(list(risk_ids)),
            Mitigation.deleted_at.is_(None),
        )
        .group_by(day, Mitigation.status)
    )
    return [
        MitigationChange(
            tenant_id=tenant_id,
            created=datetime.combine(as_date(d), datetime.min.time()),
            before=status,
            after=None,
            count=int(n),
        )
        for d, status, n in rows
    ]


def as_date(value: Any) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value))


async def rebuild(session: AsyncSession, *, tenant_ids: Iterable[uuid.UUID]) -> None:
    """Recompute the tenants' roll-ups from the risks and mitigations tables."""
    tenants = list(tenant_ids)
    if not tenants:
        return
    for model in ROLLUPS:
        await session.execute(delete(model).where(model.tenant_id.in_(tenants)))
    live_risks = (Risk.tenant_id.in_(tenants), Risk.deleted_at.is_(None))
    day = utc_day(session, Risk.created_at).label("day")
    await session.execute(
        insert(RiskDayCount).from_select(
            ["tenant_id", "day", "status", "severity", "n", "score_sum"],
            select(
                Risk.tenant_id, day, Risk.status, Risk.severity, func.count(), func.sum(Risk.score)
            )
            .where(*live_risks)
            .group_by(Risk.tenant_id, day, Risk.status, Risk.severity),
        )
    )
    await session.execute(
        insert(RiskCellCount).from_select(
            ["tenant_id", "impact", "probability", "status", "n"],
            select(Risk.tenant_id, Risk.impact, Risk.probability, Risk.status, func.count())
            .where(*live_risks)
            .group_by(Risk.tenant_id, Risk.impact, Risk.probability, Risk.status),
        )
    )
    for basis in ("inherent", "residual", "target"):
        impact = getattr(Risk, f"{basis}_impact")
        probability = getattr(Risk, f"{basis}_probability")
        await session.execute(
            insert(RiskLevelCell).from_select(
                ["tenant_id", "basis", "impact", "probability", "status", "n"],
                select(
                    Risk.tenant_id, literal(basis), impact, probability, Risk.status, func.count()
                )
                .where(*live_risks, impact.is_not(None))
                .group_by(Risk.tenant_id, impact, probability, Risk.status),
            )
        )
    above = not_(Risk.within_appetite)
    residual_above = not_(Risk.residual_within_appetite)
    await session.execute(
        insert(RiskAppetiteDay).from_select(
            ["tenant_id", "day", "above", "residual_above", "n"],
            select(Risk.tenant_id, day, above, residual_above, func.count())
            .where(*live_risks)
            .group_by(Risk.tenant_id, day, above, residual_above),
        )
    )
    await session.execute(
        insert(RiskReviewDate).from_select(
            ["tenant_id", "day", "n"],
            select(Risk.tenant_id, Risk.next_review_date, func.count())
            .where(*live_risks)
            .group_by(Risk.tenant_id, Risk.next_review_date),
        )
    )
    m_day = utc_day(session, Mitigation.created_at).label("day")
    await session.execute(
        insert(MitigationDayCount).from_select(
            ["tenant_id", "day", "status", "n"],
            select(Mitigation.tenant_id, m_day, Mitigation.status, func.count())
            .where(Mitigation.tenant_id.in_(tenants), Mitigation.deleted_at.is_(None))
            .group_by(Mitigation.tenant_id, m_day, Mitigation.status),
        )
    )
