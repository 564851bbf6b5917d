"""Mitigations of risks, their sub-actions (progress follows them) and the recommended order."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Select, case, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from openrisk.audit.service import diff, record
from openrisk.core.context import RequestContext
from openrisk.core.db.base import utcnow
from openrisk.core.errors import NotFound, ValidationFailed
from openrisk.core.events import DomainEvent
from openrisk.core.ids import new_id
from openrisk.core.uow import UnitOfWork, commit_with
from openrisk.methodology import levels
from openrisk.methodology.store import scoring_for
from openrisk.mitigations.models import Mitigation, SubAction
from openrisk.mitigations.schemas import (
    NOT_NULLABLE,
    OPEN_STATUSES,
    MitigationCreate,
    MitigationOut,
    MitigationStatus,
    MitigationUpdate,
    SubActionCreate,
    SubActionOut,
    SubActionUpdate,
)
from openrisk.risks import commands, reads, rollups
from openrisk.risks.common import ensure_member, to_json
from openrisk.risks.models import Risk
from openrisk.risks.scoring import mitigation_priority

_FIELDS = (
    "title",
    "description",
    "assignee_id",
    "status",
    "progress",
    "due_date",
    "cost",
    "effort_days",
    "frequency_reduction",
    "loss_reduction",
    "annual_cost",
    "impact_reduction",
    "probability_reduction",
)


def today() -> date:
    return datetime.now(UTC).date()


@dataclass
class MitigationView:
    mitigation: Mitigation
    risk_score: Decimal

    def out(self) -> MitigationOut:
        m = self.mitigation
        return MitigationOut(
            id=m.id,
            risk_id=m.risk_id,
            title=m.title,
            description=m.description,
            assignee_id=m.assignee_id,
            status=MitigationStatus(m.status),
            progress=m.progress,
            due_date=m.due_date,
            cost=m.cost,
            effort_days=m.effort_days,
            frequency_reduction=m.frequency_reduction,
            loss_reduction=m.loss_reduction,
            annual_cost=m.annual_cost,
            impact_reduction=m.impact_reduction,
            probability_reduction=m.probability_reduction,
            overdue=bool(m.due_date and m.due_date < today() and m.status in OPEN_STATUSES),
            risk_score=float(self.risk_score),
            priority=float(mitigation_priority(self.risk_score, m.cost, m.effort_days)),
            sub_actions=[SubActionOut.model_validate(s) for s in m.sub_actions],
            created_by=m.created_by,
            created_at=m.created_at,
            updated_at=m.updated_at,
        )


def _snapshot(m: Mitigation) -> dict[str, Any]:
    return to_json({name: getattr(m, name) for name in _FIELDS})  # type: ignore[no-any-return]


def _event(kind: str, context: RequestContext, view: MitigationView) -> DomainEvent:
    return DomainEvent(
        type=f"mitigation.{kind}",
        tenant_id=context.tenant_id,
        resource_id=view.mitigation.id,
        data=view.out().model_dump(mode="json"),
        actor_id=context.user_id,
    )


async def _levels_follow(
    session: AsyncSession,
    context: RequestContext,
    mitigation: Mitigation,
    *,
    became_done: bool,
    reductions_moved: bool = False,
    reopened: bool = False,
) -> list[DomainEvent]:
    """A done mitigation's reductions move into the risk's current levels; the residual level
    of the risk follows its open mitigations. Returns the events of what moved (none for a
    mitigation without reductions)."""
    if not (reductions_moved or mitigation.impact_reduction or mitigation.probability_reduction):
        return []
    events = []
    if became_done or reopened:
        event = await commands.move_reduction_into_current(
            session,
            context=context,
            risk_id=mitigation.risk_id,
            mitigation=mitigation,
            reopened=reopened,
        )
        if event is not None:
            events.append(event)
    scoring = await scoring_for(session, tenant_id=context.tenant_id)
    await levels.refresh(
        session, tenant_id=context.tenant_id, model=scoring, risk_ids=[mitigation.risk_id]
    )
    events.append(
        DomainEvent(
            type="risk_levels.changed",
            tenant_id=context.tenant_id,
            resource_id=mitigation.risk_id,
            data={"risk_id": str(mitigation.risk_id), "mitigation_id": str(mitigation.id)},
            actor_id=context.user_id,
        )
    )
    return events


def _live(tenant_id: uuid.UUID) -> Select[Mitigation, Decimal]:
    return (
        select(Mitigation, Risk.score)
        .join(Risk, Risk.id == Mitigation.risk_id)
        .where(
            Mitigation.tenant_id == tenant_id,
            Mitigation.deleted_at.is_(None),
            Risk.tenant_id == tenant_id,
            Risk.deleted_at.is_(None),
        )
        .options(selectinload(Mitigation.sub_actions))
    )


def recompute_progress(mitigation: Mitigation) -> None:
    """Progress is the share of completed sub-actions (when there are any)."""
    subs = mitigation.sub_actions
    if subs:
        mitigation.progress = round(100 * sum(1 for s in subs if s.completed) / len(subs))


async def get_view(
    session: AsyncSession, *, tenant_id: uuid.UUID, mitigation_id: uuid.UUID
) -> MitigationView:
    row = (await session.execute(_live(tenant_id).where(Mitigation.id == mitigation_id))).first()
    if row is None:
        raise NotFound("Mitigation not found.")
    return MitigationView(row[0], row[1])


async def list_for_risk(
    session: AsyncSession, *, tenant_id: uuid.UUID, risk_id: uuid.UUID, offset: int, limit: int
) -> tuple[list[MitigationView], int]:
    await reads.get_risk(session, tenant_id=tenant_id, risk_id=risk_id)
    where = (
        Mitigation.tenant_id == tenant_id,
        Mitigation.risk_id == risk_id,
        Mitigation.deleted_at.is_(None),
    )
    total = await session.scalar(select(func.count()).select_from(Mitigation).where(*where))
    rows = await session.execute(
        _live(tenant_id)
        .where(Mitigation.risk_id == risk_id)
        .order_by(Mitigation.created_at, Mitigation.id)
        .offset(offset)
        .limit(limit)
    )
    return [MitigationView(m, score) for m, score in rows], int(total or 0)


def _priority_expression() -> Any:
    effort = Mitigation.cost + Mitigation.effort_days
    divisor = case((effort > 2, effort), else_=2)
    return func.round(Risk.score / divisor, 2)


async def recommended(
    session: AsyncSession, *, tenant_id: uuid.UUID, offset: int, limit: int
) -> tuple[list[MitigationView], int]:
    """Open mitigations of live risks, highest priority first (the priority formula, in SQL)."""
    base = _live(tenant_id).where(Mitigation.status.in_(OPEN_STATUSES))
    total = await session.scalar(
        select(func.count())
        .select_from(Mitigation)
        .join(Risk, Risk.id == Mitigation.risk_id)
        .where(
            Mitigation.tenant_id == tenant_id,
            Mitigation.deleted_at.is_(None),
            Mitigation.status.in_(OPEN_STATUSES),
            Risk.deleted_at.is_(None),
        )
    )
    rows = await session.execute(
        base.order_by(_priority_expression().desc(), Risk.score.desc(), Mitigation.id)
        .offset(offset)
        .limit(limit)
    )
    return [MitigationView(m, score) for m, score in rows], int(total or 0)


async def _check_assignee(
    session: AsyncSession,
    context: RequestContext,
    assignee_id: uuid.UUID | None,
    current: uuid.UUID | None,
) -> None:
    if assignee_id is None or assignee_id == current:
        return
    if assignee_id != context.user_id:
        context.require("mitigation:assign")
    await ensure_member(
        session, tenant_id=context.tenant_id, user_id=assignee_id, field="assignee_id"
    )


async def create_mitigation(
    *,
    uow: UnitOfWork,
    context: RequestContext,
    risk_id: uuid.UUID,
    data: MitigationCreate,
) -> MitigationView:
    session = uow.session
    risk = await reads.get_risk(session, tenant_id=context.tenant_id, risk_id=risk_id)
    await _check_assignee(session, context, data.assignee_id, None)
    if data.progress is not None and data.sub_actions:
        raise ValidationFailed.field("progress", "is computed from the sub-actions")
    mitigation = Mitigation(
        id=new_id(),
        tenant_id=context.tenant_id,
        risk_id=risk.id,
        title=data.title,
        description=data.description,
        assignee_id=data.assignee_id,
        status=data.status.value,
        progress=data.progress if data.progress is not None else 0,
        due_date=data.due_date,
        cost=data.cost,
        effort_days=data.effort_days,
        frequency_reduction=data.frequency_reduction,
        loss_reduction=data.loss_reduction,
        annual_cost=data.annual_cost,
        impact_reduction=data.impact_reduction,
        probability_reduction=data.probability_reduction,
        created_by=context.user_id,
        sub_actions=[
            SubAction(tenant_id=context.tenant_id, title=s.title, completed=s.completed, position=i)
            for i, s in enumerate(data.sub_actions)
        ],
    )
    if data.status is MitigationStatus.DONE and not data.sub_actions:
        mitigation.progress = 100
    recompute_progress(mitigation)
    mitigation.created_at = mitigation.updated_at = utcnow()
    session.add(mitigation)
    await session.flush()
    await rollups.apply_mitigation_changes(
        session,
        [
            rollups.MitigationChange(
                context.tenant_id, mitigation.created_at, None, mitigation.status
            )
        ],
    )
    record(
        session,
        context=context,
        action="mitigation.create",
        resource_type="mitigation",
        resource_id=mitigation.id,
        changes=diff({}, _snapshot(mitigation)),
    )
    follow = await _levels_follow(
        session, context, mitigation, became_done=mitigation.status == MitigationStatus.DONE
    )
    view = MitigationView(mitigation, risk.score)
    await commit_with(uow, [_event("created", context, view), *follow])
    return view


async def update_mitigation(
    *,
    uow: UnitOfWork,
    context: RequestContext,
    mitigation_id: uuid.UUID,
    data: MitigationUpdate,
) -> MitigationView:
    session = uow.session
    view = await get_view(session, tenant_id=context.tenant_id, mitigation_id=mitigation_id)
    m = view.mitigation
    context.require_on("mitigation:update", m.assignee_id, m.created_by)
    changes = data.model_dump(exclude_unset=True)
    for name in NOT_NULLABLE & set(changes):
        if changes[name] is None:
            raise ValidationFailed.field(name, "must not be null")
    if "assignee_id" in changes:
        if changes["assignee_id"] is None:
            if m.assignee_id is not None and m.assignee_id != context.user_id:
                context.require("mitigation:assign")
        else:
            await _check_assignee(session, context, changes["assignee_id"], m.assignee_id)
    if "progress" in changes and m.sub_actions:
        raise ValidationFailed.field("progress", "is computed from the sub-actions")
    before = _snapshot(m)
    for name, value in changes.items():
        setattr(m, name, value.value if isinstance(value, MitigationStatus) else value)
    if changes.get("status") == MitigationStatus.DONE and not m.sub_actions:
        m.progress = 100
    changed = diff(before, _snapshot(m))
    if not changed:
        return view
    m.updated_at = utcnow()
    await session.flush()
    if "status" in changed:
        await rollups.apply_mitigation_changes(
            session,
            [
                rollups.MitigationChange(
                    context.tenant_id, m.created_at, changed["status"]["before"], m.status
                )
            ],
        )
    record(
        session,
        context=context,
        action="mitigation.update",
        resource_type="mitigation",
        resource_id=m.id,
        changes=changed,
    )
    follow: list[DomainEvent] = []
    if {"status", "impact_reduction", "probability_reduction"} & set(changed):
        became_done = "status" in changed and m.status == MitigationStatus.DONE
        reopened = (
            "status" in changed
            and changed["status"]["before"] == MitigationStatus.DONE
            and m.status != MitigationStatus.DONE
        )
        follow = await _levels_follow(
            session,
            context,
            m,
            became_done=became_done,
            reductions_moved=bool({"impact_reduction", "probability_reduction"} & set(changed)),
            reopened=reopened,
        )
    await commit_with(uow, [_event("updated", context, view), *follow])
    return view


async def delete_mitigation(
    *,
    uow: UnitOfWork,
    context: RequestContext,
    mitigation_id: uuid.UUID,
) -> None:
    session = uow.session
    view = await get_view(session, tenant_id=context.tenant_id, mitigation_id=mitigation_id)
    m = view.mitigation
    m.deleted_at = m.updated_at = utcnow()
    await session.flush()
    await rollups.apply_mitigation_changes(
        session, [rollups.MitigationChange(context.tenant_id, m.created_at, m.status, None)]
    )
    record(
        session,
        context=context,
        action="mitigation.delete",
        resource_type="mitigation",
        resource_id=m.id,
        changes=diff(_snapshot(m), {}),
    )
    event = DomainEvent(
        type="mitigation.deleted",
        tenant_id=context.tenant_id,
        resource_id=m.id,
        data={"id": str(m.id), "risk_id": str(m.risk_id), "title": m.title},
        actor_id=context.user_id,
    )
    follow = await _levels_follow(session, context, m, became_done=False)
    await commit_with(uow, [event, *follow])


async def _editable(
    session: AsyncSession, context: RequestContext, mitigation_id: uuid.UUID
) -> MitigationView:
    view = await get_view(session, tenant_id=context.tenant_id, mitigation_id=mitigation_id)
    m = view.mitigation
    context.require_on("mitigation:update", m.assignee_id, m.created_by)
    return view


async def _sub_action_written(
    *,
    uow: UnitOfWork,
    context: RequestContext,
    view: MitigationView,
    action: str,
    sub_id: uuid.UUID,
    changes: dict[str, Any],
) -> MitigationView:
    session = uow.session
    m = view.mitigation
    before = m.progress
    recompute_progress(m)
    m.updated_at = utcnow()
    started = m.status == MitigationStatus.PLANNED and m.progress > 0
    if started:  # work has begun: "Planned" at 67 % would mislead
        m.status = MitigationStatus.IN_PROGRESS.value
    await session.flush()
    if before != m.progress:
        changes = {**changes, "progress": {"before": before, "after": m.progress}}
    if started:
        changes = {
            **changes,
            "status": {"before": MitigationStatus.PLANNED.value, "after": m.status},
        }
        await rollups.apply_mitigation_changes(
            session,
            [
                rollups.MitigationChange(
                    context.tenant_id, m.created_at, MitigationStatus.PLANNED.value, m.status
                )
            ],
        )
    record(
        session,
        context=context,
        action=f"mitigation.subaction.{action}",
        resource_type="mitigation",
        resource_id=m.id,
        changes={"sub_action_id": {"before": None, "after": str(sub_id)}, **changes},
    )
    await commit_with(uow, [_event("updated", context, view)])
    return view


async def add_sub_action(
    *,
    uow: UnitOfWork,
    context: RequestContext,
    mitigation_id: uuid.UUID,
    data: SubActionCreate,
) -> MitigationView:
    session = uow.session
    view = await _editable(session, context, mitigation_id)
    m = view.mitigation
    if len(m.sub_actions) >= 100:
        raise ValidationFailed.field("title", "a mitigation has at most 100 sub-actions")
    position = max((s.position for s in m.sub_actions), default=-1) + 1
    sub = SubAction(
        id=new_id(),
        tenant_id=context.tenant_id,
        mitigation_id=m.id,
        title=data.title,
        completed=data.completed,
        position=position,
    )
    m.sub_actions.append(sub)
    return await _sub_action_written(
        uow=uow,
        context=context,
        view=view,
        action="create",
        sub_id=sub.id,
        changes={"title": {"before": None, "after": sub.title}},
    )


def _find_sub(view: MitigationView, sub_id: uuid.UUID) -> SubAction:
    for sub in view.mitigation.sub_actions:
        if sub.id == sub_id:
            return sub
    raise NotFound("Sub-action not found.")


async def update_sub_action(
    *,
    uow: UnitOfWork,
    context: RequestContext,
    mitigation_id: uuid.UUID,
    sub_id: uuid.UUID,
    data: SubActionUpdate,
) -> MitigationView:
    session = uow.session
    view = await _editable(session, context, mitigation_id)
    sub = _find_sub(view, sub_id)
    changes = data.model_dump(exclude_unset=True)
    for name in changes:
        if changes[name] is None:
            raise ValidationFailed.field(name, "must not be null")
    before = {"title": sub.title, "completed": sub.completed}
    for name, value in changes.items():
        setattr(sub, name, value)
    return await _sub_action_written(
        uow=uow,
        context=context,
        view=view,
        action="update",
        sub_id=sub.id,
        changes=diff(before, {"title": sub.title, "completed": sub.completed}),
    )


async def delete_sub_action(
    *,
    uow: UnitOfWork,
    context: RequestContext,
    mitigation_id: uuid.UUID,
    sub_id: uuid.UUID,
) -> MitigationView:
    session = uow.session
    view = await _editable(session, context, mitigation_id)
    sub = _find_sub(view, sub_id)
    view.mitigation.sub_actions.remove(sub)
    return await _sub_action_written(
        uow=uow,
        context=context,
        view=view,
        action="delete",
        sub_id=sub.id,
        changes={"title": {"before": sub.title, "after": None}},
    )
