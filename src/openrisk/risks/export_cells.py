"""The CSV export's cells formatted by PostgreSQL, a page per statement.

The general export path reads every column of a risk into Python objects (UUIDs, datetimes,
decimals, decoded JSON) and formats them again row by row; for 100,000 risks that was most of
the export's five seconds. Here the statement returns each cell as the text the CSV writer
would have made of it (the same ``str()``, ``isoformat()`` and ``";".join()`` results), with
the owner's e-mail and the assets' names joined in, so Python only neutralises and writes.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Float, Integer, String, Text, and_, case, cast, func, literal, select
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.sql.elements import ColumnElement

from openrisk.assets.models import Asset
from openrisk.auth.models import User
from openrisk.risks import queries
from openrisk.risks.enums import SortField, SortOrder
from openrisk.risks.models import Risk, RiskAsset
from openrisk.risks.queries import RiskFilters


def _text(column: Any) -> ColumnElement[str]:
    return cast(column, Text)


def _iso_utc(column: Any) -> ColumnElement[str]:
    """``datetime.isoformat()`` of a UTC timestamp: microseconds only when there are some."""
    utc = func.timezone("UTC", column)
    micro = cast(func.date_part("microseconds", column), Integer) % 1_000_000
    fraction = case((micro == 0, ""), else_=func.to_char(utc, ".US", type_=String))
    return func.concat(
        func.to_char(utc, 'YYYY-MM-DD"T"HH24:MI:SS', type_=String), fraction, "+00:00"
    )


def _joined_tags(column: Any) -> ColumnElement[str]:
    """``";".join(values)`` of a JSON array of text, in its order."""
    items = (
        func.jsonb_array_elements_text(column)
        .table_valued("value", with_ordinality="n")
        .render_derived()
    )
    aggregate = func.string_agg(items.c.value, aggregate_order_by(literal(";"), items.c.n))
    return select(aggregate).select_from(items).scalar_subquery()


def _joined_assets(value: Any) -> ColumnElement[str]:
    """``";".join(...)`` of the risk's linked assets (by asset id, as the API lists them)."""
    aggregate = func.string_agg(value, aggregate_order_by(literal(";"), RiskAsset.asset_id))
    return (
        select(aggregate)
        .select_from(RiskAsset)
        .outerjoin(
            Asset, and_(Asset.id == RiskAsset.asset_id, Asset.tenant_id == RiskAsset.tenant_id)
        )
        .where(RiskAsset.risk_id == Risk.id, RiskAsset.tenant_id == Risk.tenant_id)
        .correlate(Risk)
        .scalar_subquery()
    )


def cells(custom_names: Sequence[str]) -> list[Any]:
    """The columns of ``transfer.COLUMNS`` then the custom fields, as SQL expressions."""
    asset_id = _text(RiskAsset.asset_id)
    email = select(User.email).where(User.id == Risk.owner_id).correlate(Risk).scalar_subquery()
    return [
        _text(Risk.id),
        Risk.title,
        Risk.description,
        Risk.impact,
        Risk.probability,
        cast(Risk.score, Float),  # float(score), as the other path writes it: 12.0
        _text(Risk.severity),
        _text(Risk.status),
        _text(Risk.treatment),
        _text(Risk.owner_id),
        email,
        _joined_tags(Risk.tags),
        _joined_tags(Risk.frameworks),
        _joined_assets(asset_id),
        _joined_assets(func.coalesce(Asset.name, asset_id)),
        func.to_char(Risk.review_date, "YYYY-MM-DD", type_=String),
        _text(Risk.source),
        Risk.external_id,
        Risk.version,
        _iso_utc(Risk.created_at),
        _iso_utc(Risk.updated_at),
        *(Risk.custom_fields[name].as_string() for name in custom_names),
    ]


def page_statement(
    *,
    tenant_id: uuid.UUID,
    filters: RiskFilters,
    sort: SortField,
    order: SortOrder,
    after: Sequence[Any] | None,
    limit: int,
    custom_names: Sequence[str],
) -> Any:
    """Up to ``limit + 1`` rows from ``after`` on: the cells, then the row's sort key values
    (where the next page starts)."""
    ids = queries.page_keys(
        "postgresql", tenant_id, filters, sort, order, limit=limit, start_after=after
    )
    page_keys = [ids.c[k.key] for k in queries.sort_keys(sort)]
    return (
        select(*cells(custom_names), *page_keys)
        .select_from(ids.join(Risk, Risk.id == ids.c.id))
        .where(Risk.tenant_id == tenant_id)
        .order_by(*queries.order_by(sort, order, page_keys))
    )
