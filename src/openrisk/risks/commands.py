"""Changing the register: create, update and delete risks, with scoring, history and audit.

Every write is scoped to the caller's tenant; anything outside it is NotFound. A change records
its history and audit rows in the same transaction and commits through its unit of work, which
writes its events to the outbox in that transaction and invalidates the cached register.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

import orjson
from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.exc import StaleDataError

from openrisk.assets.models import Asset
from openrisk.audit.service import audit_rows, diff, insert_audit_rows, record
from openrisk.core.context import RequestContext
from openrisk.core.db.base import utcnow
from openrisk.core.db.bulk import RawJson, insert_rows
from openrisk.core.errors import Conflict, Forbidden, PreconditionFailed, ValidationFailed
from openrisk.core.events import DomainEvent
from openrisk.core.ids import new_id
from openrisk.core.uow import UnitOfWork
from openrisk.custom_fields.models import CustomField
from openrisk.custom_fields.values import validate_values
from openrisk.methodology import ending, levels
from openrisk.methodology.store import scoring_for
from openrisk.mitigations.models import Mitigation
from openrisk.risks import batch, history, labels, rollups
from openrisk.risks.common import ensure_member, members_of, to_json
from openrisk.risks.enums import HistoryAction, RiskStatus
from openrisk.risks.models import Risk, RiskAsset, RiskHistory
from openrisk.risks.reads import (
    ListedRisk,
    RiskRecord,
    asset_criticalities,
    asset_ids_for,
    get_listed,
    get_risk,
)
from openrisk.risks.schemas import NOT_NULLABLE, RiskCreate, RiskUpdate
from openrisk.risks.scoring import ScoringModel

_PLAIN = frozenset({str, int, float, bool, type(None)})
CENT = Decimal("0.01")
_SNAPSHOT_FIELDS = (
    *batch.EDITABLE,
    "inherent_impact",
    "inherent_probability",
    "target_impact",
    "target_probability",
)
_SNAPSHOT_NAMES = frozenset(_SNAPSHOT_FIELDS)


def _by_column(changes: dict[str, Any]) -> dict[str, Any]:
    """An update's values by column: the inherent and target pairs become their columns."""
    for kind in ("inherent", "target"):
        if kind in changes:
            given = changes.pop(kind)
            changes[f"{kind}_impact"] = given["impact"] if given else None
            changes[f"{kind}_probability"] = given["probability"] if given else None
    return {
        name: value.value if hasattr(value, "value") else value for name, value in changes.items()
    }


def assign(risk: Risk, changes: dict[str, Any]) -> None:
    """Set an update's values on the risk; the inherent and target pairs go to their columns
    (``changes`` then names those columns instead)."""
    for name, value in _by_column(changes).items():
        setattr(risk, name, value)


def assign_plain(risk: Risk, changes: dict[str, Any]) -> list[str]:
    """``assign`` for a risk built in memory (``batch.transient``) that no session tracks: the
    values go straight into the instance, without the ORM's change events. The columns set."""
    columns = _by_column(changes)
    risk.__dict__.update(columns)
    return list(columns)


def snapshot(risk: Risk, asset_ids: Iterable[uuid.UUID]) -> dict[str, Any]:
    """The risk's user-visible values as JSON: diffed into history and audit rows."""
    return _snapshot_into({}, risk, _SNAPSHOT_FIELDS, asset_ids)


# in every partial snapshot: what a change entry reads from the one before an update, and the
# snapshot's fields that deriving the levels sets (the score, always added, is the other)
_ENTRY_FIELDS = (
    "impact",
    "probability",
    "status",
    "severity",
    "target_impact",
    "target_probability",
)


def snapshot_before(
    risk: Risk, changes: Mapping[str, Any], asset_ids: Iterable[uuid.UUID]
) -> dict[str, Any]:
    """``snapshot`` of only what an update of ``changes`` (its requested values, by field) can
    move: the columns it sets, the score and severity derived from them, the asset ids, and
    what its history entry reads. ``snapshot_after`` of it then differs from it exactly where
    the whole snapshots would, for half the conversions (an import takes both per row); a
    field that ``levels.derived`` returns and the snapshot holds belongs in ``_ENTRY_FIELDS``."""
    names: list[str] = list(_ENTRY_FIELDS)
    for name in changes:
        if name in ("inherent", "target"):
            names += (f"{name}_impact", f"{name}_probability")
        elif name in _SNAPSHOT_NAMES and name not in _ENTRY_FIELDS:
            names.append(name)
    return _snapshot_into({}, risk, names, asset_ids)


def snapshot_after(
    before: dict[str, Any], risk: Risk, columns: Iterable[str], asset_ids: Iterable[uuid.UUID]
) -> dict[str, Any]:
    """``snapshot`` of a risk whose snapshot was ``before`` and that has since changed only in
    ``columns`` and its derived levels: the other values are not converted again (an import
    takes this second snapshot of every row it updates)."""
    names = [name for name in columns if name in _SNAPSHOT_NAMES]
    return _snapshot_into(dict(before), risk, [*names, "severity"], asset_ids)


def _snapshot_into(
    values: dict[str, Any], risk: Risk, names: Iterable[str], asset_ids: Iterable[uuid.UUID]
) -> dict[str, Any]:
    """``values`` with the risk's ``names`` (and its score and asset ids) as JSON."""
    # read from the instance's dict where loaded (the ORM's attribute descriptors cost more
    # than the rest of this function; an import takes two snapshots of each row it updates)
    loaded = risk.__dict__
    for name in names:  # to_json for each value, with the plain ones kept as they are
        value = loaded[name] if name in loaded else getattr(risk, name)
        values[name] = value if type(value) in _PLAIN else to_json(value)
    values["score"] = float(Decimal(risk.score).quantize(CENT))
    values["asset_ids"] = sorted(str(a) for a in asset_ids)
    return values


def risk_event(kind: str, context: RequestContext, record_: RiskRecord) -> DomainEvent:
    """``risk.<kind>`` carrying the risk as the API shows it (webhooks deliver this)."""
    return DomainEvent(
        type=f"risk.{kind}",
        tenant_id=record_.risk.tenant_id,
        resource_id=record_.risk.id,
        data=record_.out().model_dump(mode="json"),
        actor_id=context.user_id,
    )


def deleted_event(context: RequestContext, risk: Risk) -> DomainEvent:
    return DomainEvent(
        type="risk.deleted",
        tenant_id=risk.tenant_id,
        resource_id=risk.id,
        data={"id": str(risk.id), "title": risk.title},
        actor_id=context.user_id,
    )


change_entry = history.change_entry


ACCEPTANCE_WORKFLOW = (
    "A risk is accepted through the acceptance workflow: POST /risks/{id}/acceptances with a "
    "justification and an expiry, then an approver's POST /acceptances/{id}/approve."
)
STALE_IF_MATCH = (
    "If-Match must carry the risk's current ETag (from GET /risks/{id} or the last write) or "
    'its version, e.g. "3"; reload the risk and retry.'
)


def expected_version(header: str | None, current: ListedRisk) -> int | None:
    """The version an If-Match header asks to change: ``*`` or absent → None (any); a list of
    ETags and/or versions → the current version when one of them is current; else 412."""
    if header is None or header.strip() == "*":
        return None
    etag = current.etag()
    for item in (part.strip() for part in header.split(",")):
        if item.removeprefix("W/") == etag:
            return int(current.risk.version)
        value = item.removeprefix("W/").strip('"')
        if value.isdigit() and len(value) <= 10 and int(value) == current.risk.version:
            return int(current.risk.version)
    raise PreconditionFailed(STALE_IF_MATCH)


async def flush_or_412(session: AsyncSession, message: str) -> None:
    """Flush; a row changed meanwhile (optimistic lock on ``version``) is a 412."""
    try:
        await session.flush()
    except StaleDataError as error:
        raise PreconditionFailed(message) from error


# --------------------------------------------------------------------------- creating


@dataclass
class RowError:
    """A problem with one item of a batch: ``status`` 403 (permission), 409 (a workflow's
    state) or 422 (value)."""

    index: int
    status: int
    field: str
    message: str


@dataclass(frozen=True)
class Lookups:
    """What validating a batch of new risks needs, loaded once for the whole batch."""

    definitions: list[CustomField]
    members: set[uuid.UUID]
    criticality: dict[uuid.UUID, str]
    scoring: ScoringModel


async def create_many(
    session: AsyncSession,
    *,
    context: RequestContext,
    items: Sequence[RiskCreate],
    source: str | None = None,
) -> tuple[list[RiskRecord], list[RowError]]:
    """Validate and insert many risks with a fixed number of queries; nothing is committed.

    Invalid items are reported (by index) and skipped; the caller decides whether to commit.
    """
    lookups = await load_lookups(session, context=context, items=items)
    now = utcnow()
    created, errors = validate_new(
        enumerate(items), context=context, lookups=lookups, source=source, now=now
    )
    if created:
        await insert_created(session, context=context, created=created, now=now)
    return created, errors


def validate_new(
    items: Iterable[tuple[int, RiskCreate]],
    *,
    context: RequestContext,
    lookups: Lookups,
    source: str | None,
    now: datetime,
) -> tuple[list[RiskRecord], list[RowError]]:
    """The new risks of ``(index, item)`` pairs built in memory, and the items' problems (by
    their index); no database access, so a caller may validate while it writes other rows."""
    errors: list[RowError] = []
    created: list[RiskRecord] = []
    for index, data in items:
        problems = _row_problems(index, data, context, lookups)
        custom, custom_errors = validate_values(lookups.definitions, data.custom_fields)
        problems.extend(RowError(index, 422, e["field"], e["message"]) for e in custom_errors)
        if problems:
            errors.extend(problems)
            continue
        risk = _new_risk(data, context, lookups, custom=custom, source=source, now=now)
        created.append(RiskRecord(risk, list(data.asset_ids)))
    return created, errors


async def load_lookups(
    session: AsyncSession,
    *,
    context: RequestContext,
    items: Sequence[RiskCreate] = (),
    owners: Iterable[uuid.UUID] = (),
    assets: Iterable[uuid.UUID] = (),
    definitions: list[CustomField] | None = None,
    scoring: ScoringModel | None = None,
) -> Lookups:
    """The lookups for ``items``, or for the ``owners`` and ``assets`` a caller names (one who
    validates rows later); ``definitions`` and ``scoring`` when the caller already has them."""
    if definitions is None:
        definitions = list(
            await session.scalars(
                select(CustomField).where(CustomField.tenant_id == context.tenant_id)
            )
        )
    wanted_owners = {i.owner_id for i in items if i.owner_id} | set(owners)
    wanted_owners -= {context.user_id}
    members = await members_of(session, tenant_id=context.tenant_id, user_ids=wanted_owners)
    wanted_assets = {a for i in items for a in i.asset_ids} | set(assets)
    criticality: dict[uuid.UUID, str] = {}
    if wanted_assets:
        rows = await session.execute(
            select(Asset.id, Asset.criticality).where(
                Asset.tenant_id == context.tenant_id,
                Asset.deleted_at.is_(None),
                Asset.id.in_(list(wanted_assets)),
            )
        )
        criticality = {asset_id: crit for asset_id, crit in rows}
    if scoring is None:
        scoring = await scoring_for(session, tenant_id=context.tenant_id)
    return Lookups(
        definitions=definitions, members=members, criticality=criticality, scoring=scoring
    )


def _row_problems(
    index: int, data: RiskCreate, context: RequestContext, lookups: Lookups
) -> list[RowError]:
    """Permission and reference problems of one new risk (custom values are checked apart)."""
    problems: list[RowError] = []
    for name, value, top in (
        ("impact", data.impact, lookups.scoring.impact_levels),
        ("probability", data.probability, lookups.scoring.probability_levels),
    ):
        if value > top:
            problems.append(RowError(index, 422, name, level_message(name, top)))
    for kind in ("inherent", "target"):
        given = getattr(data, kind)
        if given is None:
            continue
        for name, value, top in (
            ("impact", given.impact, lookups.scoring.impact_levels),
            ("probability", given.probability, lookups.scoring.probability_levels),
        ):
            if value > top:
                problems.append(RowError(index, 422, f"{kind}.{name}", level_message(name, top)))
    if data.status is RiskStatus.ACCEPTED:
        problems.append(RowError(index, 409, "status", ACCEPTANCE_WORKFLOW))
    owner_id = data.owner_id or context.user_id
    if owner_id != context.user_id:
        if not context.has_any_scope("risk:assign"):
            problems.append(RowError(index, 403, "owner_id", "Missing permission risk:assign"))
        elif owner_id not in lookups.members:
            problems.append(RowError(index, 422, "owner_id", "must be a member of this tenant"))
    missing = [str(a) for a in data.asset_ids if a not in lookups.criticality]
    if missing:
        problems.append(
            RowError(index, 422, "asset_ids", "unknown asset(s): " + ", ".join(missing))
        )
    return problems


def _new_risk(
    data: RiskCreate,
    context: RequestContext,
    lookups: Lookups,
    *,
    custom: dict[str, Any],
    source: str | None,
    now: datetime,
) -> Risk:
    inherent = data.inherent or data
    risk = batch.transient(
        {
            "id": new_id(),
            "tenant_id": context.tenant_id,
            "title": data.title,
            "description": data.description,
            "impact": data.impact,
            "probability": data.probability,
            "inherent_impact": inherent.impact,
            "inherent_probability": inherent.probability,
            "target_impact": data.target.impact if data.target else None,
            "target_probability": data.target.probability if data.target else None,
            "status": data.status.value,
            "treatment": data.treatment.value,
            "owner_id": data.owner_id or context.user_id,
            "tags": data.tags,
            "frameworks": data.frameworks,
            "source": source or data.source.value,
            "external_id": data.external_id,
            "review_date": data.review_date,
            "custom_fields": custom,
            "version": 1,
            "created_by": context.user_id,
            "created_at": now,
            "updated_at": now,
        }
    )
    # into its dict: a risk built in memory for the batch writer needs no change events
    risk.__dict__.update(
        levels.derived(risk, lookups.scoring, [lookups.criticality[a] for a in data.asset_ids])
    )
    return risk


@dataclass
class CreatedRows:
    """The rows that new risks add to each table, built in memory (no database)."""

    risks: list[dict[str, Any]] = field(default_factory=list)
    labels: list[dict[str, Any]] = field(default_factory=list)
    links: list[dict[str, Any]] = field(default_factory=list)
    entries: list[history.HistoryEntry] = field(default_factory=list)  # their history
    history_rows: list[dict[str, Any]] = field(default_factory=list)
    audit_rows: list[dict[str, Any]] = field(default_factory=list)

    def add(self, context: RequestContext, created: Sequence[RiskRecord], now: datetime) -> None:
        """Add the rows of ``created``: each risk, its labels and asset links, one CREATE
        history and audit row."""
        audited: list[tuple[uuid.UUID, RawJson]] = []
        for c in created:
            self.risks.append(batch.risk_row(c.risk))
            self.labels += labels.rows_of(c.risk)
            self.links += batch.link_rows(c.risk.tenant_id, {c.risk.id: c.asset_ids})
            # what ``diff({}, snapshot)`` gives, encoded once for the history and the audit row
            after = snapshot(c.risk, c.asset_ids)
            changes = RawJson(
                orjson.dumps(
                    {
                        k: {"before": None, "after": v}
                        for k, v in sorted(after.items())
                        if v is not None
                    }
                )
            )
            entry = history.HistoryEntry.of(
                c.risk,
                tenant_id=c.risk.tenant_id,
                action=HistoryAction.CREATE,
                changed_by=context.user_id,
                changes=changes,
                created_at=now,
            )
            self.entries.append(entry)
            self.history_rows.append(entry.row())
            audited.append((c.risk.id, changes))
        self.audit_rows += audit_rows(
            context=context, action="risk.create", resource_type="risk", items=audited
        )


async def insert_created(
    session: AsyncSession,
    *,
    context: RequestContext,
    created: Sequence[RiskRecord],
    now: datetime,
) -> None:
    """Insert the risks, their labels and asset links, one CREATE history and audit row each:
    one multi-row statement per table (``risks.batch``)."""
    rows = CreatedRows()
    rows.add(context, created, now)
    await write_created(session, rows=rows)


async def write_created(session: AsyncSession, *, rows: CreatedRows) -> None:
    """Write rows built by ``CreatedRows.add``."""
    await insert_rows(session, batch.RISKS, rows.risks)
    await insert_rows(session, batch.LABELS, rows.labels)
    await insert_rows(session, batch.LINKS, rows.links)
    await history.append(session, rows.entries, rows=rows.history_rows)
    await insert_audit_rows(session, rows.audit_rows)


def _audit(
    session: AsyncSession,
    context: RequestContext,
    action: str,
    risk_id: uuid.UUID,
    changes: dict[str, Any],
) -> None:
    record(
        session,
        context=context,
        action=action,
        resource_type="risk",
        resource_id=risk_id,
        changes=changes,
    )


def raise_row_errors(errors: Sequence[RowError]) -> None:
    if not errors:
        return
    conflicts = [e for e in errors if e.status == 409]
    if conflicts:
        raise Conflict(conflicts[0].message)
    forbidden = [e for e in errors if e.status == 403]
    if forbidden:
        raise Forbidden(forbidden[0].message)
    raise ValidationFailed(
        "Invalid value for: " + ", ".join(e.field for e in errors),
        errors=[{"field": e.field, "message": e.message, "type": "value_error"} for e in errors],
    )


async def create_risk(*, uow: UnitOfWork, context: RequestContext, data: RiskCreate) -> RiskRecord:
    created, errors = await create_many(uow.session, context=context, items=[data])
    raise_row_errors(errors)
    result = created[0]
    uow.emit(risk_event("created", context, result))
    await uow.commit()
    return result


# --------------------------------------------------------------------------- updating


async def update_risk(
    *,
    uow: UnitOfWork,
    context: RequestContext,
    risk_id: uuid.UUID,
    data: RiskUpdate,
    if_match: str | int | None = None,
) -> RiskRecord:
    """Partial update; ``if_match`` (a version or an If-Match header value) guards it (412)."""
    result, changed = await apply_update(
        uow.session, context=context, risk_id=risk_id, data=data, if_match=if_match
    )
    if changed:
        uow.emit(risk_event("updated", context, result))
        await uow.commit()
    return result


async def apply_update(
    session: AsyncSession,
    *,
    context: RequestContext,
    risk_id: uuid.UUID,
    data: RiskUpdate,
    if_match: str | int | None = None,
) -> tuple[RiskRecord, bool]:
    """`update_risk` without committing: the record, and whether anything changed."""
    risk = await get_risk(session, tenant_id=context.tenant_id, risk_id=risk_id)
    current_assets = (await asset_ids_for(session, [risk.id])).get(risk.id, [])
    if isinstance(if_match, str):
        current = await get_listed(session, tenant_id=context.tenant_id, risk_id=risk_id)
        if_match = expected_version(if_match, current)
    check_version(risk, if_match, data.version)
    context.require_on("risk:update", risk.owner_id)
    changes = requested_changes(data)
    before = snapshot(risk, current_assets)
    await _authorise_changes(session, context, risk, changes)
    new_assets = list(changes.pop("asset_ids", current_assets))
    await _apply_changes(session, context, risk, changes, new_assets, current_assets)
    changed = diff(before, snapshot(risk, new_assets))
    if not changed:
        return RiskRecord(risk, current_assets), False
    risk.updated_at = utcnow()
    if ending.leaves_accepted(before["status"], risk):
        ended = await ending.end_acceptances(
            session, context=context, risks=[risk], at=risk.updated_at
        )
        changed.update(ended.get(risk.id, {}))
    await flush_or_412(session, "The risk was changed meanwhile; reload it and retry.")
    await _write_update(session, context, risk, before, changed, new_assets, current_assets)
    return RiskRecord(risk, new_assets), True


def check_version(risk: Risk, if_match: int | None, body_version: int | None) -> None:
    for expected in (if_match, body_version):
        if expected is not None and expected != risk.version:
            raise PreconditionFailed(
                f"The risk was changed meanwhile (version {risk.version}, "
                f"you sent {expected}); reload it and retry."
            )


def requested_changes(data: RiskUpdate) -> dict[str, Any]:
    changes = data.model_dump(exclude_unset=True, exclude={"version"})
    for name in NOT_NULLABLE & set(changes):
        if changes[name] is None:
            raise ValidationFailed.field(name, "must not be null")
    return changes


async def _authorise_changes(
    session: AsyncSession, context: RequestContext, risk: Risk, changes: Mapping[str, Any]
) -> None:
    """Reassigning needs risk:assign (and a member as owner); accepting needs risk:accept."""
    if "owner_id" in changes and changes["owner_id"] != risk.owner_id:
        context.require("risk:assign")
        await ensure_member(
            session, tenant_id=context.tenant_id, user_id=changes["owner_id"], field="owner_id"
        )
    if changes.get("status") == RiskStatus.ACCEPTED and risk.status != RiskStatus.ACCEPTED:
        raise Conflict(ACCEPTANCE_WORKFLOW)


async def _apply_changes(
    session: AsyncSession,
    context: RequestContext,
    risk: Risk,
    changes: dict[str, Any],
    new_assets: list[uuid.UUID],
    current_assets: list[uuid.UUID],
) -> None:
    """Set the new values on the risk; rescore it when its levels or assets moved."""
    if "custom_fields" in changes:
        changes["custom_fields"] = await _custom_values(
            session, tenant_id=context.tenant_id, values=changes["custom_fields"], risk=risk
        )
    assign(risk, changes)
    assets_changed = sorted(new_assets) != sorted(current_assets)
    if assets_changed or set(changes) & LEVEL_FIELDS:
        scoring = await scoring_for(session, tenant_id=context.tenant_id)
        check_levels(scoring, risk.impact, risk.probability)
        check_levels(scoring, risk.inherent_impact, risk.inherent_probability, "inherent.")
        if risk.target_impact is not None and risk.target_probability is not None:
            check_levels(scoring, risk.target_impact, risk.target_probability, "target.")
        crits = await asset_criticalities(
            session, tenant_id=context.tenant_id, asset_ids=new_assets
        )
        reductions = await levels.open_reductions(
            session, tenant_id=context.tenant_id, risk_ids=[risk.id]
        )
        levels.derive(risk, scoring, crits, reductions.get(risk.id, (0, 0)))


LEVEL_FIELDS = frozenset(
    {"impact", "probability", "inherent_impact", "inherent_probability"}
    | {"target_impact", "target_probability", "review_date"}
)


def level_problems(scoring: ScoringModel, values: Mapping[str, Any]) -> dict[str, str]:
    """Raw ``impact``/``probability`` values (numbers or digits) beyond the tenant's levels,
    so a form or an import row names them along with its other errors."""
    found = {}
    for name, top in (
        ("impact", scoring.impact_levels),
        ("probability", scoring.probability_levels),
    ):
        text = str(values.get(name) or "").strip()
        if text.isdigit() and len(text) < 4 and not 1 <= int(text) <= top:
            found[name] = level_message(name, top)
    return found


def level_message(name: str, top: int) -> str:
    return f"must be a level of the tenant's risk model: 1 to {top}"


def check_levels(scoring: ScoringModel, impact: int, probability: int, prefix: str = "") -> None:
    """422 naming the axis whose level the tenant's model does not have."""
    for name, value, top in (
        ("impact", impact, scoring.impact_levels),
        ("probability", probability, scoring.probability_levels),
    ):
        if not 1 <= value <= top:
            raise ValidationFailed.field(prefix + name, level_message(name, top))


async def _custom_values(
    session: AsyncSession, *, tenant_id: uuid.UUID, values: Mapping[str, Any], risk: Risk
) -> dict[str, Any]:
    definitions = list(
        await session.scalars(select(CustomField).where(CustomField.tenant_id == tenant_id))
    )
    merged, errors = validate_values(
        definitions, values, current=risk.custom_fields, enforce_required=True
    )
    if errors:
        raise ValidationFailed(
            "Invalid value for: " + ", ".join(e["field"] for e in errors), errors=errors
        )
    return merged


async def _write_update(
    session: AsyncSession,
    context: RequestContext,
    risk: Risk,
    before: Mapping[str, Any],
    changed: dict[str, Any],
    new_assets: list[uuid.UUID],
    current_assets: list[uuid.UUID],
) -> None:
    """Labels, asset links, the history row and the audit row of an applied update."""
    if {"tags", "frameworks", "custom_fields"} & set(changed):
        await labels.replace(session, [risk])
    if sorted(new_assets) != sorted(current_assets):
        await _relink_assets(session, context, risk, new_assets)
    entry = change_entry(
        risk, before=before, changes=changed, changed_by=context.user_id, at=risk.updated_at
    )
    await history.append(session, [entry])
    _audit(session, context, "risk.update", risk.id, changed)


async def _relink_assets(
    session: AsyncSession, context: RequestContext, risk: Risk, asset_ids: list[uuid.UUID]
) -> None:
    await session.execute(delete(RiskAsset).where(RiskAsset.risk_id == risk.id))
    if asset_ids:
        await session.execute(
            insert(RiskAsset),
            [
                {"risk_id": risk.id, "asset_id": a, "tenant_id": context.tenant_id}
                for a in asset_ids
            ],
        )


async def move_reduction_into_current(
    session: AsyncSession,
    *,
    context: RequestContext,
    risk_id: uuid.UUID,
    mitigation: Mitigation,
    reopened: bool = False,
) -> DomainEvent | None:
    """A mitigation is done: its reductions come off the risk's current levels (never below
    1), with a SCORE_CHANGE history row naming it. ``reopened``: it is not done any more, so
    the levels it took off (as its done row recorded them) come back, up to the model's top
    level. No commit."""
    risk = await get_risk(session, tenant_id=context.tenant_id, risk_id=risk_id)
    if reopened:
        scoring = await scoring_for(session, tenant_id=context.tenant_id)
        taken = await _taken_off(session, risk, mitigation)
        impact = min(scoring.impact_levels, risk.impact + taken[0])
        probability = min(scoring.probability_levels, risk.probability + taken[1])
    else:
        impact = levels.reduced(risk.impact, mitigation.impact_reduction)
        probability = levels.reduced(risk.probability, mitigation.probability_reduction)
    if (impact, probability) == (risk.impact, risk.probability):
        return None
    asset_ids = (await asset_ids_for(session, [risk.id])).get(risk.id, [])
    before = snapshot(risk, asset_ids)
    risk.impact, risk.probability = impact, probability
    scoring = await scoring_for(session, tenant_id=context.tenant_id)
    crits = await asset_criticalities(session, tenant_id=context.tenant_id, asset_ids=asset_ids)
    reductions = await levels.open_reductions(
        session, tenant_id=context.tenant_id, risk_ids=[risk.id]
    )
    levels.derive(risk, scoring, crits, reductions.get(risk.id, (0, 0)))
    risk.updated_at = utcnow()
    await flush_or_412(session, "The risk was changed meanwhile; reload it and retry.")
    changes = {
        **diff(before, snapshot(risk, asset_ids)),
        "reason": f"mitigation “{mitigation.title}” {'reopened' if reopened else 'done'}",
        "mitigation_id": str(mitigation.id),
    }
    entry = history.HistoryEntry.of(
        risk,
        tenant_id=risk.tenant_id,
        action=HistoryAction.SCORE_CHANGE,
        prev_score=Decimal(str(before["score"])),
        prev_status=before["status"],
        prev_impact=before["impact"],
        prev_probability=before["probability"],
        prev_severity=before["severity"],
        changed_by=context.user_id,
        changes=changes,
        created_at=risk.updated_at,
    )
    await history.append(session, [entry])
    _audit(session, context, "risk.update", risk.id, changes)
    return risk_event("updated", context, RiskRecord(risk, asset_ids))


async def _taken_off(session: AsyncSession, risk: Risk, mitigation: Mitigation) -> tuple[int, int]:
    """The impact and probability levels the mitigation's last "done" row took off the risk
    (less than its reductions when a level stopped at 1); its reductions when no row says."""
    rows = await session.scalars(
        select(RiskHistory.changes)
        .where(
            RiskHistory.tenant_id == risk.tenant_id,
            RiskHistory.risk_id == risk.id,
            RiskHistory.action == HistoryAction.SCORE_CHANGE.value,
        )
        .order_by(RiskHistory.created_at.desc())
        .limit(HISTORY_SCAN)
    )
    for changes in rows:
        if not changes or changes.get("mitigation_id") != str(mitigation.id):
            continue
        if not str(changes.get("reason", "")).endswith(" done"):
            return (0, 0)  # its last row gave the levels back already
        return tuple(  # type: ignore[return-value]
            max(0, int(changes[axis]["before"]) - int(changes[axis]["after"]))
            if axis in changes
            else 0
            for axis in ("impact", "probability")
        )
    return mitigation.impact_reduction, mitigation.probability_reduction


HISTORY_SCAN = 500  # SCORE_CHANGE rows of one risk looked at for a mitigation's done row


# --------------------------------------------------------------------------- deleting


async def soft_delete(
    session: AsyncSession, *, context: RequestContext, risks: Sequence[Risk]
) -> None:
    """Mark risks (and their mitigations) deleted, with history and audit rows; no commit."""
    if not risks:
        return
    now = utcnow()
    for risk in risks:
        risk.deleted_at = now
        risk.updated_at = now
    await flush_or_412(session, "A risk was changed meanwhile; reload it and retry.")
    risk_ids = [r.id for r in risks]
    await labels.remove(session, risk_ids)
    await _delete_mitigations(session, context=context, risk_ids=risk_ids, now=now)
    changes = {"deleted_at": {"before": None, "after": now.isoformat()}}
    await history.append(session, [_deletion_entry(risk, context, changes, now) for risk in risks])
    for risk in risks:
        _audit(session, context, "risk.delete", risk.id, changes)


async def _delete_mitigations(
    session: AsyncSession, *, context: RequestContext, risk_ids: list[uuid.UUID], now: datetime
) -> None:
    """The deleted risks' live mitigations leave the roll-ups and are marked deleted too."""
    await rollups.apply_mitigation_changes(
        session,
        await rollups.live_mitigations_of(session, tenant_id=context.tenant_id, risk_ids=risk_ids),
    )
    await session.execute(
        update(Mitigation)
        .where(
            Mitigation.tenant_id == context.tenant_id,
            Mitigation.risk_id.in_(risk_ids),
            Mitigation.deleted_at.is_(None),
        )
        .values(deleted_at=now, updated_at=now)
        .execution_options(synchronize_session=False)
    )


def _deletion_entry(
    risk: Risk, context: RequestContext, changes: dict[str, Any], now: datetime
) -> history.HistoryEntry:
    return history.HistoryEntry.of(
        risk,
        tenant_id=risk.tenant_id,
        action=HistoryAction.DELETE,
        prev_score=Decimal(risk.score),
        prev_status=risk.status,
        prev_severity=risk.severity,
        changed_by=context.user_id,
        changes=changes,
        created_at=now,
    )


async def delete_risk(*, uow: UnitOfWork, context: RequestContext, risk_id: uuid.UUID) -> None:
    risk = await get_risk(uow.session, tenant_id=context.tenant_id, risk_id=risk_id)
    context.require_on("risk:delete", risk.owner_id)
    await soft_delete(uow.session, context=context, risks=[risk])
    uow.emit(deleted_event(context, risk))
    await uow.commit()
