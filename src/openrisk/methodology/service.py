"""Changing a tenant's risk model and re-scoring its register in the same transaction.

``put_model`` checks the model (levels numbered 1..N, bands ascending from 0, an explicit
mapping for every level an axis loses), takes the next version only if the caller's is still
current (409 otherwise: of many concurrent writers exactly one wins), then recomputes every
live risk's levels, score and severity with one UPDATE, computed by the database, and writes
a SCORE_CHANGE history row for each risk it moved. A dry run answers the same re-mapping
figures from the same SQL, without writing.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any, cast

from sqlalchemy import (
    Table,
    case,
    func,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from openrisk.audit.service import diff, record
from openrisk.core.context import RequestContext
from openrisk.core.db.base import utcnow
from openrisk.core.errors import Conflict, ValidationFailed
from openrisk.core.events import DomainEvent
from openrisk.core.uow import UnitOfWork, commit_with
from openrisk.methodology import remap, store
from openrisk.methodology.models import RiskModelRecord
from openrisk.methodology.schemas import (
    BandCount,
    LevelMapping,
    Remapping,
    RiskModelFields,
    RiskModelOut,
    RiskModelUpdate,
    Transition,
)
from openrisk.quantification import service as quantification
from openrisk.risks import history
from openrisk.risks.common import dialect_name, to_json
from openrisk.risks.enums import HistoryAction
from openrisk.risks.models import Risk
from openrisk.risks.scoring import DEFAULT_REVIEW_DAYS, ScoringModel

EVENT = "risk_model.updated"


def model_out(stored: store.StoredModel, **extra: Any) -> RiskModelOut:
    return RiskModelOut.model_validate(
        {**stored.definition, "version": stored.version, "updated_at": stored.updated_at, **extra}
    )


async def _loss_appetite(session: AsyncSession, tenant_id: uuid.UUID) -> dict[str, Any] | None:
    found = await quantification.get_appetite(session, tenant_id=tenant_id)
    return found.model_dump(exclude={"updated_at"}) if found else None


async def get_model(session: AsyncSession, *, context: RequestContext) -> RiskModelOut:
    return model_out(
        await store.load(session, tenant_id=context.tenant_id),
        loss_appetite=await _loss_appetite(session, context.tenant_id),
    )


# --------------------------------------------------------------------------- checking


def _problem(field: str, message: str) -> dict[str, str]:
    return {"field": field, "message": message, "type": "value_error"}


def _check_shape(data: RiskModelFields) -> list[dict[str, str]]:
    problems = []
    for axis in ("impact_levels", "probability_levels"):
        values = [level.value for level in getattr(data, axis)]
        if values != list(range(1, len(values) + 1)):
            problems.append(_problem(axis, "levels must be numbered 1, 2, 3… in order"))
    bands = data.bands
    if bands[0].min_score != 0:
        problems.append(_problem("bands.0.min_score", "the first band must start at 0"))
    for i in range(1, len(bands)):
        if bands[i].min_score <= bands[i - 1].min_score:
            problems.append(
                _problem(f"bands.{i}.min_score", "bands must be in ascending min_score")
            )
    names = [b.name for b in bands]
    if len(set(names)) != len(names):
        problems.append(_problem("bands", "band names must be unique"))
    unknown = sorted(set(data.review_days) - set(names))
    if unknown:
        problems.append(_problem("review_days", "not a band of the model: " + ", ".join(unknown)))
    return problems


def _check_mapping(
    old: ScoringModel, data: RiskModelFields, mapping: LevelMapping
) -> list[dict[str, str]]:
    """Every level an axis loses needs a target; targets must be levels of the new model."""
    problems = []
    for axis, old_count in (
        ("impact", old.impact_levels),
        ("probability", old.probability_levels),
    ):
        new_count = len(getattr(data, f"{axis}_levels"))
        given: dict[int, int] = getattr(mapping, axis)
        missing = [lv for lv in range(new_count + 1, old_count + 1) if lv not in given]
        if missing:
            levels = ", ".join(str(lv) for lv in missing)
            example = ", ".join(f'"{lv}": {new_count}' for lv in missing)
            problems.append(
                _problem(
                    f"level_mapping.{axis}",
                    f"{axis} level(s) {levels} are not in the new model: say where their "
                    f"risks go, e.g. {{{example}}}",
                )
            )
        for source, target in sorted(given.items()):
            if source > old_count:
                problems.append(
                    _problem(f"level_mapping.{axis}.{source}", f"not a current {axis} level")
                )
            if target > new_count:
                problems.append(
                    _problem(f"level_mapping.{axis}.{source}", f"{target} is not a new level")
                )
    return problems


def normalised(data: RiskModelFields) -> dict[str, Any]:
    """The stored definition: every criticality's factor and every band's review days."""
    definition = cast(dict[str, Any], to_json(data.model_dump(mode="python")))
    factors = store.default_definition()["asset_factors"]
    definition["asset_factors"] = {**factors, **definition["asset_factors"]}
    definition["review_days"] = {
        b.name: data.review_days.get(
            b.name, DEFAULT_REVIEW_DAYS.get(b.name, store.FALLBACK_REVIEW_DAYS)
        )
        for b in data.bands
    }
    return {k: v for k, v in definition.items() if k in RiskModelFields.model_fields}


# --------------------------------------------------------------------------- re-scoring in SQL


async def remapping(
    session: AsyncSession,
    *,
    tenant_id: uuid.UUID,
    old: ScoringModel,
    new: ScoringModel,
    mapping: LevelMapping,
) -> Remapping:
    """What applying ``new`` does to the live risks: one GROUP BY over the plan, nothing
    written."""
    plan = remap.plan(session, tenant_id=tenant_id, old=old, new=new, mapping=mapping)
    rows = (
        await session.execute(
            select(
                plan.column("o_severity"),
                plan.column("n_severity"),
                func.count(),
                func.sum(case((plan.current_changed, 1), else_=0)),
            ).group_by(plan.column("o_severity"), plan.column("n_severity"))
        )
    ).all()
    before: dict[str, int] = defaultdict(int)
    after: dict[str, int] = defaultdict(int)
    transitions = []
    total = rescored = moved = 0
    for old_severity, severity, count, changed in rows:
        before[old_severity] += count
        after[severity] += count
        total += count
        rescored += int(changed or 0)
        if old_severity != severity:
            moved += count
            transitions.append(Transition(before=old_severity, after=severity, count=count))
    names = [b.name for b in new.bands] + [
        b.name for b in old.bands if b.name not in {n.name for n in new.bands}
    ]
    names += sorted(set(before) - set(names))
    return Remapping(
        risks=total,
        rescored=rescored,
        severity_changed=moved,
        by_band=[BandCount(name=n, before=before[n], after=after[n]) for n in names],
        transitions=sorted(transitions, key=lambda t: (t.before, t.after)),
    )


_PLANNED_COLUMNS = (
    "impact",
    "probability",
    "score",
    "severity",
    "within_appetite",
    "residual_within_appetite",
    "next_review_date",
    *(f"{basis}_{part}" for basis in remap.BASES for part in (*remap.LEVELS, "score", "severity")),
)


async def _rescore(
    session: AsyncSession,
    *,
    context: RequestContext,
    old: ScoringModel,
    new: ScoringModel,
    mapping: LevelMapping,
    version: int,
) -> int:
    """Apply ``new`` to the live risks of the tenant: one UPDATE of the rows whose stored
    values change, and a SCORE_CHANGE history row for each risk whose current level moved."""
    tenant_id = context.tenant_id
    plan = remap.plan(session, tenant_id=tenant_id, old=old, new=new, mapping=mapping)
    p = plan.rows.c
    moved = (
        await session.execute(
            select(
                p.id,
                p.o_impact,
                p.o_probability,
                p.o_score,
                p.o_severity,
                p.status,
                p.created_at,
                p.n_impact,
                p.n_probability,
                p.c_current,
                p.n_severity,
            ).where(plan.current_changed)
        )
    ).all()
    now = utcnow()
    table = cast(Table, Risk.__table__)
    await session.execute(
        update(Risk)
        .where(Risk.id == p.id, Risk.tenant_id == tenant_id, plan.changed)
        .values(
            {
                **{name: p[f"n_{name}"] for name in _PLANNED_COLUMNS},
                "version": table.c.version + 1,
                "updated_at": now,
            }
        )
        .execution_options(synchronize_session=False)
    )
    if not moved:
        return 0
    reason = f"risk model version {version}"
    entries = []
    for row in moved:
        score = (Decimal(int(row.c_current)) / 100).quantize(Decimal("0.01"))
        old_values = {
            "impact": row.o_impact,
            "probability": row.o_probability,
            "score": float(row.o_score),
            "severity": row.o_severity,
        }
        new_values = {
            "impact": int(row.n_impact),
            "probability": int(row.n_probability),
            "score": float(score),
            "severity": row.n_severity,
        }
        entries.append(
            history.HistoryEntry(
                tenant_id=tenant_id,
                risk_id=row.id,
                action=HistoryAction.SCORE_CHANGE,
                impact=int(row.n_impact),
                probability=int(row.n_probability),
                score=score,
                severity=row.n_severity,
                status=row.status,
                prev_score=Decimal(str(row.o_score)).quantize(Decimal("0.01")),
                prev_status=row.status,
                changed_by=context.user_id,
                changes={**diff(old_values, new_values), "reason": reason},
                created_at=now,
                prev_impact=row.o_impact,
                prev_probability=row.o_probability,
                prev_severity=row.o_severity,
                risk_created_at=row.created_at,
            )
        )
    await history.append(session, entries)
    return len(entries)


# --------------------------------------------------------------------------- writing


def _insert(session: AsyncSession) -> Any:
    return postgresql.insert if dialect_name(session) == "postgresql" else sqlite.insert


STALE = (
    "The risk model was changed meanwhile (version {current}, you sent {sent}); "
    "reload it (GET /risk-model) and retry."
)


async def _take_version(
    session: AsyncSession, *, context: RequestContext, sent: int, definition: dict[str, Any]
) -> int:
    """Store ``definition`` as the next version if ``sent`` is still the current one (the
    row is created at version 1 first: concurrent writers then race on one row)."""
    await session.execute(
        _insert(session)(RiskModelRecord)
        .values(
            tenant_id=context.tenant_id,
            definition=store.default_definition(),
            version=1,
            updated_at=utcnow(),
        )
        .on_conflict_do_nothing(index_elements=[RiskModelRecord.tenant_id])
    )
    result = await session.execute(
        update(RiskModelRecord)
        .where(RiskModelRecord.tenant_id == context.tenant_id, RiskModelRecord.version == sent)
        .values(
            definition=definition,
            version=RiskModelRecord.version + 1,
            updated_at=utcnow(),
            updated_by=context.user_id,
        )
        .returning(RiskModelRecord.version)
        .execution_options(synchronize_session=False)
    )
    version = result.scalar()
    if version is None:
        await session.rollback()
        current = await store.load(session, tenant_id=context.tenant_id)
        await session.rollback()
        raise Conflict(STALE.format(current=current.version, sent=sent))
    return int(version)


async def checked(
    session: AsyncSession, *, context: RequestContext, data: RiskModelUpdate
) -> tuple[store.StoredModel, dict[str, Any]]:
    """The stored model and the definition ``data`` would store: 422 naming each bad field
    (or each level an axis loses without a mapping), 409 when ``version`` is not current."""
    context.require("tenant:update")
    current = await store.load(session, tenant_id=context.tenant_id)
    problems = _check_shape(data)
    if not problems:
        problems = _check_mapping(current.scoring, data, data.level_mapping)
    if problems:
        raise ValidationFailed(
            "Invalid value for: " + ", ".join(p["field"] for p in problems), errors=problems
        )
    definition = normalised(data)
    if data.version != current.version:
        raise Conflict(STALE.format(current=current.version, sent=data.version))
    return current, definition


Applied = Callable[[int, Remapping], Awaitable[None]]


async def put_model(
    *,
    uow: UnitOfWork,
    context: RequestContext,
    data: RiskModelUpdate,
    dry_run: bool = False,
    before_commit: Applied | None = None,
) -> RiskModelOut:
    """Replace the tenant's model (or, with ``dry_run``, tell what it would change), in one
    transaction. ``before_commit`` (the version made, the re-mapping) lets a job record its
    end in that same transaction."""
    session = uow.session
    current, definition = await checked(session, context=context, data=data)
    old = current.scoring
    new = store.to_scoring(definition)
    appetite_given = "loss_appetite" in data.model_fields_set
    if dry_run:
        figures = await remapping(
            session, tenant_id=context.tenant_id, old=old, new=new, mapping=data.level_mapping
        )
        appetite = (
            data.loss_appetite.model_dump()
            if appetite_given and data.loss_appetite
            else None
            if appetite_given
            else await _loss_appetite(session, context.tenant_id)
        )
        await session.rollback()
        proposed = store.StoredModel(definition, current.version, current.updated_at)
        return model_out(proposed, dry_run=True, remapping=figures, loss_appetite=appetite)
    version = await _take_version(
        session, context=context, sent=data.version, definition=definition
    )
    figures = await remapping(
        session, tenant_id=context.tenant_id, old=old, new=new, mapping=data.level_mapping
    )
    await _rescore(
        session, context=context, old=old, new=new, mapping=data.level_mapping, version=version
    )
    for obj in list(session.identity_map.values()):  # loaded risks read what was written
        if isinstance(obj, Risk):
            await session.refresh(obj)
    changes = diff(current.definition, definition)
    record(
        session,
        context=context,
        action="risk_model.update",
        resource_type="risk_model",
        resource_id=context.tenant_id,
        changes={
            **changes,
            "version": {"before": current.version, "after": version},
            "rescored": figures.rescored,
            "severity_changed": figures.severity_changed,
        },
    )
    events = []
    if appetite_given and data.loss_appetite is not None:
        await quantification.store_appetite(session, context=context, data=data.loss_appetite)
        events.append(quantification.appetite_event(context))
    elif appetite_given and await quantification.remove_appetite(session, context=context):
        events.append(quantification.appetite_event(context))
    stored = await store.load(session, tenant_id=context.tenant_id)
    appetite = await _loss_appetite(session, context.tenant_id)
    changed_model = DomainEvent(
        type=EVENT,
        tenant_id=context.tenant_id,
        resource_id=context.tenant_id,
        data={"version": version, "rescored": figures.rescored},
        actor_id=context.user_id,
    )
    if before_commit is not None:
        await before_commit(version, figures)
    await commit_with(uow, [changed_model, *events])
    return model_out(stored, dry_run=False, remapping=figures, loss_appetite=appetite)
