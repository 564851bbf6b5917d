"""Labels: the tags, frameworks and custom field values of live risks as rows of
``risk_labels`` (tenant, kind, value, risk), kept in step with the risks' JSON columns.

Filters (``tag=``, ``framework=``, ``cf_<name>=``) become semi-joins on that table's primary
key and a count by one label is an index-only range scan, on PostgreSQL and SQLite alike.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import String, bindparam, delete, insert, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from openrisk.core.db.bulk import among
from openrisk.risks.models import Risk, RiskLabel

TAG = "tag"
FRAMEWORK = "framework"
MAX_VALUE = 200


def custom_kind(name: str) -> str:
    return f"cf:{name}"


def canonical(value: Any) -> str:
    """One text form per value: booleans true/false, integral numbers without a decimal part,
    long texts by digest (equality still works, the key stays small)."""
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, float) and value.is_integer():
        text = str(int(value))
    else:
        text = str(value)
    if len(text) > MAX_VALUE:
        return "sha256:" + hashlib.sha256(text.encode()).hexdigest()
    return text


def pairs_for(
    tags: Iterable[str], frameworks: Iterable[str], custom_fields: Mapping[str, Any]
) -> list[tuple[str, str]]:
    """The (kind, value) labels of a risk, sorted and without repeats."""
    pairs = {(TAG, canonical(t)) for t in tags} | {(FRAMEWORK, canonical(f)) for f in frameworks}
    pairs |= {(custom_kind(k), canonical(v)) for k, v in custom_fields.items() if v is not None}
    return sorted(pairs)


def rows_for(
    tenant_id: uuid.UUID,
    risk_id: uuid.UUID,
    tags: Iterable[str],
    frameworks: Iterable[str],
    custom_fields: Mapping[str, Any],
) -> list[dict[str, Any]]:
    return [
        {"tenant_id": tenant_id, "kind": kind, "value": value, "risk_id": risk_id}
        for kind, value in pairs_for(tags, frameworks, custom_fields)
    ]


def rows_of(risk: Risk) -> list[dict[str, Any]]:
    return rows_for(risk.tenant_id, risk.id, risk.tags, risk.frameworks, risk.custom_fields)


async def add(session: AsyncSession, risks: Sequence[Risk]) -> None:
    rows = [row for risk in risks for row in rows_of(risk)]
    if rows:
        await session.execute(insert(RiskLabel), rows)


async def remove(session: AsyncSession, risk_ids: Sequence[uuid.UUID]) -> None:
    if risk_ids:
        await session.execute(delete(RiskLabel).where(among(session, RiskLabel.risk_id, risk_ids)))


async def replace(session: AsyncSession, risks: Sequence[Risk]) -> None:
    await remove(session, [r.id for r in risks])
    await add(session, risks)


async def remove_kind(session: AsyncSession, *, tenant_id: uuid.UUID, kind: str) -> None:
    await session.execute(
        delete(RiskLabel).where(RiskLabel.tenant_id == tenant_id, RiskLabel.kind == kind)
    )


def matching(tenant_id: uuid.UUID, kind: str, value: Any) -> ColumnElement[bool]:
    """``risks.id IN (the risks carrying this label)``.

    The label is rendered into the SQL text (escaped by the dialect), not bound: a label's
    selectivity ranges from a handful of risks to most of them, and PostgreSQL's generic plan
    for a prepared statement (asyncpg prepares every statement) cannot tell the two apart.
    """
    return Risk.id.in_(
        select(RiskLabel.risk_id).where(
            RiskLabel.tenant_id == tenant_id,
            RiskLabel.kind == bindparam(None, kind, String(), literal_execute=True),
            RiskLabel.value == bindparam(None, canonical(value), String(), literal_execute=True),
        )
    )


async def rebuild(session: AsyncSession, *, tenant_ids: Iterable[uuid.UUID]) -> None:
    """Recompute the tenants' labels from their live risks (batched)."""
    tenants = list(tenant_ids)
    if not tenants:
        return
    await session.execute(delete(RiskLabel).where(RiskLabel.tenant_id.in_(tenants)))
    result = await session.stream(
        select(Risk.tenant_id, Risk.id, Risk.tags, Risk.frameworks, Risk.custom_fields)
        .where(Risk.tenant_id.in_(tenants), Risk.deleted_at.is_(None))
        .execution_options(yield_per=2_000)
    )
    batch: list[dict[str, Any]] = []
    async for tenant_id, risk_id, tags, frameworks, custom in result:
        batch.extend(rows_for(tenant_id, risk_id, tags, frameworks, custom))
        if len(batch) >= 5_000:
            await session.execute(insert(RiskLabel), batch)
            batch = []
    if batch:
        await session.execute(insert(RiskLabel), batch)
