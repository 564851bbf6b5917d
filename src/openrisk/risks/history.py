"""Append-only risk history and the per-day aggregates the timeline reads.

Every history row also moves the tenant's daily aggregate (live-risk count, score sum, created,
mitigated) in the same transaction. ``rebuild_daily_stats`` recomputes the aggregates from the
history rows alone, with one statement (seeds use it; a test checks both agree).
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Self, cast

from sqlalchemy import Table, case, delete, func, insert, literal, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from openrisk.core.db.base import utcnow
from openrisk.core.db.bulk import RawJson, insert_rows
from openrisk.core.ids import new_id
from openrisk.risks import rollups
from openrisk.risks.common import dialect_name, to_json
from openrisk.risks.enums import HistoryAction, RiskStatus
from openrisk.risks.models import Risk, RiskDailyStat, RiskHistory
from openrisk.risks.scoring import severity_for

MITIGATED = RiskStatus.MITIGATED.value
HISTORY = cast(Table, RiskHistory.__table__)


@dataclass
class HistoryEntry:
    tenant_id: uuid.UUID
    risk_id: uuid.UUID
    action: HistoryAction
    impact: int
    probability: int
    score: Decimal
    severity: str
    status: str
    prev_score: Decimal | None = None
    prev_status: str | None = None
    changed_by: uuid.UUID | None = None
    changes: dict[str, Any] | RawJson | None = None  # RawJson: already encoded
    created_at: datetime = field(default_factory=utcnow)
    # not stored: what the roll-ups need (previous levels; the risk's creation time)
    prev_impact: int | None = None
    prev_probability: int | None = None
    prev_severity: str | None = None
    risk_created_at: datetime | None = None

    @classmethod
    def of(cls, risk: Any, *, tenant_id: uuid.UUID, action: HistoryAction, **rest: Any) -> Self:
        """An entry of ``risk`` (a Risk, or a row with its columns) showing its current levels,
        score and status unless ``rest`` says otherwise."""
        values: dict[str, Any] = {
            "impact": risk.impact,
            "probability": risk.probability,
            "score": Decimal(risk.score),
            "severity": risk.severity,
            "status": risk.status,
            "risk_created_at": risk.created_at,
        }
        return cls(tenant_id=tenant_id, risk_id=risk.id, action=action, **{**values, **rest})

    def change(self) -> rollups.RiskChange:
        after = rollups.RiskState(
            self.impact, self.probability, self.status, self.severity, Decimal(self.score)
        )
        before = None
        if self.action not in (HistoryAction.CREATE, HistoryAction.RESTORE):
            prev_score = Decimal(self.prev_score if self.prev_score is not None else self.score)
            before = rollups.RiskState(
                self.prev_impact if self.prev_impact is not None else self.impact,
                self.prev_probability if self.prev_probability is not None else self.probability,
                self.prev_status or self.status,
                self.prev_severity or severity_for(prev_score).value,
                prev_score,
            )
        return rollups.RiskChange(
            tenant_id=self.tenant_id,
            created=self.risk_created_at or self.created_at,
            before=before,
            after=None if self.action == HistoryAction.DELETE else after,
        )

    def row(self) -> dict[str, Any]:
        return {
            "id": new_id(),
            "tenant_id": self.tenant_id,
            "risk_id": self.risk_id,
            "action": self.action.value,
            "impact": self.impact,
            "probability": self.probability,
            "score": self.score,
            "severity": self.severity,
            "status": self.status,
            "prev_score": self.prev_score,
            "prev_status": self.prev_status,
            "changed_by": self.changed_by,
            "changes": self.changes
            if type(self.changes) is RawJson
            else to_json(self.changes) or None,
            "created_at": self.created_at,
        }


def change_entry(
    risk: Any,
    *,
    before: Mapping[str, Any],
    changes: dict[str, Any],
    changed_by: uuid.UUID,
    at: datetime,
    encoded: RawJson | None = None,
) -> HistoryEntry:
    """The history row of an update: STATUS_CHANGE when the status moved, else UPDATE
    (``encoded``: the changes already encoded, when an audit row shares them)."""
    return HistoryEntry.of(
        risk,
        tenant_id=risk.tenant_id,
        action=HistoryAction.STATUS_CHANGE if "status" in changes else HistoryAction.UPDATE,
        prev_score=Decimal(str(before["score"])),
        prev_status=before["status"],
        prev_impact=before["impact"],
        prev_probability=before["probability"],
        prev_severity=before["severity"],
        changed_by=changed_by,
        changes=changes if encoded is None else encoded,
        created_at=at,
    )


def daily_delta(
    action: str,
    score: Decimal,
    prev_score: Decimal | None,
    status: str,
    prev_status: str | None,
) -> tuple[int, Decimal, int, int]:
    """(live-risk count, score sum, created, mitigated) deltas of one history row."""
    if action == HistoryAction.CREATE:
        return 1, Decimal(score), 1, int(status == MITIGATED)
    if action == HistoryAction.DELETE:
        return -1, -Decimal(score), 0, 0
    if action == HistoryAction.RESTORE:
        return 1, Decimal(score), 0, 0
    score_delta = Decimal(score) - Decimal(prev_score if prev_score is not None else score)
    became_mitigated = status == MITIGATED and prev_status != MITIGATED
    return 0, score_delta, 0, int(became_mitigated)


def _dialect_insert(session: AsyncSession) -> Any:
    return postgresql.insert if dialect_name(session) == "postgresql" else sqlite.insert


async def append(
    session: AsyncSession,
    entries: Sequence[HistoryEntry],
    *,
    rows: Sequence[Mapping[str, Any]] | None = None,
) -> None:
    """Insert the history rows and move the daily aggregates (one upsert per tenant-day) and
    the dashboard roll-ups. ``rows``: the entries' rows (``HistoryEntry.row``) when the caller
    built them already."""
    if not entries:
        return
    await insert_rows(session, HISTORY, rows if rows is not None else [e.row() for e in entries])
    await rollups.apply_risk_changes(session, [entry.change() for entry in entries])
    totals: dict[tuple[uuid.UUID, date], list[Any]] = defaultdict(lambda: [0, Decimal(0), 0, 0])
    for entry in entries:
        delta = daily_delta(
            entry.action, entry.score, entry.prev_score, entry.status, entry.prev_status
        )
        bucket = totals[(entry.tenant_id, entry.created_at.date())]
        for i, value in enumerate(delta):
            bucket[i] += value
    rows = [
        {
            "tenant_id": tenant_id,
            "day": day,
            "total_delta": t,
            "score_delta": s,
            "created": c,
            "mitigated": m,
        }
        for (tenant_id, day), (t, s, c, m) in sorted(totals.items())
    ]
    stmt = _dialect_insert(session)(RiskDailyStat).values(rows)
    stmt = stmt.on_conflict_do_update(
        index_elements=[RiskDailyStat.tenant_id, RiskDailyStat.day],
        set_={
            "total_delta": RiskDailyStat.total_delta + stmt.excluded.total_delta,
            "score_delta": RiskDailyStat.score_delta + stmt.excluded.score_delta,
            "created": RiskDailyStat.created + stmt.excluded.created,
            "mitigated": RiskDailyStat.mitigated + stmt.excluded.mitigated,
        },
    )
    await session.execute(stmt)


_DAILY_COLUMNS = ("tenant_id", "day", "total_delta", "score_delta", "created", "mitigated")


def _history_day(session: AsyncSession) -> ColumnElement[Any]:
    if dialect_name(session) == "postgresql":
        return func.date(func.timezone("UTC", RiskHistory.created_at))
    return func.date(RiskHistory.created_at)


async def rebuild_daily_stats(session: AsyncSession, *, tenant_ids: Iterable[uuid.UUID]) -> None:
    """Recompute the tenants' daily aggregates from their history rows (one INSERT … SELECT)."""
    tenants = list(tenant_ids)
    if not tenants:
        return
    await session.execute(delete(RiskDailyStat).where(RiskDailyStat.tenant_id.in_(tenants)))
    h = RiskHistory
    day = _history_day(session).label("day")
    is_create = h.action == HistoryAction.CREATE.value
    is_delete = h.action == HistoryAction.DELETE.value
    is_restore = h.action == HistoryAction.RESTORE.value
    query = (
        select(
            h.tenant_id,
            day,
            func.sum(case((is_create | is_restore, 1), (is_delete, -1), else_=0)),
            func.sum(
                case(
                    (is_create | is_restore, h.score),
                    (is_delete, -h.score),
                    else_=h.score - func.coalesce(h.prev_score, h.score),
                )
            ),
            func.sum(case((is_create, 1), else_=0)),
            func.sum(
                case(
                    (
                        ~is_delete
                        & (h.status == MITIGATED)
                        & func.coalesce(h.prev_status, literal("")).is_distinct_from(MITIGATED),
                        1,
                    ),
                    else_=0,
                )
            ),
        )
        .where(h.tenant_id.in_(tenants))
        .group_by(h.tenant_id, day)
    )
    await session.execute(insert(RiskDailyStat).from_select(list(_DAILY_COLUMNS), query))
    # the residual sum: each live risk's residual on its creation day (what the triggers on
    # ``risks`` then move day by day is not in the history)
    created = rollups.utc_day(session, Risk.created_at).label("day")
    residual = _dialect_insert(session)(RiskDailyStat).from_select(
        [*_DAILY_COLUMNS, "residual_delta"],
        select(
            Risk.tenant_id,
            created,
            literal(0),
            literal(0),
            literal(0),
            literal(0),
            func.sum(Risk.residual_score),
        )
        .where(Risk.tenant_id.in_(tenants), Risk.deleted_at.is_(None))
        .group_by(Risk.tenant_id, created),
    )
    await session.execute(
        residual.on_conflict_do_update(
            index_elements=[RiskDailyStat.tenant_id, RiskDailyStat.day],
            set_={"residual_delta": residual.excluded.residual_delta},
        )
    )
