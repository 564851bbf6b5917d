"""What reports are made of, read from the register with SQL aggregates (tenant-filtered).

Every query filters on ``tenant_id`` and on live rows (``deleted_at IS NULL``); counts, means,
the heatmap and the overdue list are computed by the database, never by counting in Python.
The heatmap is the dashboard's matrix: the tenant's N×M grid in its bands' colours.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal

from sqlalchemy import case, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased
from sqlalchemy.sql import ColumnElement

from openrisk.auth.models import User
from openrisk.methodology import store
from openrisk.mitigations.models import Mitigation
from openrisk.mitigations.schemas import OPEN_STATUSES
from openrisk.risks import reads
from openrisk.risks.enums import SETTLED_STATUSES
from openrisk.risks.models import Risk
from openrisk.risks.scoring import global_risk_score
from openrisk.tenants.models import Tenant

MAX_REGISTER_ROWS = 20_000
TOP_RISKS = 10
OVERDUE_LISTED = 25
RISK_STATUSES = ("DRAFT", "ACTIVE", "MITIGATED", "ACCEPTED", "CLOSED")
MITIGATION_STATUSES = ("PLANNED", "IN_PROGRESS", "DONE", "CANCELLED")


@dataclass(frozen=True)
class RiskRow:
    id: uuid.UUID
    title: str
    description: str
    impact: int
    probability: int
    score: Decimal
    severity: str
    status: str
    treatment: str
    owner_id: uuid.UUID | None
    owner_email: str | None
    tags: list[str]
    frameworks: list[str]
    review_date: date | None
    external_id: str | None
    source: str
    mitigations: int
    mitigations_done: int
    version: int
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class OverdueMitigation:
    id: uuid.UUID
    title: str
    risk_title: str
    status: str
    progress: int
    due_date: date
    days_overdue: int
    assignee_email: str | None


@dataclass
class ReportData:
    tenant_name: str
    tenant_slug: str
    generated_at: datetime
    total_risks: int = 0
    mean_score: float | None = None
    global_risk_score: int = 100
    # the tenant's bands, the highest first, and how many live risks are above its appetite
    by_severity: dict[str, int] = field(default_factory=dict)
    above_appetite: int = 0
    by_status: dict[str, int] = field(default_factory=dict)
    # the tenant's N×M grid: heatmap[impact - 1][probability - 1] = count, and the band
    # (of impact × probability) of each cell, with the band colours of the risk model
    impact_levels: int = 5
    probability_levels: int = 5
    heatmap: list[list[int]] = field(default_factory=lambda: [[0] * 5 for _ in range(5)])
    heatmap_bands: list[list[str]] = field(default_factory=list)
    band_colours: dict[str, str] = field(default_factory=dict)
    top_risks: list[RiskRow] = field(default_factory=list)
    mitigations: dict[str, int] = field(default_factory=dict)
    overdue: list[OverdueMitigation] = field(default_factory=list)
    register: list[RiskRow] = field(default_factory=list)
    truncated: bool = False

    def summary(self) -> dict[str, object]:
        """The numbers kept with a stored report (listing, audit)."""
        return {
            "total_risks": self.total_risks,
            "global_risk_score": self.global_risk_score,
            "mean_score": self.mean_score,
            "by_severity": self.by_severity,
            "above_appetite": self.above_appetite,
            "overdue_mitigations": self.mitigations.get("overdue", 0),
            "rows": len(self.register),
            "truncated": self.truncated,
        }


def _live_risks(tenant_id: uuid.UUID) -> list[ColumnElement[bool]]:
    return [Risk.tenant_id == tenant_id, Risk.deleted_at.is_(None)]


async def _risk_rows(
    session: AsyncSession, tenant_id: uuid.UUID, limit: int, *, open_only: bool = False
) -> list[RiskRow]:
    """Live risks by score; ``open_only`` leaves out the settled ones, as the dashboard's top
    risks do."""
    counts = (
        select(
            Mitigation.risk_id.label("risk_id"),
            func.count().label("total"),
            func.sum(case((Mitigation.status == "DONE", 1), else_=0)).label("done"),
        )
        .where(Mitigation.tenant_id == tenant_id, Mitigation.deleted_at.is_(None))
        .group_by(Mitigation.risk_id)
        .subquery()
    )
    owner = aliased(User)
    rows = await session.execute(
        select(Risk, owner.email, counts.c.total, counts.c.done)
        .outerjoin(owner, owner.id == Risk.owner_id)
        .outerjoin(counts, counts.c.risk_id == Risk.id)
        .where(
            *_live_risks(tenant_id),
            *([Risk.status.not_in(SETTLED_STATUSES)] if open_only else []),
        )
        .order_by(Risk.score.desc(), Risk.title, Risk.id)
        .limit(limit)
    )
    return [
        RiskRow(
            id=r.id,
            title=r.title,
            description=r.description,
            impact=r.impact,
            probability=r.probability,
            score=Decimal(r.score),
            severity=r.severity,
            status=r.status,
            treatment=r.treatment,
            owner_id=r.owner_id,
            owner_email=email,
            tags=list(r.tags or []),
            frameworks=list(r.frameworks or []),
            review_date=r.review_date,
            external_id=r.external_id,
            source=r.source,
            mitigations=int(total or 0),
            mitigations_done=int(done or 0),
            version=r.version,
            created_at=r.created_at,
            updated_at=r.updated_at,
        )
        for r, email, total, done in rows.tuples()
    ]


async def collect(
    session: AsyncSession, *, tenant_id: uuid.UUID, register: bool, today: date | None = None
) -> ReportData:
    """The tenant's figures; with ``register`` every live risk too (at most MAX_REGISTER_ROWS)."""
    today = today or datetime.now(UTC).date()
    tenant = await session.get(Tenant, tenant_id)
    data = ReportData(
        tenant_name=tenant.name if tenant else "",
        tenant_slug=tenant.slug if tenant else "tenant",
        generated_at=datetime.now(UTC),
    )
    live = _live_risks(tenant_id)

    total, mean = (
        await session.execute(select(func.count(), func.avg(Risk.score)).where(*live))
    ).one()
    data.total_risks = int(total or 0)
    data.mean_score = round(float(mean), 2) if mean is not None else None
    data.global_risk_score = global_risk_score(Decimal(str(mean)) if mean is not None else None)

    scoring = (await store.load(session, tenant_id=tenant_id)).scoring
    data.band_colours = {band.name: band.color for band in scoring.bands}
    severity_counts = {band.name: 0 for band in reversed(scoring.bands)}
    above = 0
    for severity, within, count in await session.execute(
        select(Risk.severity, Risk.within_appetite, func.count())
        .where(*live)
        .group_by(Risk.severity, Risk.within_appetite)
    ):
        severity_counts[severity] = severity_counts.get(severity, 0) + int(count)
        above += 0 if within else int(count)
    data.by_severity = severity_counts
    data.above_appetite = above

    status_counts = dict.fromkeys(RISK_STATUSES, 0)
    for status, count in await session.execute(
        select(Risk.status, func.count()).where(*live).group_by(Risk.status)
    ):
        status_counts[status] = int(count)
    data.by_status = status_counts

    grid = await reads.matrix(session, tenant_id=tenant_id)  # as the dashboard shows it
    data.impact_levels = len(grid["impact_levels"])
    data.probability_levels = len(grid["probability_levels"])
    data.heatmap = [[0] * data.probability_levels for _ in range(data.impact_levels)]
    data.heatmap_bands = [[""] * data.probability_levels for _ in range(data.impact_levels)]
    for cell in grid["cells"]:
        impact, probability = cell["impact"] - 1, cell["probability"] - 1
        data.heatmap[impact][probability] = int(cell["count"])
        data.heatmap_bands[impact][probability] = cell["band"]

    # mitigations of live risks
    live_mitigations = [
        Mitigation.tenant_id == tenant_id,
        Mitigation.deleted_at.is_(None),
        Risk.tenant_id == tenant_id,
        Risk.deleted_at.is_(None),
    ]
    is_overdue = (Mitigation.due_date < today) & Mitigation.status.in_(OPEN_STATUSES)
    mitigation_counts = {s.lower(): 0 for s in MITIGATION_STATUSES}
    overdue_total = 0
    for status, count, overdue in await session.execute(
        select(
            Mitigation.status,
            func.count(),
            func.sum(case((is_overdue, 1), else_=0)),
        )
        .join(Risk, Risk.id == Mitigation.risk_id)
        .where(*live_mitigations)
        .group_by(Mitigation.status)
    ):
        mitigation_counts[str(status).lower()] = int(count)
        overdue_total += int(overdue or 0)
    mitigation_counts["total"] = sum(mitigation_counts.values())
    mitigation_counts["overdue"] = overdue_total
    data.mitigations = mitigation_counts

    assignee = aliased(User)
    overdue_rows = await session.execute(
        select(
            Mitigation.id,
            Mitigation.title,
            Risk.title,
            Mitigation.status,
            Mitigation.progress,
            Mitigation.due_date,
            assignee.email,
        )
        .join(Risk, Risk.id == Mitigation.risk_id)
        .outerjoin(assignee, assignee.id == Mitigation.assignee_id)
        .where(*live_mitigations, is_overdue)
        .order_by(Mitigation.due_date, Mitigation.id)
        .limit(OVERDUE_LISTED)
    )
    data.overdue = [
        OverdueMitigation(
            id=mid,
            title=title,
            risk_title=risk_title,
            status=status,
            progress=int(progress),
            due_date=due,
            days_overdue=(today - due).days,
            assignee_email=email,
        )
        for mid, title, risk_title, status, progress, due, email in overdue_rows.tuples()
        if due is not None  # always true: overdue means a due date in the past
    ]

    data.top_risks = await _risk_rows(session, tenant_id, TOP_RISKS, open_only=True)
    if register:
        rows = await _risk_rows(session, tenant_id, MAX_REGISTER_ROWS)
        data.register = rows
        data.truncated = data.total_risks > len(rows)
    return data
