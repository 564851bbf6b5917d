"""The bin: soft-deleted risks of a tenant, listed newest deletion first, and restored.

Deleting a risk marks it and its live mitigations deleted with one timestamp. Restoring brings
back the risk and exactly those mitigations (a mitigation deleted on its own earlier stays
deleted), rescored from its assets as they are now (an asset may have changed or gone while the
risk was in the bin). The restore moves the roll-ups and daily aggregates like a creation does,
and writes a RESTORE history row and a ``risk.restore`` audit row in the same transaction.

Who may see and restore what follows ``risk:delete``: the whole tenant's bin with the full
grant, only the caller's own risks with ``risk:delete:own``.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from openrisk.audit.service import diff, record
from openrisk.core.context import RequestContext
from openrisk.core.db.base import utcnow
from openrisk.core.errors import Conflict, NotFound
from openrisk.core.uow import UnitOfWork, commit_with
from openrisk.methodology import levels
from openrisk.methodology.store import scoring_for
from openrisk.mitigations.models import Mitigation
from openrisk.risks import history, labels, rollups
from openrisk.risks.commands import flush_or_412, risk_event, snapshot
from openrisk.risks.enums import HistoryAction
from openrisk.risks.models import Risk, RiskHistory
from openrisk.risks.reads import RiskRecord, asset_criticalities, asset_ids_for

DELETE_CODE = "risk:delete"


@dataclass(frozen=True)
class BinnedRisk:
    """A deleted risk as the bin lists it."""

    id: uuid.UUID
    title: str
    severity: str
    score: Decimal
    status: str
    owner_id: uuid.UUID | None
    deleted_at: datetime
    deleted_by: uuid.UUID | None
    mitigations: int  # the mitigations deleted with it, which a restore brings back


def _in_bin(context: RequestContext) -> list[ColumnElement[bool]]:
    """The caller's view of the bin: the tenant's deleted risks, or only its own ones."""
    where = [Risk.tenant_id == context.tenant_id, Risk.deleted_at.is_not(None)]
    if not context.has_any_scope(DELETE_CODE):
        where.append(Risk.owner_id == context.user_id)
    return where


async def list_deleted(
    session: AsyncSession, *, context: RequestContext, offset: int, limit: int
) -> tuple[list[BinnedRisk], int]:
    """One page of the bin, most recently deleted first, and its total: three statements
    whatever the page size (the page's ids from the bin's index, then the page's rows with
    who deleted each and how many mitigations went with it)."""
    where = _in_bin(context)
    total = int(await session.scalar(select(func.count()).select_from(Risk).where(*where)) or 0)
    if total == 0 or offset >= total:
        return [], total
    order = (Risk.deleted_at.desc(), Risk.id.desc())
    page = select(Risk.id).where(*where).order_by(*order).offset(offset).limit(limit).subquery()
    deleted_by = (
        select(RiskHistory.changed_by)
        .where(
            RiskHistory.tenant_id == context.tenant_id,
            RiskHistory.risk_id == Risk.id,
            RiskHistory.created_at == Risk.deleted_at,
            RiskHistory.action == HistoryAction.DELETE.value,
        )
        .limit(1)
        .scalar_subquery()
    )
    with_it = (
        select(func.count())
        .select_from(Mitigation)
        .where(
            Mitigation.tenant_id == context.tenant_id,
            Mitigation.risk_id == Risk.id,
            Mitigation.deleted_at == Risk.deleted_at,
        )
        .scalar_subquery()
    )
    rows = await session.execute(
        select(
            Risk.id,
            Risk.title,
            Risk.severity,
            Risk.score,
            Risk.status,
            Risk.owner_id,
            Risk.deleted_at,
            deleted_by.label("deleted_by"),
            with_it.label("mitigations"),
        )
        .join(page, page.c.id == Risk.id)
        .where(Risk.tenant_id == context.tenant_id)
        .order_by(*order)
    )
    return [
        BinnedRisk(
            id=row.id,
            title=row.title,
            severity=row.severity,
            score=Decimal(row.score),
            status=row.status,
            owner_id=row.owner_id,
            deleted_at=row.deleted_at,
            deleted_by=row.deleted_by,
            mitigations=int(row.mitigations or 0),
        )
        for row in rows
    ], total


async def restore_risk(
    *,
    uow: UnitOfWork,
    context: RequestContext,
    risk_id: uuid.UUID,
) -> RiskRecord:
    """Bring a deleted risk and the mitigations deleted with it back into the register.

    404 outside the tenant; 403 without ``risk:delete`` on this risk; 409 when it is not in the
    bin; 412 when another writer changed it meanwhile."""
    session = uow.session
    risk = await session.scalar(
        select(Risk).where(Risk.tenant_id == context.tenant_id, Risk.id == risk_id)
    )
    if risk is None:
        raise NotFound("Risk not found.")
    context.require_on(DELETE_CODE, risk.owner_id)
    if risk.deleted_at is None:
        raise Conflict("This risk is not deleted: there is nothing to restore.")
    deleted_at = risk.deleted_at
    asset_ids = (await asset_ids_for(session, [risk.id])).get(risk.id, [])
    before = snapshot(risk, asset_ids)
    prev_score, prev_status = Decimal(risk.score), risk.status
    criticalities = await asset_criticalities(
        session, tenant_id=context.tenant_id, asset_ids=asset_ids
    )
    scoring = await scoring_for(session, tenant_id=context.tenant_id)
    # the tenant's model may have lost levels while the risk was in the bin: the top one
    risk.impact = min(risk.impact, scoring.impact_levels)
    risk.probability = min(risk.probability, scoring.probability_levels)
    risk.inherent_impact = min(risk.inherent_impact, scoring.impact_levels)
    risk.inherent_probability = min(risk.inherent_probability, scoring.probability_levels)
    if risk.target_impact is not None and risk.target_probability is not None:
        risk.target_impact = min(risk.target_impact, scoring.impact_levels)
        risk.target_probability = min(risk.target_probability, scoring.probability_levels)
    score = scoring.score(risk.impact, risk.probability, criticalities)
    now = utcnow()
    risk.score, risk.severity = score, scoring.severity(score)
    risk.deleted_at = None
    risk.updated_at = now
    await flush_or_412(session, "The risk was changed meanwhile; reload the bin and retry.")
    await labels.add(session, [risk])
    await _restore_mitigations(session, context=context, risk_id=risk.id, deleted_at=deleted_at)
    # the other levels, with the reductions of the mitigations that came back
    await levels.refresh(session, tenant_id=context.tenant_id, model=scoring, risk_ids=[risk.id])
    changes: dict[str, Any] = {
        "deleted_at": {"before": deleted_at.isoformat(), "after": None},
        **diff(before, snapshot(risk, asset_ids)),
    }
    await history.append(
        session,
        [
            history.HistoryEntry.of(
                risk,
                tenant_id=risk.tenant_id,
                action=HistoryAction.RESTORE,
                prev_score=prev_score,
                prev_status=prev_status,
                changed_by=context.user_id,
                changes=changes,
                created_at=now,
            )
        ],
    )
    record(
        session,
        context=context,
        action="risk.restore",
        resource_type="risk",
        resource_id=risk.id,
        changes=changes,
    )
    restored = RiskRecord(risk, asset_ids)
    await commit_with(uow, [risk_event("restored", context, restored)])
    return restored


async def _restore_mitigations(
    session: AsyncSession, *, context: RequestContext, risk_id: uuid.UUID, deleted_at: datetime
) -> None:
    """The mitigations deleted together with the risk (same timestamp) return to the roll-ups
    and are live again."""
    went_with_it = (
        Mitigation.tenant_id == context.tenant_id,
        Mitigation.risk_id == risk_id,
        Mitigation.deleted_at == deleted_at,
    )
    day = rollups.utc_day(session, Mitigation.created_at).label("day")
    groups = await session.execute(
        select(day, Mitigation.status, func.count())
        .where(*went_with_it)
        .group_by(day, Mitigation.status)
    )
    await rollups.apply_mitigation_changes(
        session,
        [
            rollups.MitigationChange(
                tenant_id=context.tenant_id,
                created=datetime.combine(rollups.as_date(d), datetime.min.time()),
                before=None,
                after=status,
                count=int(n),
            )
            for d, status, n in groups
        ],
    )
    await session.execute(
        update(Mitigation)
        .where(*went_with_it)
        .values(deleted_at=None, updated_at=utcnow())
        .execution_options(synchronize_session=False)
    )
