"""The risk register: CRUD with scoring, optimistic locking, history, search, matrix, bulk.

Every query is scoped to the caller's tenant; anything outside it is NotFound. Services flush,
record audit events, commit and then publish domain events (cache invalidation, webhooks).
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, cast

from sqlalchemy import Table, bindparam, delete, func, insert, select, update
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.exc import StaleDataError

from openrisk.assets.models import Asset
from openrisk.audit.service import diff, record
from openrisk.core.context import RequestContext
from openrisk.core.db.base import utcnow
from openrisk.core.errors import (
    Forbidden,
    NotFound,
    PreconditionFailed,
    ValidationFailed,
)
from openrisk.core.events import DomainEvent, EventBus
from openrisk.custom_fields.models import CustomField
from openrisk.custom_fields.values import InvalidValue, coerce, validate_values
from openrisk.mitigations.models import Mitigation
from openrisk.risks import history, labels, queries, rollups
from openrisk.risks.common import (
    commit_and_publish,
    dialect_name,
    ensure_member,
    members_of,
    to_json,
)
from openrisk.risks.enums import HistoryAction, RiskStatus, SortField, SortOrder
from openrisk.risks.models import (
    Risk,
    RiskAsset,
    RiskCellCount,
    RiskDayCount,
    RiskHistory,
    RiskLabel,
)
from openrisk.risks.queries import RiskFilters
from openrisk.risks.schemas import (
    NOT_NULLABLE,
    BulkAction,
    BulkItem,
    BulkRequest,
    BulkResult,
    RiskCreate,
    RiskOut,
    RiskUpdate,
)
from openrisk.risks.scoring import compute_score, severity_for

_SNAPSHOT_FIELDS = (
    "title",
    "description",
    "impact",
    "probability",
    "score",
    "severity",
    "status",
    "treatment",
    "owner_id",
    "tags",
    "frameworks",
    "custom_fields",
    "review_date",
    "external_id",
)


@dataclass
class RiskRecord:
    """A risk with the ids of its linked assets (what the API returns)."""

    risk: Risk
    asset_ids: list[uuid.UUID]

    def out(self) -> RiskOut:
        return RiskOut.model_validate(payload(self.risk, self.asset_ids))


def payload(risk: Risk, asset_ids: Sequence[uuid.UUID]) -> dict[str, Any]:
    return {
        "id": risk.id,
        "title": risk.title,
        "description": risk.description,
        "impact": risk.impact,
        "probability": risk.probability,
        "score": risk.score,
        "severity": risk.severity,
        "status": risk.status,
        "treatment": risk.treatment,
        "owner_id": risk.owner_id,
        "tags": risk.tags,
        "frameworks": risk.frameworks,
        "asset_ids": list(asset_ids),
        "custom_fields": risk.custom_fields,
        "review_date": risk.review_date,
        "version": risk.version,
        "source": risk.source,
        "external_id": risk.external_id,
        "created_by": risk.created_by,
        "created_at": risk.created_at,
        "updated_at": risk.updated_at,
    }


def snapshot(risk: Risk, asset_ids: Iterable[uuid.UUID]) -> dict[str, Any]:
    values = {name: getattr(risk, name) for name in _SNAPSHOT_FIELDS}
    values["score"] = Decimal(values["score"]).quantize(Decimal("0.01"))
    values["asset_ids"] = sorted(str(a) for a in asset_ids)
    return to_json(values)  # type: ignore[no-any-return]


def _event(kind: str, context: RequestContext, record_: RiskRecord) -> DomainEvent:
    return DomainEvent(
        type=f"risk.{kind}",
        tenant_id=record_.risk.tenant_id,
        resource_id=record_.risk.id,
        data=record_.out().model_dump(mode="json"),
        actor_id=context.user_id,
    )


# --------------------------------------------------------------------------- reading


async def asset_ids_for(
    session: AsyncSession, risk_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[uuid.UUID]]:
    """Linked asset ids of many risks in one query."""
    links: dict[uuid.UUID, list[uuid.UUID]] = defaultdict(list)
    if not risk_ids:
        return links
    rows = await session.execute(
        select(RiskAsset.risk_id, RiskAsset.asset_id)
        .where(RiskAsset.risk_id.in_(list(risk_ids)))
        .order_by(RiskAsset.risk_id, RiskAsset.asset_id)
    )
    for risk_id, asset_id in rows:
        links[risk_id].append(asset_id)
    return links


async def records(session: AsyncSession, risks: Sequence[Risk]) -> list[RiskRecord]:
    links = await asset_ids_for(session, [r.id for r in risks])
    return [RiskRecord(risk, links.get(risk.id, [])) for risk in risks]


async def get_risk(session: AsyncSession, *, tenant_id: uuid.UUID, risk_id: uuid.UUID) -> Risk:
    risk = await session.scalar(select(Risk).where(Risk.id == risk_id, *queries.live(tenant_id)))
    if risk is None:
        raise NotFound("Risk not found.")
    return risk


async def get_record(
    session: AsyncSession, *, tenant_id: uuid.UUID, risk_id: uuid.UUID
) -> RiskRecord:
    risk = await get_risk(session, tenant_id=tenant_id, risk_id=risk_id)
    return (await records(session, [risk]))[0]


async def custom_filters(
    session: AsyncSession, *, tenant_id: uuid.UUID, raw: Mapping[str, str]
) -> tuple[tuple[str, Any], ...]:
    """``cf_<name>=value`` query parameters → typed (name, value); unknown names are ignored."""
    if not raw:
        return ()
    fields = await session.scalars(
        select(CustomField).where(
            CustomField.tenant_id == tenant_id, CustomField.name.in_(list(raw))
        )
    )
    parsed: list[tuple[str, Any]] = []
    for field in fields:
        try:
            parsed.append((field.name, coerce(field, raw[field.name])))
        except InvalidValue as problem:
            raise ValidationFailed.field(f"cf_{field.name}", str(problem)) from None
    return tuple(sorted(parsed))


async def list_risks(
    session: AsyncSession,
    *,
    tenant_id: uuid.UUID,
    filters: RiskFilters,
    sort: SortField = SortField.CREATED_AT,
    order: SortOrder = SortOrder.DESC,
    offset: int = 0,
    limit: int = 20,
) -> tuple[list[RiskRecord], int]:
    """One page and the total in one statement (the count and each risk's asset ids are
    subqueries), whatever the page size or the number of links per risk."""
    dialect = dialect_name(session)
    where = queries.conditions(dialect, tenant_id, filters)
    total_column = (
        count_expression(dialect, tenant_id, filters)
        .correlate(None)
        .scalar_subquery()
        .label("total")
    )
    rows = (
        await session.execute(
            select(Risk, _asset_ids_column(dialect), total_column)
            .where(*where)
            .order_by(*queries.order_by(sort, order))
            .offset(offset)
            .limit(limit)
        )
    ).all()
    if rows:
        total = int(rows[0][2] or 0)
    else:  # a page past the end (or nothing matches): count on its own
        total = await count_risks(session, tenant_id=tenant_id, filters=filters)
    return [RiskRecord(risk, _parse_asset_ids(ids)) for risk, ids, _ in rows], total


async def search_risks(
    session: AsyncSession, *, tenant_id: uuid.UUID, q: str, offset: int = 0, limit: int = 20
) -> tuple[list[tuple[RiskRecord, float]], int]:
    """Ranked full-text search over title (weighted higher) and description."""
    words = queries.search_words(q)
    if not words:
        return [], 0
    dialect = dialect_name(session)
    page = queries.ranked_page(dialect, tenant_id, words, offset=offset, limit=limit).subquery()
    rows = (
        await session.execute(
            select(Risk, page.c.rank, page.c.total, _asset_ids_column(dialect))
            .join(page, page.c.risk_id == Risk.id)
            .where(*queries.live(tenant_id))
            .order_by(page.c.rank.desc(), page.c.risk_id)
        )
    ).all()
    if rows:
        total = int(rows[0][2])
    else:  # a page past the end: count on its own
        found = queries.matches(dialect, tenant_id, words).subquery()
        total = int(await session.scalar(select(func.count()).select_from(found)) or 0)
    return [(RiskRecord(row[0], _parse_asset_ids(row[3])), float(row[1])) for row in rows], total


async def matrix(
    session: AsyncSession, *, tenant_id: uuid.UUID, filters: RiskFilters | None = None
) -> dict[str, Any]:
    """5×5 impact × probability counts, all 25 cells: from the cell roll-up (at most 125 rows)
    when filtering by status at most, else GROUP BY over the matching risks."""
    filters = filters or RiskFilters()
    if filters.only_status():
        where = [RiskCellCount.tenant_id == tenant_id]
        if filters.status:
            where.append(RiskCellCount.status.in_(filters.status))
        rows = await session.execute(
            select(RiskCellCount.impact, RiskCellCount.probability, func.sum(RiskCellCount.n))
            .where(*where)
            .group_by(RiskCellCount.impact, RiskCellCount.probability)
        )
    else:
        where = queries.conditions(dialect_name(session), tenant_id, filters)
        rows = await session.execute(
            select(Risk.impact, Risk.probability, func.count())
            .where(*where)
            .group_by(Risk.impact, Risk.probability)
        )
    counts = {(int(i), int(p)): int(n or 0) for i, p, n in rows}
    cells = [
        {"impact": i, "probability": p, "count": counts.get((i, p), 0)}
        for i in range(1, 6)
        for p in range(1, 6)
    ]
    return {"cells": cells, "total": sum(counts.values())}


def count_expression(dialect: str, tenant_id: uuid.UUID, filters: RiskFilters) -> Any:
    """SQL for how many live risks match: from the label table when the only filter is one
    tag/framework/custom value (an index range), from the day roll-up when filtering by
    status and severity at most (a few hundred rows), else COUNT over the matching risks."""
    label = filters.single_label()
    if label is not None:
        kind, value = label
        return (
            select(func.count())
            .select_from(RiskLabel)
            .where(
                RiskLabel.tenant_id == tenant_id,
                RiskLabel.kind == kind,
                RiskLabel.value == labels.canonical(value),
            )
        )
    if filters.only_status_and_severity():
        where = [RiskDayCount.tenant_id == tenant_id]
        if filters.status:
            where.append(RiskDayCount.status.in_(filters.status))
        if filters.severity:
            where.append(RiskDayCount.severity.in_(filters.severity))
        return select(func.coalesce(func.sum(RiskDayCount.n), 0)).where(*where)
    where = queries.conditions(dialect, tenant_id, filters)
    return select(func.count()).select_from(Risk).where(*where)


async def count_risks(session: AsyncSession, *, tenant_id: uuid.UUID, filters: RiskFilters) -> int:
    total = await session.scalar(count_expression(dialect_name(session), tenant_id, filters))
    return int(total or 0)


def _asset_ids_column(dialect: str) -> Any:
    """The risk's linked asset ids, aggregated in a correlated subquery (no extra round trip)."""
    if dialect == "postgresql":
        aggregate: Any = func.array_agg(aggregate_order_by(RiskAsset.asset_id, RiskAsset.asset_id))
    else:
        aggregate = func.group_concat(RiskAsset.asset_id)
    return (
        select(aggregate)
        .where(RiskAsset.risk_id == Risk.id)
        .correlate(Risk)
        .scalar_subquery()
        .label("asset_ids")
    )


def _parse_asset_ids(value: Any) -> list[uuid.UUID]:
    if not value:
        return []
    if isinstance(value, str):  # SQLite: comma-separated hex
        return sorted(uuid.UUID(part) for part in value.split(","))
    return [v if isinstance(v, uuid.UUID) else uuid.UUID(str(v)) for v in value]


async def list_history(
    session: AsyncSession, *, tenant_id: uuid.UUID, risk_id: uuid.UUID, offset: int, limit: int
) -> tuple[list[RiskHistory], int]:
    """A live risk's history, newest first."""
    await get_risk(session, tenant_id=tenant_id, risk_id=risk_id)
    where = (RiskHistory.tenant_id == tenant_id, RiskHistory.risk_id == risk_id)
    total = await session.scalar(select(func.count()).select_from(RiskHistory).where(*where))
    rows = await session.scalars(
        select(RiskHistory)
        .where(*where)
        .order_by(RiskHistory.created_at.desc(), RiskHistory.id.desc())
        .offset(offset)
        .limit(limit)
    )
    return list(rows), int(total or 0)


# --------------------------------------------------------------------------- validation


async def asset_criticalities(
    session: AsyncSession, *, tenant_id: uuid.UUID, asset_ids: Sequence[uuid.UUID]
) -> list[str]:
    """Criticalities of the given live assets of the tenant; 422 naming asset_ids otherwise."""
    if not asset_ids:
        return []
    rows = (
        await session.execute(
            select(Asset.id, Asset.criticality).where(
                Asset.tenant_id == tenant_id,
                Asset.deleted_at.is_(None),
                Asset.id.in_(list(asset_ids)),
            )
        )
    ).all()
    found = {asset_id: crit for asset_id, crit in rows}
    missing = [str(a) for a in asset_ids if a not in found]
    if missing:
        raise ValidationFailed.field("asset_ids", "unknown asset(s): " + ", ".join(missing))
    return [found[a] for a in asset_ids]


async def _linked_criticalities(
    session: AsyncSession, risk_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[str]]:
    crits: dict[uuid.UUID, list[str]] = defaultdict(list)
    if not risk_ids:
        return crits
    rows = await session.execute(
        select(RiskAsset.risk_id, Asset.criticality)
        .join(Asset, Asset.id == RiskAsset.asset_id)
        .where(RiskAsset.risk_id.in_(list(risk_ids)), Asset.deleted_at.is_(None))
    )
    for risk_id, crit in rows:
        crits[risk_id].append(crit)
    return crits


async def _custom_values(
    session: AsyncSession,
    *,
    tenant_id: uuid.UUID,
    values: Mapping[str, Any],
    current: Mapping[str, Any] | None,
    enforce_required: bool,
) -> dict[str, Any]:
    definitions = list(
        await session.scalars(select(CustomField).where(CustomField.tenant_id == tenant_id))
    )
    merged, errors = validate_values(
        definitions, values, current=current, enforce_required=enforce_required
    )
    if errors:
        raise ValidationFailed(
            "Invalid value for: " + ", ".join(e["field"] for e in errors), errors=errors
        )
    return merged


def parse_if_match(header: str | None) -> int | None:
    """``"3"``, ``W/"3"`` or ``3`` → 3; ``*`` → None (any); anything else cannot match → 412."""
    if header is None:
        return None
    value = header.strip()
    if value == "*":
        return None
    value = value.removeprefix("W/").strip('"')
    if not value.isdigit() or len(value) > 10:
        raise PreconditionFailed('If-Match must carry the risk\'s current version, e.g. "3".')
    return int(value)


# --------------------------------------------------------------------------- writing


@dataclass
class RowError:
    """A problem with one item of a batch: ``status`` 403 (permission) or 422 (value)."""

    index: int
    status: int
    field: str
    message: str


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
    definitions = list(
        await session.scalars(select(CustomField).where(CustomField.tenant_id == context.tenant_id))
    )
    wanted_owners = {i.owner_id for i in items if i.owner_id and i.owner_id != context.user_id}
    members = await members_of(session, tenant_id=context.tenant_id, user_ids=wanted_owners)
    wanted_assets = {a for i in items for a in i.asset_ids}
    crit_by_asset: dict[uuid.UUID, str] = {}
    if wanted_assets:
        rows = await session.execute(
            select(Asset.id, Asset.criticality).where(
                Asset.tenant_id == context.tenant_id,
                Asset.deleted_at.is_(None),
                Asset.id.in_(list(wanted_assets)),
            )
        )
        crit_by_asset = {asset_id: crit for asset_id, crit in rows}

    errors: list[RowError] = []
    created: list[RiskRecord] = []
    now = utcnow()
    for index, data in enumerate(items):
        problems: list[RowError] = []
        if data.status is RiskStatus.ACCEPTED and not context.has("risk:accept"):
            problems.append(RowError(index, 403, "status", "Missing permission risk:accept"))
        owner_id = data.owner_id or context.user_id
        if owner_id != context.user_id:
            if not context.has_any_scope("risk:assign"):
                problems.append(RowError(index, 403, "owner_id", "Missing permission risk:assign"))
            elif owner_id not in members:
                problems.append(RowError(index, 422, "owner_id", "must be a member of this tenant"))
        missing = [str(a) for a in data.asset_ids if a not in crit_by_asset]
        if missing:
            problems.append(
                RowError(index, 422, "asset_ids", "unknown asset(s): " + ", ".join(missing))
            )
        custom, custom_errors = validate_values(definitions, data.custom_fields)
        problems.extend(RowError(index, 422, e["field"], e["message"]) for e in custom_errors)
        if problems:
            errors.extend(problems)
            continue
        score = compute_score(
            data.impact, data.probability, [crit_by_asset[a] for a in data.asset_ids]
        )
        risk = Risk(
            id=uuid.uuid4(),
            tenant_id=context.tenant_id,
            title=data.title,
            description=data.description,
            impact=data.impact,
            probability=data.probability,
            score=score,
            severity=severity_for(score).value,
            status=data.status.value,
            treatment=data.treatment.value,
            owner_id=owner_id,
            tags=data.tags,
            frameworks=data.frameworks,
            source=source or data.source.value,
            external_id=data.external_id,
            review_date=data.review_date,
            custom_fields=custom,
            version=1,
            created_by=context.user_id,
            created_at=now,
            updated_at=now,
        )
        created.append(RiskRecord(risk, list(data.asset_ids)))
    if not created:
        return created, errors

    session.add_all([c.risk for c in created])
    await session.flush()
    await labels.add(session, [c.risk for c in created])
    links = [
        {"risk_id": c.risk.id, "asset_id": a, "tenant_id": context.tenant_id}
        for c in created
        for a in c.asset_ids
    ]
    if links:
        await session.execute(insert(RiskAsset), links)
    entries = []
    for c in created:
        after = snapshot(c.risk, c.asset_ids)
        entries.append(
            history.HistoryEntry(
                tenant_id=c.risk.tenant_id,
                risk_id=c.risk.id,
                action=HistoryAction.CREATE,
                impact=c.risk.impact,
                probability=c.risk.probability,
                score=Decimal(c.risk.score),
                severity=c.risk.severity,
                status=c.risk.status,
                changed_by=context.user_id,
                changes=diff({}, after),
                created_at=now,
            )
        )
        record(
            session,
            context=context,
            action="risk.create",
            resource_type="risk",
            resource_id=c.risk.id,
            changes=diff({}, after),
        )
    await history.append(session, entries)
    return created, errors


def raise_row_errors(errors: Sequence[RowError]) -> None:
    if not errors:
        return
    forbidden = [e for e in errors if e.status == 403]
    if forbidden:
        raise Forbidden(forbidden[0].message)
    raise ValidationFailed(
        "Invalid value for: " + ", ".join(e.field for e in errors),
        errors=[{"field": e.field, "message": e.message, "type": "value_error"} for e in errors],
    )


async def create_risk(
    session: AsyncSession,
    *,
    context: RequestContext,
    data: RiskCreate,
    events: EventBus | None = None,
) -> RiskRecord:
    created, errors = await create_many(session, context=context, items=[data])
    raise_row_errors(errors)
    result = created[0]
    await commit_and_publish(session, events, [_event("created", context, result)])
    return result


async def update_risk(
    session: AsyncSession,
    *,
    context: RequestContext,
    risk_id: uuid.UUID,
    data: RiskUpdate,
    if_match: str | int | None = None,
    events: EventBus | None = None,
    commit: bool = True,
) -> RiskRecord:
    """Partial update; ``if_match`` (a version or an If-Match header value) guards it (412)."""
    risk = await get_risk(session, tenant_id=context.tenant_id, risk_id=risk_id)
    header_version = parse_if_match(if_match) if isinstance(if_match, str) else if_match
    for expected in (header_version, data.version):
        if expected is not None and expected != risk.version:
            raise PreconditionFailed(
                f"The risk was changed meanwhile (version {risk.version}, "
                f"you sent {expected}); reload it and retry."
            )
    context.require_on("risk:update", risk.owner_id)
    changes = data.model_dump(exclude_unset=True, exclude={"version"})
    for name in NOT_NULLABLE & set(changes):
        if changes[name] is None:
            raise ValidationFailed.field(name, "must not be null")
    current_assets = (await asset_ids_for(session, [risk.id])).get(risk.id, [])
    before = snapshot(risk, current_assets)

    if "owner_id" in changes and changes["owner_id"] != risk.owner_id:
        context.require("risk:assign")
        await ensure_member(
            session, tenant_id=context.tenant_id, user_id=changes["owner_id"], field="owner_id"
        )
    if changes.get("status") == RiskStatus.ACCEPTED and risk.status != RiskStatus.ACCEPTED:
        context.require("risk:accept")

    new_assets = current_assets
    if "asset_ids" in changes:
        new_assets = list(changes.pop("asset_ids"))
    if "custom_fields" in changes:
        changes["custom_fields"] = await _custom_values(
            session,
            tenant_id=context.tenant_id,
            values=changes["custom_fields"],
            current=risk.custom_fields,
            enforce_required=True,
        )
    assets_changed = sorted(new_assets) != sorted(current_assets)
    scoring_changed = assets_changed or any(k in changes for k in ("impact", "probability"))
    for name, value in changes.items():
        setattr(risk, name, value.value if hasattr(value, "value") else value)
    if scoring_changed:
        crits = await asset_criticalities(
            session, tenant_id=context.tenant_id, asset_ids=new_assets
        )
        score = compute_score(risk.impact, risk.probability, crits)
        risk.score, risk.severity = score, severity_for(score).value

    after = snapshot(risk, new_assets)
    changed = diff(before, after)
    if not changed:
        return RiskRecord(risk, current_assets)
    prev_status = before["status"]
    risk.updated_at = utcnow()
    try:
        await session.flush()
    except StaleDataError as error:
        raise PreconditionFailed("The risk was changed meanwhile; reload it and retry.") from error
    if {"tags", "frameworks", "custom_fields"} & set(changed):
        await labels.replace(session, [risk])
    if assets_changed:
        await session.execute(delete(RiskAsset).where(RiskAsset.risk_id == risk.id))
        if new_assets:
            await session.execute(
                insert(RiskAsset),
                [
                    {"risk_id": risk.id, "asset_id": a, "tenant_id": context.tenant_id}
                    for a in new_assets
                ],
            )
    action = HistoryAction.STATUS_CHANGE if "status" in changed else HistoryAction.UPDATE
    await history.append(
        session,
        [
            history.HistoryEntry(
                tenant_id=risk.tenant_id,
                risk_id=risk.id,
                action=action,
                impact=risk.impact,
                probability=risk.probability,
                score=Decimal(risk.score),
                severity=risk.severity,
                status=risk.status,
                prev_score=Decimal(str(before["score"])),
                prev_status=prev_status,
                changed_by=context.user_id,
                changes=changed,
                created_at=risk.updated_at,
                prev_impact=before["impact"],
                prev_probability=before["probability"],
                risk_created_at=risk.created_at,
            )
        ],
    )
    record(
        session,
        context=context,
        action="risk.update",
        resource_type="risk",
        resource_id=risk.id,
        changes=changed,
    )
    result = RiskRecord(risk, new_assets)
    if commit:
        await commit_and_publish(session, events, [_event("updated", context, result)])
    return result


async def _soft_delete(
    session: AsyncSession, *, context: RequestContext, risks: Sequence[Risk]
) -> None:
    """Mark risks (and their mitigations) deleted, with history and audit rows; no commit."""
    if not risks:
        return
    now = utcnow()
    for risk in risks:
        risk.deleted_at = now
        risk.updated_at = now
    try:
        await session.flush()
    except StaleDataError as error:
        raise PreconditionFailed("A risk was changed meanwhile; reload it and retry.") from error
    await labels.remove(session, [r.id for r in risks])
    await rollups.apply_mitigation_changes(
        session,
        await rollups.live_mitigations_of(
            session, tenant_id=context.tenant_id, risk_ids=[r.id for r in risks]
        ),
    )
    await session.execute(
        update(Mitigation)
        .where(
            Mitigation.tenant_id == context.tenant_id,
            Mitigation.risk_id.in_([r.id for r in risks]),
            Mitigation.deleted_at.is_(None),
        )
        .values(deleted_at=now, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    await history.append(
        session,
        [
            history.HistoryEntry(
                tenant_id=risk.tenant_id,
                risk_id=risk.id,
                action=HistoryAction.DELETE,
                impact=risk.impact,
                probability=risk.probability,
                score=Decimal(risk.score),
                severity=risk.severity,
                status=risk.status,
                prev_score=Decimal(risk.score),
                prev_status=risk.status,
                changed_by=context.user_id,
                changes={"deleted_at": {"before": None, "after": now.isoformat()}},
                created_at=now,
                risk_created_at=risk.created_at,
            )
            for risk in risks
        ],
    )
    for risk in risks:
        record(
            session,
            context=context,
            action="risk.delete",
            resource_type="risk",
            resource_id=risk.id,
            changes={"deleted_at": {"before": None, "after": now.isoformat()}},
        )


def _deleted_event(context: RequestContext, risk: Risk) -> DomainEvent:
    return DomainEvent(
        type="risk.deleted",
        tenant_id=risk.tenant_id,
        resource_id=risk.id,
        data={"id": str(risk.id), "title": risk.title},
        actor_id=context.user_id,
    )


async def delete_risk(
    session: AsyncSession,
    *,
    context: RequestContext,
    risk_id: uuid.UUID,
    events: EventBus | None = None,
) -> None:
    risk = await get_risk(session, tenant_id=context.tenant_id, risk_id=risk_id)
    context.require_on("risk:delete", risk.owner_id)
    await _soft_delete(session, context=context, risks=[risk])
    await commit_and_publish(session, events, [_deleted_event(context, risk)])


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

    Returns the ``risk.updated`` events to publish after the caller's commit.
    """
    await session.flush()
    affected = select(RiskAsset.risk_id).where(
        RiskAsset.tenant_id == tenant_id, RiskAsset.asset_id.in_(list(asset_ids))
    )
    rows = (
        await session.execute(
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
    ).all()
    if not rows:
        return []
    crits = await _linked_criticalities(session, [r.id for r in rows])
    now = utcnow()
    updates: list[dict[str, Any]] = []
    entries: list[history.HistoryEntry] = []
    for row in rows:
        score = compute_score(row.impact, row.probability, crits.get(row.id, []))
        if score == Decimal(row.score).quantize(Decimal("0.01")):
            continue
        severity = severity_for(score).value
        updates.append(
            {"rid": row.id, "new_score": score, "new_severity": severity, "version": row.version}
        )
        entries.append(
            history.HistoryEntry(
                tenant_id=tenant_id,
                risk_id=row.id,
                action=HistoryAction.SCORE_CHANGE,
                impact=row.impact,
                probability=row.probability,
                score=score,
                severity=severity,
                status=row.status,
                prev_score=Decimal(row.score),
                prev_status=row.status,
                changed_by=changed_by,
                changes={
                    **diff(
                        {"score": float(row.score), "severity": row.severity},
                        {"score": float(score), "severity": severity},
                    ),
                    "reason": reason,
                },
                created_at=now,
                risk_created_at=row.created_at,
            )
        )
    if not updates:
        return []
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
        updates,
    )
    await history.append(session, entries)
    changed_ids = {u["rid"] for u in updates}
    for obj in list(session.identity_map.values()):
        if isinstance(obj, Risk) and obj.id in changed_ids:
            session.expire(obj)
    return [
        DomainEvent(
            type="risk.updated",
            tenant_id=tenant_id,
            resource_id=u["rid"],
            data={
                "id": str(u["rid"]),
                "score": float(u["new_score"]),
                "severity": u["new_severity"],
                "version": u["version"] + 1,
                "reason": reason,
            },
            actor_id=changed_by,
        )
        for u in updates
    ]


# --------------------------------------------------------------------------- bulk


def _bulk_permission(action: BulkAction) -> str:
    return {
        BulkAction.update: "risk:update",
        BulkAction.delete: "risk:delete",
        BulkAction.assign: "risk:assign",
    }[action]


async def bulk(
    session: AsyncSession,
    *,
    context: RequestContext,
    request: BulkRequest,
    events: EventBus | None = None,
) -> BulkResult:
    """Apply one action to many risks; each row is checked and reported on its own."""
    permission = _bulk_permission(request.action)
    context.require(permission)
    changes: dict[str, Any] = {}
    if request.action is BulkAction.update:
        if request.changes is None:
            raise ValidationFailed.field("changes", "is required for action=update")
        changes = request.changes.model_dump(exclude_unset=True)
        for name in ("impact", "probability", "status", "treatment"):
            if name in changes and changes[name] is None:
                raise ValidationFailed.field(f"changes.{name}", "must not be null")
        if not changes:
            raise ValidationFailed.field("changes", "must change at least one field")
        if changes.get("status") == RiskStatus.ACCEPTED:
            context.require("risk:accept")
    if request.action is BulkAction.assign:
        if request.owner_id is None:
            raise ValidationFailed.field("owner_id", "is required for action=assign")
        await ensure_member(
            session, tenant_id=context.tenant_id, user_id=request.owner_id, field="owner_id"
        )

    found = {
        r.id: r
        for r in await session.scalars(
            select(Risk).where(Risk.id.in_(request.ids), *queries.live(context.tenant_id))
        )
    }
    links = await asset_ids_for(session, list(found))
    rescoring = any(k in changes for k in ("impact", "probability"))
    crits = await _linked_criticalities(session, list(found)) if rescoring else {}

    results: list[BulkItem] = []
    done: list[tuple[Risk, dict[str, Any], dict[str, Any]]] = []
    seen: set[uuid.UUID] = set()
    for index, risk_id in enumerate(request.ids):
        risk = found.get(risk_id)
        if risk_id in seen:
            results.append(_bulk_error(index, risk_id, 422, "duplicate id in this request"))
            continue
        seen.add(risk_id)
        if risk is None:
            results.append(_bulk_error(index, risk_id, 404, "Risk not found."))
            continue
        try:
            context.require_on(permission, risk.owner_id)
            if request.action is BulkAction.assign:
                context.require_on("risk:update", risk.owner_id)
        except Forbidden as denied:
            results.append(_bulk_error(index, risk_id, 403, denied.detail))
            continue
        before = snapshot(risk, links.get(risk.id, []))
        if request.action is BulkAction.update:
            _apply_bulk_changes(risk, changes, crits.get(risk.id, []))
        elif request.action is BulkAction.assign:
            risk.owner_id = request.owner_id
        after = snapshot(risk, links.get(risk.id, []))
        results.append(BulkItem(index=index, id=risk_id, status="ok", code=200))
        done.append((risk, before, after))

    to_publish: list[DomainEvent] = []
    if request.action is BulkAction.delete:
        await _soft_delete(session, context=context, risks=[r for r, _, _ in done])
        to_publish = [_deleted_event(context, r) for r, _, _ in done]
    else:
        changed = [(r, b, a) for r, b, a in done if diff(b, a)]
        now = utcnow()
        for risk, _, _ in changed:
            risk.updated_at = now
        try:
            await session.flush()
        except StaleDataError as error:
            raise PreconditionFailed("A risk was changed meanwhile; retry.") from error
        entries = []
        for risk, before, after in changed:
            delta = diff(before, after)
            entries.append(
                history.HistoryEntry(
                    tenant_id=risk.tenant_id,
                    risk_id=risk.id,
                    action=HistoryAction.STATUS_CHANGE
                    if "status" in delta
                    else HistoryAction.UPDATE,
                    impact=risk.impact,
                    probability=risk.probability,
                    score=Decimal(risk.score),
                    severity=risk.severity,
                    status=risk.status,
                    prev_score=Decimal(str(before["score"])),
                    prev_status=before["status"],
                    changed_by=context.user_id,
                    changes=delta,
                    created_at=now,
                    prev_impact=before["impact"],
                    prev_probability=before["probability"],
                    risk_created_at=risk.created_at,
                )
            )
            record(
                session,
                context=context,
                action=f"risk.bulk_{request.action.value}",
                resource_type="risk",
                resource_id=risk.id,
                changes=delta,
            )
            to_publish.append(_event("updated", context, RiskRecord(risk, links.get(risk.id, []))))
        await history.append(session, entries)
        await labels.replace(session, [r for r, b, a in changed if b["tags"] != a["tags"]])
    await commit_and_publish(session, events, to_publish)
    ok = sum(1 for r in results if r.status == "ok")
    return BulkResult(
        action=request.action, succeeded=ok, failed=len(results) - ok, results=results
    )


def _bulk_error(index: int, risk_id: uuid.UUID, code: int, message: str) -> BulkItem:
    return BulkItem(index=index, id=risk_id, status="error", code=code, error=message)


def _apply_bulk_changes(risk: Risk, changes: Mapping[str, Any], crits: list[str]) -> None:
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
    if "impact" in changes or "probability" in changes:
        score = compute_score(risk.impact, risk.probability, crits)
        risk.score, risk.severity = score, severity_for(score).value
