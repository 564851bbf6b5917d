"""Bulk actions on the register: update, assign or delete many risks, checked row by row."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from openrisk.audit.service import diff, record
from openrisk.core.context import RequestContext
from openrisk.core.db.base import utcnow
from openrisk.core.errors import Conflict, Forbidden, ValidationFailed
from openrisk.core.events import DomainEvent
from openrisk.core.uow import UnitOfWork
from openrisk.methodology import ending, levels
from openrisk.methodology.store import scoring_for
from openrisk.risks import history, labels, queries
from openrisk.risks.commands import (
    ACCEPTANCE_WORKFLOW,
    change_entry,
    check_levels,
    deleted_event,
    flush_or_412,
    risk_event,
    snapshot,
    soft_delete,
)
from openrisk.risks.common import ensure_member
from openrisk.risks.enums import RiskStatus
from openrisk.risks.models import Risk
from openrisk.risks.reads import RiskRecord, asset_ids_for, linked_criticalities
from openrisk.risks.schemas import BulkAction, BulkItem, BulkRequest, BulkResult
from openrisk.risks.scoring import ScoringModel

_PERMISSION = {
    BulkAction.update: "risk:update",
    BulkAction.delete: "risk:delete",
    BulkAction.assign: "risk:assign",
}


@dataclass
class _Done:
    """A row the action applied to, with its values before and after."""

    risk: Risk
    before: dict[str, Any]
    after: dict[str, Any]


@dataclass
class _Batch:
    """The risks a bulk request names, loaded once, and what the action needs about them."""

    found: dict[uuid.UUID, Risk]
    links: Mapping[uuid.UUID, list[uuid.UUID]]
    criticalities: Mapping[uuid.UUID, list[str]]
    scoring: ScoringModel | None = None
    reductions: Mapping[uuid.UUID, tuple[int, int]] | None = None


async def bulk(*, uow: UnitOfWork, context: RequestContext, request: BulkRequest) -> BulkResult:
    """Apply one action to many risks; each row is checked and reported on its own."""
    session = uow.session
    permission = _PERMISSION[request.action]
    context.require(permission)
    changes = _requested_changes(context, request)
    if request.action is BulkAction.assign:
        assert request.owner_id is not None
        await ensure_member(
            session, tenant_id=context.tenant_id, user_id=request.owner_id, field="owner_id"
        )
    batch = await _load(session, context, request.ids, rescoring=_rescores(changes))
    if batch.scoring is not None:
        try:
            check_levels(batch.scoring, changes.get("impact") or 1, changes.get("probability") or 1)
        except ValidationFailed as bad_level:
            field = (bad_level.errors or [{}])[0].get("field", "changes")
            message = (bad_level.errors or [{}])[0].get("message", bad_level.detail)
            raise ValidationFailed.field(f"changes.{field}", message) from None
    results: list[BulkItem] = []
    done: list[_Done] = []
    seen: set[uuid.UUID] = set()
    for index, risk_id in enumerate(request.ids):
        problem = _row_problem(context, permission, request, batch, seen, index, risk_id)
        seen.add(risk_id)
        if problem is not None:
            results.append(problem)
            continue
        done.append(_apply(request, changes, batch, batch.found[risk_id]))
        results.append(BulkItem(index=index, id=risk_id, status="ok", code=200))
    if request.action is BulkAction.delete:
        await soft_delete(session, context=context, risks=[d.risk for d in done])
        to_publish = [deleted_event(context, d.risk) for d in done]
    else:
        to_publish = await _write_changes(session, context, request.action, batch, done)
    uow.emit_all(to_publish)
    await uow.commit()
    ok = sum(1 for r in results if r.status == "ok")
    return BulkResult(
        action=request.action, succeeded=ok, failed=len(results) - ok, results=results
    )


def _requested_changes(context: RequestContext, request: BulkRequest) -> dict[str, Any]:
    """The validated changes of an update (empty for other actions); 422 naming the field."""
    if request.action is BulkAction.assign and request.owner_id is None:
        raise ValidationFailed.field("owner_id", "is required for action=assign")
    if request.action is not BulkAction.update:
        return {}
    if request.changes is None:
        raise ValidationFailed.field("changes", "is required for action=update")
    changes = request.changes.model_dump(exclude_unset=True)
    for name in ("impact", "probability", "status", "treatment"):
        if name in changes and changes[name] is None:
            raise ValidationFailed.field(f"changes.{name}", "must not be null")
    if not changes:
        raise ValidationFailed.field("changes", "must change at least one field")
    if changes.get("status") == RiskStatus.ACCEPTED:
        raise Conflict(ACCEPTANCE_WORKFLOW)
    return changes


def _rescores(changes: Mapping[str, Any]) -> bool:
    return any(k in changes for k in ("impact", "probability", "review_date"))


async def _load(
    session: AsyncSession, context: RequestContext, ids: Sequence[uuid.UUID], *, rescoring: bool
) -> _Batch:
    found = {
        r.id: r
        for r in await session.scalars(
            select(Risk).where(Risk.id.in_(ids), *queries.live(context.tenant_id))
        )
    }
    links = await asset_ids_for(session, list(found))
    criticalities = await linked_criticalities(session, list(found)) if rescoring else {}
    scoring = await scoring_for(session, tenant_id=context.tenant_id) if rescoring else None
    reductions = (
        await levels.open_reductions(session, tenant_id=context.tenant_id, risk_ids=list(found))
        if rescoring
        else None
    )
    return _Batch(
        found=found,
        links=links,
        criticalities=criticalities,
        scoring=scoring,
        reductions=reductions,
    )


def _row_problem(
    context: RequestContext,
    permission: str,
    request: BulkRequest,
    batch: _Batch,
    seen: set[uuid.UUID],
    index: int,
    risk_id: uuid.UUID,
) -> BulkItem | None:
    """Why the action cannot apply to this row (duplicate, unknown, not permitted), or None."""
    if risk_id in seen:
        return _error(index, risk_id, 422, "duplicate id in this request")
    risk = batch.found.get(risk_id)
    if risk is None:
        return _error(index, risk_id, 404, "Risk not found.")
    try:
        context.require_on(permission, risk.owner_id)
        if request.action is BulkAction.assign:
            context.require_on("risk:update", risk.owner_id)
    except Forbidden as denied:
        return _error(index, risk_id, 403, denied.detail)
    return None


def _error(index: int, risk_id: uuid.UUID, code: int, message: str) -> BulkItem:
    return BulkItem(index=index, id=risk_id, status="error", code=code, error=message)


def _apply(request: BulkRequest, changes: Mapping[str, Any], batch: _Batch, risk: Risk) -> _Done:
    asset_ids = batch.links.get(risk.id, [])
    before = snapshot(risk, asset_ids)
    if request.action is BulkAction.update:
        _apply_changes(risk, changes, batch.criticalities.get(risk.id, []), batch)
    elif request.action is BulkAction.assign:
        risk.owner_id = request.owner_id
    return _Done(risk=risk, before=before, after=snapshot(risk, asset_ids))


def _apply_changes(risk: Risk, changes: Mapping[str, Any], crits: list[str], batch: _Batch) -> None:
    for name in ("impact", "probability", "status", "treatment", "review_date"):
        if name in changes:
            value = changes[name]
            setattr(risk, name, value.value if hasattr(value, "value") else value)
    if changes.get("add_tags") or changes.get("remove_tags"):
        removed = {t.lower() for t in changes.get("remove_tags", [])}
        tags = [t for t in risk.tags if t not in removed]
        for tag in changes.get("add_tags", []):
            if tag.lower() not in tags:
                tags.append(tag.lower())
        risk.tags = tags
    if _rescores(changes):
        assert batch.scoring is not None and batch.reductions is not None  # loaded to rescore
        levels.derive(risk, batch.scoring, crits, batch.reductions.get(risk.id, (0, 0)))


async def _write_changes(
    session: AsyncSession,
    context: RequestContext,
    action: BulkAction,
    batch: _Batch,
    done: Sequence[_Done],
) -> list[DomainEvent]:
    """Flush the rows that really changed, with a history and audit row each; their events."""
    changed = [d for d in done if diff(d.before, d.after)]
    now = utcnow()
    for item in changed:
        item.risk.updated_at = now
    ended = await ending.end_acceptances(
        session,
        context=context,
        risks=[d.risk for d in changed if ending.leaves_accepted(d.before["status"], d.risk)],
        at=now,
    )
    await flush_or_412(session, "A risk was changed meanwhile; retry.")
    entries = []
    events = []
    for item in changed:
        delta = {**diff(item.before, item.after), **ended.get(item.risk.id, {})}
        entries.append(
            change_entry(
                item.risk, before=item.before, changes=delta, changed_by=context.user_id, at=now
            )
        )
        record(
            session,
            context=context,
            action=f"risk.bulk_{action.value}",
            resource_type="risk",
            resource_id=item.risk.id,
            changes=delta,
        )
        record_ = RiskRecord(item.risk, batch.links.get(item.risk.id, []))
        events.append(risk_event("updated", context, record_))
    await history.append(session, entries)
    await labels.replace(session, [d.risk for d in changed if d.before["tags"] != d.after["tags"]])
    return events
