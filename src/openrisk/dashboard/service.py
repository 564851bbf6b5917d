"""Dashboard aggregates, all computed in SQL: stats, matrix, timeline (from history), top risks.

The timeline is a running sum over ``risk_daily_stats`` (per-day deltas that every history row
moves, and triggers on ``risks`` for the residual score sum), joined to a generated day series:
one row per day, whatever the number of risks. Every figure follows the tenant's risk model:
its bands, its appetite, its review cadence and its acceptances.

Each is a declared cached read (``STATS``, ``MATRIX``, ``TIMELINE``, ``TOP_RISKS`` at the end):
the API routes and the web dashboard answer through the same declarations, so they share one
cache entry per tenant and parameters. Stats and timeline depend on today's date: they take it
as ``today`` (the declarations pass the methodology clock's), so it is part of their key.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import Date, and_, bindparam, case, func, or_, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from openrisk.core.cache.http import dump
from openrisk.core.cache.invalidation import (
    ACCEPTANCES,
    DASHBOARD_STATS,
    REGISTER_VIEWS,
    RISK_FIGURES,
    RISK_MODEL,
)
from openrisk.core.cache.reads import cached_read
from openrisk.dashboard.schemas import PERIOD_DAYS, Period, Stats, Timeline, TopRisks
from openrisk.methodology import acceptance, clock, store
from openrisk.methodology.models import RiskAcceptance
from openrisk.mitigations.models import Mitigation, MitigationDayCount
from openrisk.mitigations.schemas import OPEN_STATUSES
from openrisk.risks import documents, reads
from openrisk.risks.common import dialect_name
from openrisk.risks.documents import DUE_SOON_DAYS
from openrisk.risks.enums import SETTLED_STATUSES, RiskStatus, SortField, SortOrder
from openrisk.risks.models import Risk, RiskAppetiteDay, RiskDayCount, RiskReviewDate
from openrisk.risks.queries import RiskFilters
from openrisk.risks.scoring import ScoringModel, Severity, global_risk_score

_CLOSED = SETTLED_STATUSES
EXPIRING_DAYS = 30  # acceptances "expiring soon" end within this many days
EXPIRED_DAYS = 30  # and "expired" ones lapsed within this many days


def high_bands(model: ScoringModel) -> list[str]:
    """The bands that start above the appetite (with the default model: HIGH and CRITICAL)."""
    return [b.name for b in model.bands if b.min_score > model.appetite_score]


def since_day(period: Period, today: date | None = None) -> date | None:
    """First calendar day (UTC) of ``period``: "7d" is today and the 6 days before."""
    days = PERIOD_DAYS[period]
    return (today or clock.today()) - timedelta(days=days - 1) if days else None


async def stats(
    session: AsyncSession, *, tenant_id: uuid.UUID, period: Period, today: date | None = None
) -> dict[str, Any]:
    """Counts by status and severity, mean score and mitigation progress of the risks and
    mitigations created within ``period``: sums over the day roll-ups (a few hundred rows at
    most), plus one index range scan for the overdue mitigations."""
    today = today or clock.today()
    first = since_day(period, today)
    model = (await store.load(session, tenant_id=tenant_id)).scoring
    risk_where = [RiskDayCount.tenant_id == tenant_id]
    mitigation_where = [MitigationDayCount.tenant_id == tenant_id]
    if first is not None:
        risk_where.append(RiskDayCount.day >= first)
        mitigation_where.append(MitigationDayCount.day >= first)

    risk_rows = await session.execute(
        select(
            RiskDayCount.status,
            RiskDayCount.severity,
            func.sum(RiskDayCount.n),
            func.sum(RiskDayCount.score_sum),
        )
        .where(*risk_where)
        .group_by(RiskDayCount.status, RiskDayCount.severity)
    )
    by_status = {s.value: 0 for s in RiskStatus}
    by_severity = {s.value: 0 for s in (Severity.CRITICAL, Severity.HIGH, Severity.MEDIUM)}
    by_severity[Severity.LOW.value] = 0
    for band in reversed(model.bands):
        by_severity.setdefault(band.name, 0)
    total, score_sum = 0, Decimal(0)
    for status, severity, count, summed in risk_rows:
        count = int(count or 0)
        by_status[status] = by_status.get(status, 0) + count
        by_severity[severity] = by_severity.get(severity, 0) + count
        total += count
        score_sum += Decimal(str(summed or 0))
    mean = (score_sum / total) if total else None

    mitigation_rows = await session.execute(
        select(MitigationDayCount.status, func.sum(MitigationDayCount.n))
        .where(*mitigation_where)
        .group_by(MitigationDayCount.status)
    )
    per_status = {"PLANNED": 0, "IN_PROGRESS": 0, "DONE": 0, "CANCELLED": 0}
    for status, count in mitigation_rows:
        per_status[status] = per_status.get(status, 0) + int(count or 0)
    overdue_where = [
        Mitigation.tenant_id == tenant_id,
        Mitigation.deleted_at.is_(None),
        Mitigation.status.in_(OPEN_STATUSES),
        Mitigation.due_date < today,
    ]
    if first is not None:
        overdue_where.append(
            Mitigation.created_at >= datetime.combine(first, datetime.min.time(), UTC)
        )
    overdue = await session.scalar(
        select(func.count()).select_from(Mitigation).where(*overdue_where)
    )
    m_total = sum(per_status.values())
    denominator = m_total - per_status["CANCELLED"]
    return {
        "period": period,
        "total_risks": total,
        "mean_score": float(round(mean, 2)) if mean is not None else 0.0,
        "global_risk_score": global_risk_score(mean),
        "high_risks": sum(by_severity.get(name, 0) for name in high_bands(model)),
        "mitigated_risks": by_status[RiskStatus.MITIGATED.value],
        "by_severity": by_severity,
        "by_status": by_status,
        "mitigations": {
            "total": m_total,
            "planned": per_status["PLANNED"],
            "in_progress": per_status["IN_PROGRESS"],
            "done": per_status["DONE"],
            "cancelled": per_status["CANCELLED"],
            "overdue": int(overdue or 0),
            "completion_rate": round(100 * per_status["DONE"] / denominator, 1)
            if denominator
            else 0.0,
        },
        **await _methodology_stats(session, tenant_id=tenant_id, first=first, today=today),
    }


def _created_since(first: date | None) -> list[Any]:
    if first is None:
        return []
    return [Risk.created_at >= datetime.combine(first, datetime.min.time(), UTC)]


async def _methodology_stats(
    session: AsyncSession, *, tenant_id: uuid.UUID, first: date | None, today: date
) -> dict[str, Any]:
    """Appetite and review figures of the live risks (the same conditions as the list filters
    ``above_appetite``, ``residual_above_appetite`` and ``review``) and the acceptances of
    those risks. The appetite counts sum the appetite roll-up (a few rows per creation day);
    the review counts sum the review dates roll-up, or for a period read the creation index,
    which carries the next review date (index-only); the acceptances are one pass over the
    tenant's open acceptances."""
    soon = today + timedelta(days=DUE_SOON_DAYS)

    def counted(condition: Any) -> Any:
        return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)

    def summed(condition: Any) -> Any:
        return func.coalesce(func.sum(case((condition, RiskAppetiteDay.n), else_=0)), 0)

    appetite_where = [RiskAppetiteDay.tenant_id == tenant_id]
    if first is not None:
        appetite_where.append(RiskAppetiteDay.day >= first)
    appetite = (
        await session.execute(
            select(
                summed(RiskAppetiteDay.above.is_(True)),
                summed(RiskAppetiteDay.residual_above.is_(True)),
            ).where(*appetite_where)
        )
    ).one()
    if first is None:  # the whole register: a few hundred review dates
        day, n = RiskReviewDate.day, RiskReviewDate.n
        reviews = (
            await session.execute(
                select(
                    func.coalesce(func.sum(case((day < today, n), else_=0)), 0),
                    func.coalesce(func.sum(case((day >= today, n), else_=0)), 0),
                ).where(RiskReviewDate.tenant_id == tenant_id, day <= soon)
            )
        ).one()
    else:  # the risks created in the period: a range of the creation index (index-only)
        reviews = (
            await session.execute(
                select(
                    counted(Risk.next_review_date < today), counted(Risk.next_review_date >= today)
                ).where(
                    Risk.tenant_id == tenant_id,
                    Risk.deleted_at.is_(None),
                    Risk.next_review_date <= soon,
                    *_created_since(first),
                )
            )
        ).one()
    approved = RiskAcceptance.status == acceptance.APPROVED
    lapsed_since = datetime.combine(today - timedelta(days=EXPIRED_DAYS), datetime.min.time(), UTC)
    acceptances = (
        await session.execute(
            select(
                counted(RiskAcceptance.status == acceptance.SUBMITTED),
                counted(
                    and_(
                        approved,
                        RiskAcceptance.expires_on >= today,
                        RiskAcceptance.expires_on <= today + timedelta(days=EXPIRING_DAYS),
                    )
                ),
                counted(
                    or_(
                        and_(approved, RiskAcceptance.expires_on < today),
                        and_(
                            RiskAcceptance.status == acceptance.EXPIRED,
                            RiskAcceptance.ended_at >= lapsed_since,
                        ),
                    )
                ),
            )
            .join(Risk, Risk.id == RiskAcceptance.risk_id)
            .where(
                RiskAcceptance.tenant_id == tenant_id,
                RiskAcceptance.status.in_(
                    (acceptance.SUBMITTED, acceptance.APPROVED, acceptance.EXPIRED)
                ),
                Risk.deleted_at.is_(None),
                *_created_since(first),
            )
        )
    ).one()
    return {
        "above_appetite": {"current": int(appetite[0]), "residual": int(appetite[1])},
        "reviews": {"overdue": int(reviews[0]), "due_soon": int(reviews[1])},
        "acceptances": {
            "submitted": int(acceptances[0]),
            "expiring_30d": int(acceptances[1]),
            "expired": int(acceptances[2]),
        },
    }


_PG_DAYS = (
    "SELECT CAST(generate_series(CAST(:start AS date), CAST(:end AS date), "
    "interval '1 day') AS date) AS day"
)
_SQLITE_DAYS = (
    "SELECT date(:start) AS day UNION ALL "
    "SELECT date(day, '+1 day') FROM days WHERE day < date(:end)"
)
_TIMELINE = """
WITH RECURSIVE days(day) AS ({days}),
base AS (
    SELECT COALESCE(SUM(total_delta), 0) AS total, COALESCE(SUM(score_delta), 0) AS score,
           COALESCE(SUM(residual_delta), 0) AS residual
    FROM risk_daily_stats WHERE tenant_id = :tenant AND day < :start
),
win AS (
    SELECT day, total_delta, score_delta, residual_delta, created, mitigated
    FROM risk_daily_stats WHERE tenant_id = :tenant AND day >= :start AND day <= :end
)
SELECT days.day,
       base.total + SUM(COALESCE(win.total_delta, 0)) OVER (ORDER BY days.day) AS total,
       base.score + SUM(COALESCE(win.score_delta, 0)) OVER (ORDER BY days.day) AS score,
       base.residual + SUM(COALESCE(win.residual_delta, 0)) OVER (ORDER BY days.day)
           AS residual,
       COALESCE(win.created, 0) AS created,
       COALESCE(win.mitigated, 0) AS mitigated
FROM days CROSS JOIN base LEFT JOIN win ON win.day = days.day
ORDER BY days.day
"""


async def timeline(
    session: AsyncSession, *, tenant_id: uuid.UUID, days: int, today: date | None = None
) -> list[dict[str, Any]]:
    """One point per day for the last ``days`` days (today included), from history."""
    end = today or clock.today()
    start = end - timedelta(days=days - 1)
    postgres = dialect_name(session) == "postgresql"
    sql = text(_TIMELINE.format(days=_PG_DAYS if postgres else _SQLITE_DAYS)).bindparams(
        bindparam("start", start, type_=Date),
        bindparam("end", end, type_=Date),
        bindparam("tenant", tenant_id, type_=Risk.__table__.c.tenant_id.type),
    )
    points = []
    for day, total, score, residual, created, mitigated in await session.execute(sql):
        total = int(total)
        score_sum = Decimal(str(score or 0))
        residual_sum = Decimal(str(residual or 0))
        points.append(
            {
                "date": day if isinstance(day, date) else date.fromisoformat(str(day)),
                "total": total,
                "mean_score": float(round(score_sum / total, 2)) if total > 0 else 0.0,
                "mean_residual_score": (
                    float(round(residual_sum / total, 2)) if total > 0 else 0.0
                ),
                "created": int(created),
                "mitigated": int(mitigated),
            }
        )
    return points


async def top_risks(
    session: AsyncSession, *, tenant_id: uuid.UUID, limit: int
) -> list[reads.ListedRisk]:
    """The highest-scored open risks (not MITIGATED or CLOSED), with their asset ids."""
    open_risks = RiskFilters(status=tuple(s.value for s in RiskStatus if s.value not in _CLOSED))
    found = await reads.list_risks(
        session,
        tenant_id=tenant_id,
        filters=open_risks,
        sort=SortField.SCORE,
        order=SortOrder.DESC,
        limit=limit,
        with_total=False,
    )
    return found.items


async def matrix(
    session: AsyncSession, *, tenant_id: uuid.UUID, basis: str = "current"
) -> dict[str, Any]:
    """The heatmap on the tenant's grid for one of the four levels (every cell)."""
    return await reads.matrix(session, tenant_id=tenant_id, basis=basis)


async def _timeline_points(
    session: AsyncSession, *, tenant_id: uuid.UUID, days: int, today: date
) -> dict[str, Any]:
    return {"points": await timeline(session, tenant_id=tenant_id, days=days, today=today)}


async def _top_risks_page(
    session: AsyncSession, *, tenant_id: uuid.UUID, limit: int
) -> dict[str, Any]:
    found = await top_risks(session, tenant_id=tenant_id, limit=limit)
    return {"items": [r.document() for r in found]}


# --------------------------------------------------------------------------- cached reads
# Stats report mitigations and acceptances; matrix and timeline are figures of risks alone; the
# top risks are shown in full (custom fields, asset links). All follow the risk model.

STATS = cached_read(
    stats,
    namespace="dashboard:stats",
    ttl=600,
    varies_on=("tenant", "period", "today"),
    depends_on=(*DASHBOARD_STATS, RISK_MODEL, ACCEPTANCES),
    encode=lambda value: dump(Stats.model_validate(value)),
    today=clock.today,
)
MATRIX = cached_read(
    matrix,
    namespace="dashboard:matrix",
    ttl=600,
    varies_on=("tenant", "basis"),
    depends_on=(*RISK_FIGURES, RISK_MODEL),
    encode=documents.dumps,
)
TIMELINE = cached_read(
    _timeline_points,
    namespace="dashboard:timeline",
    ttl=600,
    varies_on=("tenant", "days", "today"),
    depends_on=(*RISK_FIGURES, RISK_MODEL),
    encode=lambda value: dump(Timeline.model_validate(value)),
    decode=Timeline.model_validate_json,
    today=clock.today,
)
TOP_RISKS = cached_read(
    _top_risks_page,
    namespace="dashboard:top_risks",
    ttl=600,
    varies_on=("tenant", "limit"),
    depends_on=(*REGISTER_VIEWS, RISK_MODEL),
    encode=documents.dumps,
    decode=TopRisks.model_validate_json,
)
