"""Accepting a risk: a request with a justification and an expiry, approved by someone else.

The owner side (``risk:update`` on the risk) submits; an approver (``risk:accept``) approves or
rejects, never the requester (segregation of duties), and above the tenant's appetite only
with a role level of at least the model's ``acceptance.approver_min_level``. Approval sets the
risk ACCEPTED (treatment ACCEPT) until ``expires_on`` (at most ``acceptance.max_days`` ahead);
revoking or expiry sets it ACTIVE again. Each step writes a risk history row and an audit row.
Dates are "today" of the caller's clock, passed in (tests inject one).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from openrisk.audit.service import diff, record, record_raw
from openrisk.core.context import RequestContext, RequestOrigin
from openrisk.core.db.base import utcnow
from openrisk.core.errors import Conflict, Forbidden, NotFound, ValidationFailed
from openrisk.core.events import DomainEvent
from openrisk.core.ids import new_id
from openrisk.core.uow import UnitOfWork, commit_with
from openrisk.methodology import store
from openrisk.methodology.models import RiskAcceptance
from openrisk.risks import history
from openrisk.risks.commands import risk_event, snapshot
from openrisk.risks.enums import HistoryAction, RiskStatus, Treatment
from openrisk.risks.models import Risk
from openrisk.risks.reads import RiskRecord, asset_ids_for, get_risk

SUBMITTED, APPROVED, REJECTED, REVOKED, EXPIRED = (
    "submitted",
    "approved",
    "rejected",
    "revoked",
    "expired",
)
STATUSES = (SUBMITTED, APPROVED, REJECTED, REVOKED, EXPIRED)


def out(acceptance: RiskAcceptance) -> dict[str, Any]:
    return {
        "id": acceptance.id,
        "risk_id": acceptance.risk_id,
        "status": acceptance.status,
        "justification": acceptance.justification,
        "compensating_controls": acceptance.compensating_controls,
        "expires_on": acceptance.expires_on,
        "requested_by": acceptance.requested_by,
        "decided_by": acceptance.decided_by,
        "decided_at": acceptance.decided_at,
        "decision_comment": acceptance.decision_comment,
        "ended_at": acceptance.ended_at,
        "created_at": acceptance.created_at,
        "updated_at": acceptance.updated_at,
    }


def step_event(acceptance: RiskAcceptance, step: str, actor: uuid.UUID | None) -> DomainEvent:
    """``risk_acceptance.<step>``: makes the answers counting acceptances stale."""
    return DomainEvent(
        type=f"risk_acceptance.{step}",
        tenant_id=acceptance.tenant_id,
        resource_id=acceptance.id,
        data={
            "id": str(acceptance.id),
            "risk_id": str(acceptance.risk_id),
            "status": acceptance.status,
        },
        actor_id=actor,
    )


async def _get(
    session: AsyncSession, *, tenant_id: uuid.UUID, acceptance_id: uuid.UUID
) -> RiskAcceptance:
    found = await session.scalar(
        select(RiskAcceptance)
        .join(Risk, Risk.id == RiskAcceptance.risk_id)
        .where(
            RiskAcceptance.tenant_id == tenant_id,
            RiskAcceptance.id == acceptance_id,
            Risk.deleted_at.is_(None),
        )
    )
    if found is None:
        raise NotFound("Acceptance not found.")
    return found


async def get_acceptance(
    session: AsyncSession, *, context: RequestContext, acceptance_id: uuid.UUID
) -> RiskAcceptance:
    return await _get(session, tenant_id=context.tenant_id, acceptance_id=acceptance_id)


async def list_acceptances(
    session: AsyncSession,
    *,
    context: RequestContext,
    status: str | None,
    risk_id: uuid.UUID | None,
    offset: int,
    limit: int,
) -> tuple[list[RiskAcceptance], int]:
    """Oldest first: the approver's queue reads in the order requests came."""
    where = [RiskAcceptance.tenant_id == context.tenant_id, Risk.deleted_at.is_(None)]
    if status is not None:
        where.append(RiskAcceptance.status == status)
    if risk_id is not None:
        where.append(RiskAcceptance.risk_id == risk_id)
    base = select(RiskAcceptance).join(Risk, Risk.id == RiskAcceptance.risk_id).where(*where)
    total = await session.scalar(select(func.count()).select_from(base.subquery()))
    rows = await session.scalars(
        base.order_by(RiskAcceptance.created_at, RiskAcceptance.id).offset(offset).limit(limit)
    )
    return list(rows), int(total or 0)


def _check_expiry(expires_on: date, *, today: date, max_days: int) -> None:
    if expires_on <= today:
        raise ValidationFailed.field("expires_on", "must be after today")
    if expires_on > today + timedelta(days=max_days):
        raise ValidationFailed.field(
            "expires_on",
            f"must be at most {max_days} days ahead (the tenant's risk model), "
            f"so on or before {(today + timedelta(days=max_days)).isoformat()}",
        )


async def _risk_step(
    session: AsyncSession,
    *,
    context: RequestContext | None,
    risk: Risk,
    acceptance: RiskAcceptance,
    before_status: str,
    step: str,
    risk_changes: dict[str, Any],
) -> DomainEvent | None:
    """Apply ``risk_changes`` to the risk and write its history row and audit rows."""
    asset_ids = (await asset_ids_for(session, [risk.id])).get(risk.id, [])
    before = snapshot(risk, asset_ids)
    before_expiry = risk.acceptance_expires_on
    for name, value in risk_changes.items():
        setattr(risk, name, value)
    now = utcnow()
    changes = {
        **diff(before, snapshot(risk, asset_ids)),
        "acceptance": {"before": before_status, "after": acceptance.status},
        "acceptance_id": str(acceptance.id),
    }
    if before_expiry != risk.acceptance_expires_on:
        changes["acceptance_expires_on"] = {
            "before": before_expiry.isoformat() if before_expiry else None,
            "after": risk.acceptance_expires_on.isoformat() if risk.acceptance_expires_on else None,
        }
    if "status" in risk_changes or "acceptance_expires_on" in risk_changes:
        risk.updated_at = now
    await session.flush()
    actor = context.user_id if context else None
    await history.append(
        session,
        [
            history.HistoryEntry.of(
                risk,
                tenant_id=risk.tenant_id,
                action=(
                    HistoryAction.STATUS_CHANGE if "status" in changes else HistoryAction.UPDATE
                ),
                prev_score=Decimal(str(before["score"])),
                prev_status=before["status"],
                prev_impact=before["impact"],
                prev_probability=before["probability"],
                prev_severity=before["severity"],
                changed_by=actor,
                changes=changes,
                created_at=now,
            )
        ],
    )
    audit = {**changes, "risk_id": str(risk.id)}
    if context is not None:
        record(
            session,
            context=context,
            action=f"risk_acceptance.{step}",
            resource_type="risk_acceptance",
            resource_id=acceptance.id,
            changes=audit,
        )
    else:
        record_raw(
            session,
            tenant_id=risk.tenant_id,
            actor_user_id=None,
            origin=RequestOrigin(ip=None, user_agent="scheduler"),
            action=f"risk_acceptance.{step}",
            resource_type="risk_acceptance",
            resource_id=acceptance.id,
            changes=audit,
        )
    if context is None or "status" not in changes:
        return None
    return risk_event("updated", context, RiskRecord(risk, asset_ids))


async def submit(
    *,
    uow: UnitOfWork,
    context: RequestContext,
    risk_id: uuid.UUID,
    justification: str,
    expires_on: date,
    compensating_controls: str,
    today: date,
) -> RiskAcceptance:
    session = uow.session
    risk = await get_risk(session, tenant_id=context.tenant_id, risk_id=risk_id)
    context.require_on("risk:update", risk.owner_id)
    model = await store.load(session, tenant_id=context.tenant_id)
    rules = model.definition.get("acceptance", store.DEFAULT_ACCEPTANCE)
    _check_expiry(expires_on, today=today, max_days=int(rules["max_days"]))
    pending = await session.scalar(
        select(RiskAcceptance.id).where(
            RiskAcceptance.tenant_id == context.tenant_id,
            RiskAcceptance.risk_id == risk.id,
            RiskAcceptance.status == SUBMITTED,
        )
    )
    if pending is not None:
        raise Conflict("This risk already has an acceptance waiting for a decision.")
    now = utcnow()
    acceptance = RiskAcceptance(
        id=new_id(),
        tenant_id=context.tenant_id,
        risk_id=risk.id,
        status=SUBMITTED,
        justification=justification,
        compensating_controls=compensating_controls,
        expires_on=expires_on,
        requested_by=context.user_id,
        decision_comment="",
        created_at=now,
        updated_at=now,
    )
    session.add(acceptance)
    await session.flush()
    await _risk_step(
        session,
        context=context,
        risk=risk,
        acceptance=acceptance,
        before_status="",
        step="submit",
        risk_changes={},
    )
    await commit_with(uow, [step_event(acceptance, "submitted", context.user_id)])
    return acceptance


async def _decidable(
    session: AsyncSession, context: RequestContext, acceptance_id: uuid.UUID
) -> tuple[RiskAcceptance, Risk]:
    acceptance = await _get(session, tenant_id=context.tenant_id, acceptance_id=acceptance_id)
    context.require("risk:accept")
    if acceptance.status != SUBMITTED:
        raise Conflict(f"This acceptance is {acceptance.status}: only a submitted one is decided.")
    if acceptance.requested_by == context.user_id:
        raise Forbidden(
            "Segregation of duties: the person who requested an acceptance may not decide it."
        )
    risk = await get_risk(session, tenant_id=context.tenant_id, risk_id=acceptance.risk_id)
    return acceptance, risk


async def approve(
    *,
    uow: UnitOfWork,
    context: RequestContext,
    acceptance_id: uuid.UUID,
    comment: str,
    today: date,
) -> RiskAcceptance:
    session = uow.session
    acceptance, risk = await _decidable(session, context, acceptance_id)
    model = await store.load(session, tenant_id=context.tenant_id)
    rules = model.definition.get("acceptance", store.DEFAULT_ACCEPTANCE)
    minimum = int(rules["approver_min_level"])
    if not risk.within_appetite and context.role_level < minimum:
        raise Forbidden(
            f"This risk is above the tenant's appetite: its acceptance needs an approver whose "
            f"role level is at least {minimum} (yours is {context.role_level})."
        )
    _check_expiry(acceptance.expires_on, today=today, max_days=int(rules["max_days"]))
    before_status = acceptance.status
    acceptance.status = APPROVED
    acceptance.decided_by = context.user_id
    acceptance.decided_at = acceptance.updated_at = utcnow()
    acceptance.decision_comment = comment
    event = await _risk_step(
        session,
        context=context,
        risk=risk,
        acceptance=acceptance,
        before_status=before_status,
        step="approve",
        risk_changes={
            "status": RiskStatus.ACCEPTED.value,
            "treatment": Treatment.ACCEPT.value,
            "acceptance_expires_on": acceptance.expires_on,
        },
    )
    steps = [step_event(acceptance, "approved", context.user_id)]
    await commit_with(uow, [event, *steps] if event else steps)
    return acceptance


async def reject(
    *,
    uow: UnitOfWork,
    context: RequestContext,
    acceptance_id: uuid.UUID,
    comment: str,
) -> RiskAcceptance:
    session = uow.session
    acceptance, risk = await _decidable(session, context, acceptance_id)
    before_status = acceptance.status
    acceptance.status = REJECTED
    acceptance.decided_by = context.user_id
    acceptance.decided_at = acceptance.updated_at = utcnow()
    acceptance.decision_comment = comment
    await _risk_step(
        session,
        context=context,
        risk=risk,
        acceptance=acceptance,
        before_status=before_status,
        step="reject",
        risk_changes={},
    )
    await commit_with(uow, [step_event(acceptance, "rejected", context.user_id)])
    return acceptance


def _ending_changes(risk: Risk) -> dict[str, Any]:
    changes: dict[str, Any] = {"acceptance_expires_on": None}
    if risk.status == RiskStatus.ACCEPTED:
        changes["status"] = RiskStatus.ACTIVE.value
    return changes


async def revoke(
    *,
    uow: UnitOfWork,
    context: RequestContext,
    acceptance_id: uuid.UUID,
    comment: str,
) -> RiskAcceptance:
    """Withdraw a submitted request or end an approved acceptance (the risk is ACTIVE again)."""
    session = uow.session
    acceptance = await _get(session, tenant_id=context.tenant_id, acceptance_id=acceptance_id)
    risk = await get_risk(session, tenant_id=context.tenant_id, risk_id=acceptance.risk_id)
    if acceptance.requested_by != context.user_id or acceptance.status != SUBMITTED:
        context.require("risk:accept")
    if acceptance.status not in (SUBMITTED, APPROVED):
        raise Conflict(f"This acceptance is {acceptance.status}: there is nothing to revoke.")
    before_status = acceptance.status
    acceptance.status = REVOKED
    acceptance.ended_at = acceptance.updated_at = utcnow()
    if comment:
        acceptance.decision_comment = comment
    event = await _risk_step(
        session,
        context=context,
        risk=risk,
        acceptance=acceptance,
        before_status=before_status,
        step="revoke",
        risk_changes=_ending_changes(risk) if before_status == APPROVED else {},
    )
    steps = [step_event(acceptance, "revoked", context.user_id)]
    await commit_with(uow, [event, *steps] if event else steps)
    return acceptance


async def expire_due(
    *,
    uow: UnitOfWork,
    today: date,
    tenant_ids: Sequence[uuid.UUID] | None = None,
) -> list[uuid.UUID]:
    """End every approved acceptance whose ``expires_on`` is before ``today``: the acceptance
    is ``expired`` and its risk ACTIVE again, with history and audit rows. For a scheduled
    job; commits; returns the expired acceptances' ids."""
    session = uow.session
    where = [RiskAcceptance.status == APPROVED, RiskAcceptance.expires_on < today]
    if tenant_ids is not None:
        where.append(RiskAcceptance.tenant_id.in_(list(tenant_ids)))
    due = list(
        await session.scalars(
            select(RiskAcceptance).where(*where).order_by(RiskAcceptance.expires_on)
        )
    )
    expired = []
    for acceptance in due:
        risk = await session.scalar(
            select(Risk).where(Risk.id == acceptance.risk_id, Risk.deleted_at.is_(None))
        )
        acceptance.status = EXPIRED
        acceptance.ended_at = acceptance.updated_at = utcnow()
        if risk is not None:
            await _risk_step(
                session,
                context=None,
                risk=risk,
                acceptance=acceptance,
                before_status=APPROVED,
                step="expire",
                risk_changes=_ending_changes(risk),
            )
        expired.append(acceptance.id)
    await commit_with(
        uow,
        [
            DomainEvent(
                type="risk_acceptance.expired",
                tenant_id=a.tenant_id,
                resource_id=a.id,
                data={"id": str(a.id), "risk_id": str(a.risk_id)},
                actor_id=None,
            )
            for a in due
        ],
    )
    return expired
