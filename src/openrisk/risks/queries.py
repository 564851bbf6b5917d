"""SQL building blocks of the register: tenant-scoped filters, sort keys and full-text search.

Everything here filters, sorts and ranks in SQL, on both databases:
- tags/frameworks/custom fields: semi-joins on ``risk_labels`` (see ``risks.labels``);
- full text: ``risk_search.document @@ to_tsquery`` ranked by ts_rank on PostgreSQL (through
  the functions ``risk_text_matches`` and ``risk_text_ranked``, migration 0031); the FTS5
  table ``risks_fts`` ranked by bm25 on SQLite (both hold live risks only).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import (
    Select,
    and_,
    bindparam,
    column,
    func,
    literal,
    literal_column,
    select,
    table,
    true,
    tuple_,
)
from sqlalchemy.dialects.postgresql import TSVECTOR
from sqlalchemy.sql.elements import BindParameter, ColumnClause, ColumnElement
from sqlalchemy.types import Float, String, TypeDecorator, TypeEngine, Uuid

from openrisk.quantification.models import RiskQuantification
from openrisk.risks import labels
from openrisk.risks.enums import SortField, SortOrder
from openrisk.risks.models import Risk, RiskAsset

MAX_SEARCH_WORDS = 12
_WORD = re.compile(r"[^\W_]+", re.UNICODE)
# side tables of live risks kept by triggers (migration 0003), not ORM-mapped
_SEARCH = table(
    "risk_search",
    column("risk_id", Uuid()),
    column("tenant_id", Uuid()),
    column("document", TSVECTOR()),
)
_FTS = table("risks_fts", column("risk_id", Uuid()), column("tenant_id", Uuid()))
# title counts twice as much as the description (columns: risk_id, tenant_id, title, description)
_BM25: ColumnClause[Any] = literal_column("bm25(risks_fts, 0.0, 0.0, 10.0, 5.0)")
# what a read selects of a risk: everything the API shows (documents.risk), as plain columns
RISK_COLUMNS: tuple[Any, ...] = (
    *(c for c in Risk.__table__.c if c.name not in ("tenant_id", "deleted_at")),
    # the summary of its last simulation (reads outer-join ``risk_quantifications``)
    RiskQuantification.result["inherent"]["mean"].as_float().label("quant_ale_inherent"),
    RiskQuantification.result["residual"]["mean"].as_float().label("quant_ale_residual"),
    RiskQuantification.inputs["loss"]["currency"].as_string().label("quant_currency"),
    RiskQuantification.computed_at.label("quant_computed_at"),
)


def with_quantification(source: Any) -> Any:
    """``source`` (joining ``risks``) with the risk's quantification row, if any."""
    return source.outerjoin(
        RiskQuantification,
        and_(
            RiskQuantification.risk_id == Risk.id,
            RiskQuantification.tenant_id == Risk.tenant_id,
        ),
    )


@dataclass(frozen=True)
class RiskFilters:
    q: str | None = None
    status: tuple[str, ...] = ()
    severity: tuple[str, ...] = ()
    min_score: Decimal | None = None
    max_score: Decimal | None = None
    tags: tuple[str, ...] = ()
    frameworks: tuple[str, ...] = ()
    owner_id: uuid.UUID | None = None
    asset_id: uuid.UUID | None = None
    custom: tuple[tuple[str, Any], ...] = ()
    impact: tuple[int, ...] = ()  # any of (a heatmap cell is one impact and one probability)
    probability: tuple[int, ...] = ()
    above_appetite: bool | None = None
    residual_above_appetite: bool | None = None
    review: str | None = None  # overdue | due_soon, against review_today
    review_today: date | None = None

    def only_status_and_severity(self) -> bool:
        return not (
            (self.q and self.q.strip())
            or self.above_appetite is not None
            or self.review is not None
            or self.residual_above_appetite is not None
            or self.impact
            or self.probability
            or self.min_score is not None
            or self.max_score is not None
            or self.tags
            or self.frameworks
            or self.owner_id is not None
            or self.asset_id is not None
            or self.custom
        )

    def only_status(self) -> bool:
        return self.only_status_and_severity() and not self.severity

    def single_label(self) -> tuple[str, Any] | None:
        """(kind, value) when the only filter is one tag, framework or custom field value."""
        found = [(labels.TAG, t) for t in self.tags]
        found += [(labels.FRAMEWORK, f) for f in self.frameworks]
        found += [(labels.custom_kind(name), value) for name, value in self.custom]
        others = RiskFilters(
            q=self.q,
            status=self.status,
            severity=self.severity,
            min_score=self.min_score,
            max_score=self.max_score,
            owner_id=self.owner_id,
            asset_id=self.asset_id,
            impact=self.impact,
            probability=self.probability,
            above_appetite=self.above_appetite,
            residual_above_appetite=self.residual_above_appetite,
            review=self.review,
            review_today=self.review_today,
        )
        if len(found) == 1 and others.only_status() and not others.status:
            return found[0]
        return None


def search_words(q: str | None) -> list[str]:
    """Letters-and-digits words of a user query (never passed raw to a query parser)."""
    return _WORD.findall((q or "").lower())[:MAX_SEARCH_WORDS]


def _tsquery(words: Sequence[str]) -> ColumnElement[Any]:
    # every word must match, the last one as a prefix (search-as-you-type)
    # quoted lexemes: nothing in a word can be read as tsquery syntax
    expression = " & ".join([*(f"'{w}'" for w in words[:-1]), f"'{words[-1]}':*"])
    # rendered into the SQL text (escaped by the dialect): PostgreSQL's generic plan for a
    # prepared statement cannot judge how many risks a query matches
    query = bindparam("tsq", expression, String(), unique=True, literal_execute=True)
    return func.to_tsquery(literal_column("'english'"), query)


def _fts_match(words: Sequence[str]) -> str:
    return " ".join([*(f'"{w}"' for w in words[:-1]), f'"{words[-1]}"*'])


def matches(dialect: str, tenant_id: uuid.UUID, words: Sequence[str]) -> Select[Any]:
    """(risk_id, rank) of the tenant's live risks matching every word; rank: higher is better."""
    if dialect == "postgresql":
        ranked = func.risk_text_ranked(tenant_id, _tsquery(words)).table_valued(
            column("risk_id", Uuid()), column("rank", Float())
        )
        return select(ranked.c.risk_id, ranked.c.rank)
    match: BindParameter[str] = bindparam("fts", _fts_match(words), unique=True)
    # bm25 is negative, lower is better: negate it
    return select(_FTS.c.risk_id, (-_BM25).label("rank")).where(
        literal_column("risks_fts").op("MATCH")(match), _FTS.c.tenant_id == tenant_id
    )


def matching_ids(dialect: str, tenant_id: uuid.UUID, words: Sequence[str]) -> Select[Any]:
    """The ids of the tenant's live risks matching every word (no ranking: a filter).

    On PostgreSQL through a function that reads the search table as its owner: under the app
    role's row-level security the ``@@`` match (not leakproof) could not use the GIN index."""
    if dialect == "postgresql":
        found = func.risk_text_matches(tenant_id, _tsquery(words)).table_valued(
            column("risk_id", Uuid())
        )
        return select(found.c.risk_id)
    match: BindParameter[str] = bindparam("fts", _fts_match(words), unique=True)
    return select(_FTS.c.risk_id).where(
        literal_column("risks_fts").op("MATCH")(match), _FTS.c.tenant_id == tenant_id
    )


def planned_matches(tenant_id: uuid.UUID, words: Sequence[str]) -> Select[Any]:
    """The search table's matches as a plain query (PostgreSQL): what the planner estimates
    a text filter's count from (a function's row count is a constant to it)."""
    return select(_SEARCH.c.risk_id).where(
        _SEARCH.c.tenant_id == tenant_id, _SEARCH.c.document.op("@@")(_tsquery(words))
    )


def text_condition(dialect: str, tenant_id: uuid.UUID, words: Sequence[str]) -> ColumnElement[bool]:
    """``risks.id IN (the matches)``; on PostgreSQL as ``(…) IS TRUE``, which the planner keeps
    as a hashed subplan: the matches are hashed once and the sort's index is walked until the
    page is full (9 ms for a word 5,318 of 98,000 risks match, 8 ms for one none does). As a
    semi-join it would read every match's row to sort them, as it cannot know how many the
    search function returns (27 ms for the same word)."""
    matched = Risk.id.in_(matching_ids(dialect, tenant_id, words))
    return matched.is_(true()) if dialect == "postgresql" else matched


def ranked_page(
    dialect: str, tenant_id: uuid.UUID, words: Sequence[str], *, offset: int, limit: int
) -> Select[Any]:
    """One page of (risk_id, rank, total) best first; the total rides along as a window count
    so the matches are read once, from the narrow search table, before joining the page."""
    found = matches(dialect, tenant_id, words).subquery()
    return (
        select(found.c.risk_id, found.c.rank, func.count().over().label("total"))
        .order_by(found.c.rank.desc(), found.c.risk_id)
        .offset(offset)
        .limit(limit)
    )


def live(tenant_id: uuid.UUID) -> list[ColumnElement[bool]]:
    return [Risk.tenant_id == tenant_id, Risk.deleted_at.is_(None)]


def conditions(
    dialect: str, tenant_id: uuid.UUID, filters: RiskFilters
) -> list[ColumnElement[bool]]:
    where = live(tenant_id)
    if filters.status:
        where.append(Risk.status.in_(filters.status))
    if filters.severity:
        where.append(Risk.severity.in_(filters.severity))
    if filters.impact:
        where.append(Risk.impact.in_(filters.impact))
    if filters.probability:
        where.append(Risk.probability.in_(filters.probability))
    if filters.above_appetite is not None:
        where.append(Risk.within_appetite.is_(not filters.above_appetite))
    if filters.residual_above_appetite is not None:
        where.append(Risk.residual_within_appetite.is_(not filters.residual_above_appetite))
    if filters.review is not None and filters.review_today is not None:
        if filters.review == "overdue":
            where.append(Risk.next_review_date < filters.review_today)
        else:
            where.append(Risk.next_review_date >= filters.review_today)
            where.append(Risk.next_review_date <= filters.review_today + timedelta(days=14))
    if filters.min_score is not None:
        where.append(Risk.score >= filters.min_score)
    if filters.max_score is not None:
        where.append(Risk.score <= filters.max_score)
    for tag in filters.tags:
        where.append(labels.matching(tenant_id, labels.TAG, tag))
    for framework in filters.frameworks:
        where.append(labels.matching(tenant_id, labels.FRAMEWORK, framework))
    if filters.owner_id is not None:
        where.append(Risk.owner_id == filters.owner_id)
    if filters.asset_id is not None:
        where.append(
            Risk.id.in_(
                select(RiskAsset.risk_id).where(
                    RiskAsset.asset_id == filters.asset_id, RiskAsset.tenant_id == tenant_id
                )
            )
        )
    for name, value in filters.custom:
        where.append(labels.matching(tenant_id, labels.custom_kind(name), value))
    words = search_words(filters.q)
    if filters.q is not None and filters.q.strip():
        if not words:
            where.append(Risk.id.is_(None))  # nothing searchable: no match
        else:
            where.append(text_condition(dialect, tenant_id, words))
    return where


_SORT_KEYS: dict[SortField, tuple[Any, ...]] = {
    SortField.SCORE: (Risk.score, Risk.id),
    SortField.SEVERITY: (Risk.score, Risk.id),  # severity is a step function of score
    SortField.TITLE: (Risk.title, Risk.id),
    SortField.CREATED_AT: (Risk.created_at, Risk.id),
    SortField.UPDATED_AT: (Risk.updated_at, Risk.id),
    SortField.IMPACT: (Risk.impact, Risk.probability, Risk.id),
    SortField.PROBABILITY: (Risk.probability, Risk.impact, Risk.id),
    SortField.STATUS: (Risk.status, Risk.score, Risk.id),
    SortField.RESIDUAL_SCORE: (Risk.residual_score, Risk.id),
    SortField.NEXT_REVIEW_DATE: (Risk.next_review_date, Risk.id),
}


def sort_keys(sort: SortField) -> tuple[Any, ...]:
    """The columns a sort orders by, the id last (unique: pages are stable on ties)."""
    return _SORT_KEYS[sort]


def order_by(sort: SortField, order: SortOrder, keys: Sequence[Any] | None = None) -> list[Any]:
    """Sort keys matching a composite index (same direction on every key)."""
    columns = _SORT_KEYS[sort] if keys is None else keys
    return [k.desc() if order is SortOrder.DESC else k.asc() for k in columns]


def after(sort: SortField, order: SortOrder, values: Sequence[Any]) -> ColumnElement[bool]:
    """Rows strictly after ``values`` (the sort keys of the last row of the previous page) in
    this order: one row-value comparison, which both databases answer as an index range."""
    keys = _SORT_KEYS[sort]
    bound = tuple_(*(literal(v, type_=k.type) for k, v in zip(keys, values, strict=True)))
    row = tuple_(*keys)
    return row < bound if order is SortOrder.DESC else row > bound


def page_keys(
    dialect: str,
    tenant_id: uuid.UUID,
    filters: RiskFilters,
    sort: SortField,
    order: SortOrder,
    *,
    limit: int,
    start_after: Sequence[Any] | None = None,
    offset: int = 0,
) -> Any:
    """The sort key values of one page (``limit + 1`` rows: one more tells whether another
    page follows), from the sort's index alone: after the keys ``start_after`` (keyset) or
    past ``offset`` rows. Statements join the page's rows to it."""
    where = conditions(dialect, tenant_id, filters)
    if start_after is not None:
        where.append(after(sort, order, start_after))
    return (
        select(*sort_keys(sort))
        .where(*where)
        .order_by(*order_by(sort, order))
        .offset(offset if start_after is None else 0)
        .limit(limit + 1)
        .subquery("page")
    )


def keys_to_json(values: Sequence[Any]) -> list[Any]:
    """Sort key values as JSON scalars (for a cursor)."""
    return [
        str(v)
        if isinstance(v, Decimal | uuid.UUID)
        else v.isoformat()
        if isinstance(v, date)
        else v
        for v in values
    ]


def keys_from_json(sort: SortField, raw: Any) -> tuple[Any, ...]:
    """The typed sort key values of ``sort`` back from ``keys_to_json``; ValueError when they
    cannot be (a cursor of another sort, or altered)."""
    keys = _SORT_KEYS[sort]
    if not isinstance(raw, list) or len(raw) != len(keys):
        raise ValueError("does not match the sort order")
    return tuple(_typed(_python_type(key.type), v) for key, v in zip(keys, raw, strict=True))


def _python_type(column_type: TypeEngine[Any]) -> type:
    if isinstance(column_type, TypeDecorator):
        return _python_type(column_type.impl_instance)
    return column_type.python_type


def _typed(kind: type, value: Any) -> Any:
    try:
        if kind is Decimal and isinstance(value, str):
            return Decimal(value)
        if kind is uuid.UUID and isinstance(value, str):
            return uuid.UUID(value)
        if kind is datetime and isinstance(value, str):
            parsed = datetime.fromisoformat(value)
            if parsed.tzinfo is None:
                raise ValueError("naive datetime")
            return parsed
        if kind is date and isinstance(value, str):
            return date.fromisoformat(value)
        if kind is int and isinstance(value, int) and not isinstance(value, bool):
            return value
        if kind is str and isinstance(value, str):
            return value
    except (InvalidOperation, ValueError):
        pass
    raise ValueError("does not match the sort order")


def count_capped(where: Sequence[ColumnElement[bool]], cap: int) -> Select[Any]:
    """How many live risks match, counting no further than ``cap + 1``."""
    found = select(literal(1).label("one")).select_from(Risk).where(*where).limit(cap + 1)
    return select(func.count()).select_from(found.subquery())


def count_text_capped(
    dialect: str, tenant_id: uuid.UUID, words: Sequence[str], cap: int
) -> Select[Any]:
    """Matches of a text filter alone, from the search table (live risks only), capped."""
    found = matching_ids(dialect, tenant_id, words).limit(cap + 1)
    return select(func.count()).select_from(found.subquery())


def only_text(filters: RiskFilters) -> bool:
    """The filters are a text query and nothing else."""
    plain = RiskFilters(**{**filters.__dict__, "q": None})
    return bool(filters.q and filters.q.strip()) and plain.only_status() and not plain.status
