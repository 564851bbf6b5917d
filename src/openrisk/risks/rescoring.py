"""Rescoring after an asset changed: the scores of every live risk linked to it, in bulk.

An asset's criticality feeds the score of each risk it is linked to, so changing or deleting an
asset rescores those risks with one UPDATE and records a SCORE_CHANGE history row for each.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, cast

from sqlalchemy import Table, bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from openrisk.audit.service import diff
from openrisk.core.db.base import utcnow
from openrisk.core.events import DomainEvent
from openrisk.methodology import levels
from openrisk.methodology.store import scoring_for
from openrisk.risks import history, queries
from openrisk.risks.enums import HistoryAction
from openrisk.risks.models import Risk, RiskAsset
from openrisk.risks.reads import linked_criticalities
from openrisk.risks.scoring import ScoringModel


@dataclass(frozen=True)
class Rescored:
    """One risk whose score moved: the values its row, history and event need."""

    row: Any  # a Row of the columns _linked_live_risks selects
    score: Decimal
    severity: str


async def rescore_for_assets(
    session: AsyncSession,
    *,
    tenant_id: uuid.UUID,
    asset_ids: Sequence[uuid.UUID],
    changed_by: uuid.UUID | None,
    reason: str,
) -> list[DomainEvent]:
    """Recompute the score of every live risk linked to ``asset_ids`` (after their criticality
    changed or they were deleted): bulk UPDATE, SCORE_CHANGE history rows; no commit.

    Returns the ``risk.updated`` events of the risks whose score moved.
    """
    await session.flush()
    rows = await _linked_live_risks(session, tenant_id=tenant_id, asset_ids=asset_ids)
    if not rows:
        return []
    scoring = await scoring_for(session, tenant_id=tenant_id)
    rescored = await _new_scores(session, rows, scoring)
    now = utcnow()
    if rescored:
        await _write_scores(session, rescored, now)
    # the other levels are scored with the same factors, whether or not the current one moved
    await levels.refresh(
        session, tenant_id=tenant_id, model=scoring, risk_ids=[row.id for row in rows]
    )
    if not rescored:
        return []
    await history.append(
        session, [_history_entry(tenant_id, item, changed_by, reason, now) for item in rescored]
    )
    _expire_loaded(session, {item.row.id for item in rescored})
    return [_event(tenant_id, item, changed_by, reason) for item in rescored]


async def _linked_live_risks(
    session: AsyncSession, *, tenant_id: uuid.UUID, asset_ids: Sequence[uuid.UUID]
) -> list[Any]:
    affected = select(RiskAsset.risk_id).where(
        RiskAsset.tenant_id == tenant_id, RiskAsset.asset_id.in_(list(asset_ids))
    )
    result = await session.execute(
        select(
            Risk.id,
            Risk.impact,
            Risk.probability,
            Risk.score,
            Risk.severity,
            Risk.status,
            Risk.version,
            Risk.created_at,
        ).where(Risk.id.in_(affected), *queries.live(tenant_id))
    )
    return list(result.all())


async def _new_scores(
    session: AsyncSession, rows: Sequence[Any], scoring: ScoringModel
) -> list[Rescored]:
    """The risks whose score differs once recomputed from their linked assets."""
    crits = await linked_criticalities(session, [row.id for row in rows])
    rescored = []
    for row in rows:
        score = scoring.score(row.impact, row.probability, crits.get(row.id, []))
        if score != Decimal(row.score).quantize(Decimal("0.01")):
            rescored.append(Rescored(row=row, score=score, severity=scoring.severity(score)))
    return rescored


async def _write_scores(session: AsyncSession, rescored: Sequence[Rescored], now: datetime) -> None:
    table = cast(Table, Risk.__table__)
    await session.execute(
        update(table)
        .where(table.c.id == bindparam("rid"))
        .values(
            score=bindparam("new_score"),
            severity=bindparam("new_severity"),
            version=table.c.version + 1,
            updated_at=now,
        ),
        [
            {"rid": item.row.id, "new_score": item.score, "new_severity": item.severity}
            for item in rescored
        ],
    )


def _history_entry(
    tenant_id: uuid.UUID,
    item: Rescored,
    changed_by: uuid.UUID | None,
    reason: str,
    now: datetime,
) -> history.HistoryEntry:
    row = item.row
    return history.HistoryEntry.of(
        row,
        tenant_id=tenant_id,
        action=HistoryAction.SCORE_CHANGE,
        score=item.score,
        severity=item.severity,
        prev_score=Decimal(row.score),
        prev_status=row.status,
        prev_severity=row.severity,
        changed_by=changed_by,
        changes={
            **diff(
                {"score": float(row.score), "severity": row.severity},
                {"score": float(item.score), "severity": item.severity},
            ),
            "reason": reason,
        },
        created_at=now,
    )


def _expire_loaded(session: AsyncSession, risk_ids: set[uuid.UUID]) -> None:
    """Risks already loaded in the session must reload the score the bulk UPDATE wrote."""
    for obj in list(session.identity_map.values()):
        if isinstance(obj, Risk) and obj.id in risk_ids:
            session.expire(obj)


def _event(
    tenant_id: uuid.UUID, item: Rescored, changed_by: uuid.UUID | None, reason: str
) -> DomainEvent:
    return DomainEvent(
        type="risk.updated",
        tenant_id=tenant_id,
        resource_id=item.row.id,
        data={
            "id": str(item.row.id),
            "score": float(item.score),
            "severity": item.severity,
            "version": item.row.version + 1,
            "reason": reason,
        },
        actor_id=changed_by,
    )
