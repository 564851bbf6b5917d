"""Reading the register: records with their asset links, lists, search, matrix, counts, history.

Every query is scoped to the caller's tenant; anything outside it is NotFound.
"""

from __future__ import annotations

import functools
import uuid
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import Row, bindparam, exists, func, literal, select
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.ext.asyncio import AsyncSession

from openrisk.assets.models import Asset
from openrisk.core.cache.response import compute_etag
from openrisk.core.db.bulk import among
from openrisk.core.db.estimates import planned_rows
from openrisk.core.errors import (
    NotFound,
    ValidationFailed,
)
from openrisk.custom_fields.models import CustomField
from openrisk.custom_fields.values import InvalidValue, coerce
from openrisk.methodology import clock, store
from openrisk.risks import documents, labels, queries
from openrisk.risks.common import (
    dialect_name,
)
from openrisk.risks.enums import SortField, SortOrder
from openrisk.risks.models import (
    Risk,
    RiskAsset,
    RiskCellCount,
    RiskDayCount,
    RiskHistory,
    RiskLabel,
    RiskLevelCell,
)
from openrisk.risks.queries import RiskFilters
from openrisk.risks.schemas import (
    RiskOut,
)

# Beyond this many matches a list's total is the planner's estimate (PostgreSQL): counting every
# match of a broad filter exactly cost more than the page itself (docs/performance.md).
COUNT_LIMIT = 1_000  # the default of OPENRISK_LIST_EXACT_COUNT_LIMIT


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
        "asset_ids": sorted(asset_ids),  # one order on both databases: a stable ETag
        "custom_fields": risk.custom_fields,
        "review_date": risk.review_date,
        "acceptance_expires_on": risk.acceptance_expires_on,
        "last_reviewed_on": risk.last_reviewed_on,
        "next_review_date": risk.next_review_date,
        "review_status": documents.review_status(risk.next_review_date, clock.today()),
        "version": risk.version,
        "source": risk.source,
        "external_id": risk.external_id,
        "created_by": risk.created_by,
        "created_at": risk.created_at,
        "updated_at": risk.updated_at,
        **documents.other_levels(risk),
    }


async def asset_ids_for(
    session: AsyncSession, risk_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[uuid.UUID]]:
    """Linked asset ids of many risks in one query."""
    links: dict[uuid.UUID, list[uuid.UUID]] = defaultdict(list)
    if not risk_ids:
        return links
    rows = await session.execute(
        select(RiskAsset.risk_id, RiskAsset.asset_id)
        .where(among(session, RiskAsset.risk_id, risk_ids))
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


@dataclass(frozen=True, slots=True)
class ListedRisk:
    """A risk as read for display: its columns (``queries.RISK_COLUMNS``) and asset ids."""

    risk: Any  # a result Row: attribute access by column name, like the ORM object
    asset_ids: list[uuid.UUID]

    def document(self, *, today: date | None = None) -> dict[str, Any]:
        return documents.risk(self.risk, self.asset_ids, today=today)

    def etag(self) -> str:
        """The strong ETag ``GET /risks/{id}`` answers for this state (the hash of the same
        bytes): the optimistic-locking token a client sends back as If-Match."""
        return compute_etag(documents.dumps(self.document()))


@dataclass(frozen=True)
class RiskPage:
    """One page of a list: its risks, the total (exact or estimated) and, when more rows
    follow, the sort key values of its last row (where the next page starts)."""

    items: list[ListedRisk]
    total: int
    total_is_estimate: bool = False
    next_after: tuple[Any, ...] | None = None


async def list_risks(
    session: AsyncSession,
    *,
    tenant_id: uuid.UUID,
    filters: RiskFilters,
    sort: SortField = SortField.CREATED_AT,
    order: SortOrder = SortOrder.DESC,
    offset: int = 0,
    limit: int = 20,
    after: Sequence[Any] | None = None,
    count_limit: int = COUNT_LIMIT,
    with_total: bool = True,
) -> RiskPage:
    """One page, its total and its risks' asset ids in one statement, whatever the page size,
    the page number or the number of links per risk.

    ``after`` (the sort key values of the previous page's last row) starts the page there
    (keyset pagination), else ``offset`` rows are skipped. Either way the page's ids are found
    first from the sort's index alone, and only the page's rows are then read and joined to
    their asset links.
    """
    dialect = dialect_name(session)
    limit_for_count = count_limit if dialect == "postgresql" else None
    start = tuple(after) if after is not None else None
    shape = (dialect, tenant_id, filters, sort, order, offset, limit, start, limit_for_count)
    try:
        statement, total_expression = _page_statements(*shape, with_total)
    except TypeError:  # an unhashable filter value (a custom field's list): built afresh
        statement, total_expression = _page_statements.__wrapped__(*shape, with_total)
    connection = await session.connection()  # plain rows: no ORM result machinery
    rows = (await connection.execute(statement)).all()
    if rows or not with_total:
        counted = int(rows[0].total or 0) if rows else 0
    else:  # a page past the end (or nothing matches): count on its own
        counted = int(await session.scalar(total_expression) or 0)
    total, estimated = await _total(session, dialect, tenant_id, filters, counted, limit_for_count)
    more = len(rows) > limit
    page = rows[:limit]
    return RiskPage(
        items=[ListedRisk(row, _parse_asset_ids(row.asset_ids)) for row in page],
        total=total,
        total_is_estimate=estimated,
        next_after=tuple(getattr(page[-1], k.key) for k in queries.sort_keys(sort))
        if more
        else None,
    )


@functools.lru_cache(maxsize=256)
def _page_statements(
    dialect: str,
    tenant_id: uuid.UUID,
    filters: RiskFilters,
    sort: SortField,
    order: SortOrder,
    offset: int,
    limit: int,
    after: tuple[Any, ...] | None,
    limit_for_count: int | None,
    with_total: bool,
) -> tuple[Any, Any]:
    """(the page's statement, its count's) for these inputs. Kept per process: building and
    keying a statement cost more Python than running it, and an uncached page is mostly the
    same page again after a write moved the cache's generations."""
    keys = queries.sort_keys(sort)
    ids = queries.page_keys(
        dialect, tenant_id, filters, sort, order, limit=limit, start_after=after, offset=offset
    )
    total_expression = count_expression(dialect, tenant_id, filters, limit=limit_for_count)
    total_column = (
        total_expression.correlate(None).scalar_subquery() if with_total else literal(0)
    ).label("total")
    statement = (
        select(*queries.RISK_COLUMNS, _asset_ids_column(dialect), total_column)
        .select_from(queries.with_quantification(ids.join(Risk, Risk.id == ids.c.id)))
        .where(Risk.tenant_id == tenant_id)
        .order_by(*queries.order_by(sort, order, [ids.c[k.key] for k in keys]))
    )
    return statement, total_expression


async def _total(
    session: AsyncSession,
    dialect: str,
    tenant_id: uuid.UUID,
    filters: RiskFilters,
    counted: int,
    limit: int | None,
) -> tuple[int, bool]:
    """(total, is an estimate): the count when it stayed within ``limit``, else the planner's
    estimate of the uncapped count, never below what was counted."""
    if limit is None or counted <= limit or exact_count_is_cheap(filters):
        return counted, False
    if queries.only_text(filters):
        statement = queries.planned_matches(tenant_id, queries.search_words(filters.q))
    else:
        statement = select(Risk.id).where(*queries.conditions(dialect, tenant_id, filters))
    estimate = await planned_rows(session, statement)
    return max(estimate or 0, counted), True


async def get_listed(
    session: AsyncSession, *, tenant_id: uuid.UUID, risk_id: uuid.UUID
) -> ListedRisk:
    """One live risk with its asset ids, in one statement."""
    connection = await session.connection()  # plain rows: no ORM result machinery
    row = (
        await connection.execute(
            _one_risk_statement(dialect_name(session)),
            {"one_risk": risk_id, "one_tenant": tenant_id},
        )
    ).first()
    if row is None:
        raise NotFound("Risk not found.")
    return ListedRisk(row, _parse_asset_ids(row.asset_ids))


@functools.cache
def _one_risk_statement(dialect: str) -> Any:
    """``get_listed``'s statement, built once with the risk and the tenant bound."""
    return (
        select(*queries.RISK_COLUMNS, _asset_ids_column(dialect))
        .select_from(queries.with_quantification(Risk.__table__))
        .where(
            Risk.id == bindparam("one_risk"),
            Risk.tenant_id == bindparam("one_tenant"),
            Risk.deleted_at.is_(None),
        )
    )


async def search_risks(
    session: AsyncSession, *, tenant_id: uuid.UUID, q: str, offset: int = 0, limit: int = 20
) -> tuple[list[tuple[ListedRisk, float]], int]:
    """Ranked full-text search over title (weighted higher) and description."""
    words = queries.search_words(q)
    if not words:
        return [], 0
    dialect = dialect_name(session)
    statement = _search_statement(dialect, tenant_id, tuple(words), offset, limit)
    connection = await session.connection()  # plain rows: no ORM result machinery
    rows = (await connection.execute(statement)).all()
    if rows:
        total = int(rows[0].total)
    else:  # a page past the end: count on its own
        found = queries.matches(dialect, tenant_id, words).subquery()
        total = int(await session.scalar(select(func.count()).select_from(found)) or 0)
    hits = [(ListedRisk(row, _parse_asset_ids(row.asset_ids)), float(row.rank)) for row in rows]
    return hits, total


@functools.lru_cache(maxsize=256)
def _search_statement(
    dialect: str, tenant_id: uuid.UUID, words: tuple[str, ...], offset: int, limit: int
) -> Any:
    """One ranked page with its total, kept per process like the list's statements."""
    page = queries.ranked_page(dialect, tenant_id, words, offset=offset, limit=limit).subquery()
    return (
        select(*queries.RISK_COLUMNS, page.c.rank, page.c.total, _asset_ids_column(dialect))
        .select_from(
            queries.with_quantification(Risk.__table__.join(page, page.c.risk_id == Risk.id))
        )
        .where(*queries.live(tenant_id))
        .order_by(page.c.rank.desc(), page.c.risk_id)
    )


MATRIX_BASES = ("inherent", "current", "residual", "target")


def _basis_levels(basis: str) -> tuple[Any, Any]:
    if basis == "current":
        return Risk.impact, Risk.probability
    return getattr(Risk, f"{basis}_impact"), getattr(Risk, f"{basis}_probability")


async def matrix(
    session: AsyncSession,
    *,
    tenant_id: uuid.UUID,
    filters: RiskFilters | None = None,
    basis: str = "current",
) -> dict[str, Any]:
    """Impact × probability counts on the tenant's N×M grid, every cell with its band and
    colour (the band of impact × probability alone), for one of the four levels: from the
    level's cell roll-up (at most N×M×5 rows) when filtering by status at most, else GROUP
    BY over the matching risks (risks without a target are left out of ``target``)."""
    filters = filters or RiskFilters()
    stamp = store.stamp_columns(tenant_id)  # the model's check rides on the counts' statement
    if basis == "current" and filters.only_status():
        where = [RiskCellCount.tenant_id == tenant_id]
        if filters.status:
            where.append(RiskCellCount.status.in_(filters.status))
        rows = await session.execute(
            select(
                RiskCellCount.impact, RiskCellCount.probability, func.sum(RiskCellCount.n), *stamp
            )
            .where(*where)
            .group_by(RiskCellCount.impact, RiskCellCount.probability)
        )
    elif basis != "current" and filters.only_status():
        where = [RiskLevelCell.tenant_id == tenant_id, RiskLevelCell.basis == basis]
        if filters.status:
            where.append(RiskLevelCell.status.in_(filters.status))
        rows = await session.execute(
            select(
                RiskLevelCell.impact, RiskLevelCell.probability, func.sum(RiskLevelCell.n), *stamp
            )
            .where(*where)
            .group_by(RiskLevelCell.impact, RiskLevelCell.probability)
        )
    else:
        impact, probability = _basis_levels(basis)
        where = queries.conditions(dialect_name(session), tenant_id, filters)
        rows = await session.execute(
            select(impact, probability, func.count(), *stamp)
            .where(*where, impact.is_not(None))
            .group_by(impact, probability)
        )
    found = rows.all()
    counts = {(int(r[0]), int(r[1])): int(r[2] or 0) for r in found}
    if found:
        model = await store.cached(
            session, tenant_id=tenant_id, stamp=store.stamp_of(found[0][3], found[0][4])
        )
    else:
        model = await store.load(session, tenant_id=tenant_id)
    scoring = model.scoring
    colors = {b.name: b.color for b in scoring.bands}
    cells = []
    for i in range(1, scoring.impact_levels + 1):
        for p in range(1, scoring.probability_levels + 1):
            band = scoring.severity(i * p)
            cells.append(
                {
                    "impact": i,
                    "probability": p,
                    "count": counts.get((i, p), 0),
                    "band": band,
                    "color": colors[band],
                }
            )
    return {
        "basis": basis,
        "impact_levels": _axis(model.definition["impact_levels"]),
        "probability_levels": _axis(model.definition["probability_levels"]),
        "cells": cells,
        "total": sum(counts.values()),
    }


def _axis(levels: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    return [{"value": int(lv["value"]), "name": str(lv["name"])} for lv in levels]


def exact_count_is_cheap(filters: RiskFilters) -> bool:
    """Counted from the label table or the day roll-up: exact whatever the size."""
    return filters.single_label() is not None or filters.only_status_and_severity()


def count_expression(
    dialect: str, tenant_id: uuid.UUID, filters: RiskFilters, *, limit: int | None = None
) -> Any:
    """SQL for how many live risks match: from the label table when the only filter is one
    tag/framework/custom value (an index range), from the day roll-up when filtering by
    status and severity at most (a few hundred rows), else COUNT over the matching risks (over
    the search table alone for a text filter alone), counting no further than ``limit + 1``
    when given."""
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
    if queries.only_text(filters):
        words = queries.search_words(filters.q)
        if words:
            return queries.count_text_capped(dialect, tenant_id, words, limit or 2**62)
    where = queries.conditions(dialect, tenant_id, filters)
    if limit is not None:
        return queries.count_capped(where, limit)
    return select(func.count()).select_from(Risk).where(*where)


async def count_risks(session: AsyncSession, *, tenant_id: uuid.UUID, filters: RiskFilters) -> int:
    total = await session.scalar(count_expression(dialect_name(session), tenant_id, filters))
    return int(total or 0)


@functools.cache
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
) -> tuple[list[Row[Any]], int]:
    """A live risk's history, newest first, and its length, in one statement (a second one
    only to tell an unknown risk from a page past the end)."""
    live_risk = exists().where(Risk.id == risk_id, *queries.live(tenant_id))
    rows = (
        await session.execute(
            select(RiskHistory.__table__, func.count().over().label("total"))
            .where(RiskHistory.tenant_id == tenant_id, RiskHistory.risk_id == risk_id, live_risk)
            .order_by(RiskHistory.created_at.desc(), RiskHistory.id.desc())
            .offset(offset)
            .limit(limit)
        )
    ).all()
    if rows:
        return list(rows), int(rows[0].total)
    await get_risk(session, tenant_id=tenant_id, risk_id=risk_id)
    total = await session.scalar(
        select(func.count())
        .select_from(RiskHistory)
        .where(RiskHistory.tenant_id == tenant_id, RiskHistory.risk_id == risk_id)
    )
    return [], int(total or 0)


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


async def linked_criticalities(
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
