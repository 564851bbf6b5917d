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

import functools
import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import Date, and_, bindparam, case, func, or_, select, text, true
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
    mitigations created within ``period``, and the appetite, review and acceptance figures
    (``_figures``): two statements, whatever the register's size — sums over the day roll-ups
    (a few hundred rows at most), and one row of every other figure with the check of the
    process's copy of the risk model. Both are built once per shape (with or without a
    period) with bound values, so a request only binds them."""
    today = today or clock.today()
    first = since_day(period, today)
    risk_rows, figures = _stats_statements(first is not None)
    first_at = datetime.combine(first, datetime.min.time(), UTC) if first is not None else None
    values = {
        "tenant": tenant_id,
        "first": first,
        "first_at": first_at,
        "today": today,
        "soon": today + timedelta(days=DUE_SOON_DAYS),
        "expiring_until": today + timedelta(days=EXPIRING_DAYS),
        "lapsed_since": datetime.combine(
            today - timedelta(days=EXPIRED_DAYS), datetime.min.time(), UTC
        ),
    }
    if first is None:
        del values["first"], values["first_at"]
    connection = await session.connection()  # plain rows: no ORM result machinery
    rows = (await connection.execute(risk_rows, values)).all()
    one = (await connection.execute(figures, values)).one()
    stored = await store.cached(
        session, tenant_id=tenant_id, stamp=store.stamp_of(one.model_version, one.model_updated_at)
    )
    model = stored.scoring
    by_status = {s.value: 0 for s in RiskStatus}
    by_severity = {s.value: 0 for s in (Severity.CRITICAL, Severity.HIGH, Severity.MEDIUM)}
    by_severity[Severity.LOW.value] = 0
    for band in reversed(model.bands):
        by_severity.setdefault(band.name, 0)
    total, score_sum = 0, Decimal(0)
    for status, severity, count, summed in rows:
        count = int(count or 0)
        by_status[status] = by_status.get(status, 0) + count
        by_severity[severity] = by_severity.get(severity, 0) + count
        total += count
        score_sum += Decimal(str(summed or 0))
    mean = (score_sum / total) if total else None
    per_status = {name: int(getattr(one, f"m_{name.lower()}")) for name in _MITIGATION_STATUSES}
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
            "overdue": int(one.m_overdue),
            "completion_rate": round(100 * per_status["DONE"] / denominator, 1)
            if denominator
            else 0.0,
        },
        "above_appetite": {"current": int(one.above), "residual": int(one.residual_above)},
        "reviews": {"overdue": int(one.review_overdue), "due_soon": int(one.review_due_soon)},
        "acceptances": {
            "submitted": int(one.submitted),
            "expiring_30d": int(one.expiring),
            "expired": int(one.expired),
        },
    }


_MITIGATION_STATUSES = ("PLANNED", "IN_PROGRESS", "DONE", "CANCELLED")


@functools.cache
def _stats_statements(with_period: bool) -> tuple[Any, Any]:
    """The statements of ``stats`` for a period (bound ``first``, ``first_at``) or the whole
    register, built once: (the risks' sums by status and severity; one row of the other
    figures)."""
    tenant: Any = bindparam("tenant")
    first: Any = bindparam("first")
    first_at: Any = bindparam("first_at")
    today: Any = bindparam("today")
    soon: Any = bindparam("soon")

    def counted(condition: Any) -> Any:
        return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)

    def summed(condition: Any, n: Any) -> Any:
        return func.coalesce(func.sum(case((condition, n), else_=0)), 0)

    risk_where = [RiskDayCount.tenant_id == tenant]
    mitigation_where = [MitigationDayCount.tenant_id == tenant]
    overdue_where = [
        Mitigation.tenant_id == tenant,
        Mitigation.deleted_at.is_(None),
        Mitigation.status.in_(OPEN_STATUSES),
        Mitigation.due_date < today,
    ]
    appetite_where = [RiskAppetiteDay.tenant_id == tenant]
    created_since: list[Any] = []
    if with_period:
        risk_where.append(RiskDayCount.day >= first)
        mitigation_where.append(MitigationDayCount.day >= first)
        overdue_where.append(Mitigation.created_at >= first_at)
        appetite_where.append(RiskAppetiteDay.day >= first)
        created_since.append(Risk.created_at >= first_at)
    risk_rows = (
        select(
            RiskDayCount.status,
            RiskDayCount.severity,
            func.sum(RiskDayCount.n),
            func.sum(RiskDayCount.score_sum),
        )
        .where(*risk_where)
        .group_by(RiskDayCount.status, RiskDayCount.severity)
    )
    mitigations = (
        select(
            *(
                summed(MitigationDayCount.status == name, MitigationDayCount.n).label(
                    f"m_{name.lower()}"
                )
                for name in _MITIGATION_STATUSES
            )
        )
        .where(*mitigation_where)
        .subquery("mitigations")
    )
    overdue = (
        select(func.count().label("m_overdue"))
        .select_from(Mitigation)
        .where(*overdue_where)
        .subquery("overdue")
    )
    appetite = (
        select(
            summed(RiskAppetiteDay.above.is_(True), RiskAppetiteDay.n).label("above"),
            summed(RiskAppetiteDay.residual_above.is_(True), RiskAppetiteDay.n).label(
                "residual_above"
            ),
        )
        .where(*appetite_where)
        .subquery("appetite")
    )
    if not with_period:  # the whole register: a few hundred review dates
        day, n = RiskReviewDate.day, RiskReviewDate.n
        reviews = select(
            summed(day < today, n).label("review_overdue"),
            summed(day >= today, n).label("review_due_soon"),
        ).where(RiskReviewDate.tenant_id == tenant, day <= soon)
    else:  # the risks created in the period: a range of the creation index (index-only)
        reviews = select(
            counted(Risk.next_review_date < today).label("review_overdue"),
            counted(Risk.next_review_date >= today).label("review_due_soon"),
        ).where(
            Risk.tenant_id == tenant,
            Risk.deleted_at.is_(None),
            Risk.next_review_date <= soon,
            *created_since,
        )
    review_figures = reviews.subquery("reviews")
    approved = RiskAcceptance.status == acceptance.APPROVED
    acceptances = (
        select(
            counted(RiskAcceptance.status == acceptance.SUBMITTED).label("submitted"),
            counted(
                and_(
                    approved,
                    RiskAcceptance.expires_on >= today,
                    RiskAcceptance.expires_on <= bindparam("expiring_until"),
                )
            ).label("expiring"),
            counted(
                or_(
                    and_(approved, RiskAcceptance.expires_on < today),
                    and_(
                        RiskAcceptance.status == acceptance.EXPIRED,
                        RiskAcceptance.ended_at >= bindparam("lapsed_since"),
                    ),
                )
            ).label("expired"),
        )
        .join(Risk, Risk.id == RiskAcceptance.risk_id)
        .where(
            RiskAcceptance.tenant_id == tenant,
            RiskAcceptance.status.in_(
                (acceptance.SUBMITTED, acceptance.APPROVED, acceptance.EXPIRED)
            ),
            Risk.deleted_at.is_(None),
            *created_since,
        )
        .subquery("acceptances")
    )
    parts = (mitigations, overdue, appetite, review_figures, acceptances)
    joined: Any = parts[0]
    for part in parts[1:]:  # one row each: joined on true, still one row
        joined = joined.join(part, true())
    figures = select(*(c for part in parts for c in part.c), *store.stamp_columns(tenant))
    return risk_rows, figures.select_from(joined)


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
