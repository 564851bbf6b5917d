"""JSON answers of the register built straight from result rows.

A read answers with the bytes its response model (``RiskOut``, ``HistoryOut``, a page of them)
serialises to, without building ORM objects or Pydantic models on the way: the rows' values go
into plain dicts in the models' field order and orjson writes them (UUIDs, dates and UTC
datetimes as Pydantic writes them). That took most of the Python time of an uncached list page
(docs/performance.md). A test keeps these documents equal to the models' own serialisation.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import orjson

from openrisk.methodology import clock

_OPTIONS = orjson.OPT_UTC_Z


def dumps(value: Any) -> bytes:
    """orjson with Pydantic's rendering of UTC datetimes (``…Z``)."""
    return orjson.dumps(value, default=_default, option=_OPTIONS)


def _default(value: Any) -> Any:
    # asyncpg hands over its own UUID subclass, which orjson leaves to this hook
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, Decimal):
        return float(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def risk(row: Any, asset_ids: Sequence[uuid.UUID], *, today: date | None = None) -> dict[str, Any]:
    """A risk as ``RiskOut`` shows it (``row`` has the columns of ``queries.RISK_COLUMNS``);
    ``today`` (for the review status) when the caller renders many risks of one moment."""
    return {
        "id": row.id,
        "title": row.title,
        "description": row.description,
        "impact": row.impact,
        "probability": row.probability,
        "score": float(row.score),
        "severity": row.severity,
        "status": row.status,
        "treatment": row.treatment,
        "owner_id": row.owner_id,
        "tags": row.tags,
        "frameworks": row.frameworks,
        "asset_ids": sorted(asset_ids),  # one order on both databases: a stable ETag
        "custom_fields": row.custom_fields,
        "review_date": row.review_date,
        "acceptance_expires_on": row.acceptance_expires_on,
        "last_reviewed_on": row.last_reviewed_on,
        "next_review_date": row.next_review_date,
        "review_status": review_status(row.next_review_date, today or clock.today()),
        "version": row.version,
        "source": row.source,
        "external_id": row.external_id,
        "created_by": row.created_by,
        "created_at": row.created_at,
        "updated_at": row.updated_at,
        **other_levels(row),
        "quantification": quantification_summary(row),
    }


def quantification_summary(row: Any) -> dict[str, Any] | None:
    """The last simulation's expected annual loss (rows read with ``RISK_COLUMNS``; a risk
    object read without them has none)."""
    computed_at = getattr(row, "quant_computed_at", None)
    inherent = getattr(row, "quant_ale_inherent", None)
    if computed_at is None or inherent is None:
        return None
    return {
        "ale_inherent": float(inherent),
        "ale_residual": float(row.quant_ale_residual or 0.0),
        "currency": row.quant_currency,
        "computed_at": computed_at,
    }


DUE_SOON_DAYS = 14


def review_status(next_review_date: date | None, today: date) -> str:
    """ok, due_soon (within 14 days) or overdue."""
    if next_review_date is None or next_review_date > today + timedelta(days=DUE_SOON_DAYS):
        return "ok"
    return "overdue" if next_review_date < today else "due_soon"


_LEVEL_COLUMNS = {
    prefix: tuple(f"{prefix}_{name}" for name in ("score", "impact", "probability", "severity"))
    for prefix in ("inherent", "residual", "target")
}


def _level(row: Any, prefix: str) -> dict[str, Any] | None:
    score_column, impact, probability, severity = _LEVEL_COLUMNS[prefix]
    score = getattr(row, score_column)
    if score is None:
        return None
    return {
        "impact": getattr(row, impact),
        "probability": getattr(row, probability),
        "score": float(score),
        "severity": getattr(row, severity),
    }


def other_levels(row: Any) -> dict[str, Any]:
    """``inherent``, ``residual``, ``target`` and the appetite flags of a risk row or object."""
    return {
        "inherent": _level(row, "inherent"),
        "residual": _level(row, "residual"),
        "target": _level(row, "target"),
        "within_appetite": bool(row.within_appetite),
        "residual_within_appetite": bool(row.residual_within_appetite),
    }


def history(row: Any) -> dict[str, Any]:
    """A history row as ``HistoryOut`` shows it."""
    return {
        "id": row.id,
        "risk_id": row.risk_id,
        "action": row.action,
        "impact": row.impact,
        "probability": row.probability,
        "score": float(row.score),
        "severity": row.severity,
        "status": row.status,
        "changed_by": row.changed_by,
        "changes": row.changes,
        "created_at": row.created_at,
    }


def page(
    items: Sequence[Mapping[str, Any]],
    *,
    total: int,
    page: int,
    page_size: int,
    cursor: tuple[str | None, bool] | None = None,
) -> bytes:
    """``Page`` (or, with ``cursor`` = (next_cursor, total_is_estimate), ``CursorPage``)."""
    body: dict[str, Any] = {"items": items, "total": total, "page": page, "page_size": page_size}
    if cursor is not None:
        body["next_cursor"], body["total_is_estimate"] = cursor
    return dumps(body)
