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

from sqlalchemy import String, bindparam, delete, insert, select, text, tuple_
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.types import Uuid

from openrisk.core.db.bulk import SQLITE_CHUNK, among
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


# No label row is ever loaded into a session, so a DELETE has nothing to synchronise there;
# without this the ORM would have PostgreSQL return every deleted row (RETURNING) to find them.
_UNSYNCED = {"synchronize_session": False}


async def remove(session: AsyncSession, risk_ids: Sequence[uuid.UUID]) -> None:
    if risk_ids:
        await session.execute(
            delete(RiskLabel)
            .where(among(session, RiskLabel.risk_id, risk_ids))
            .execution_options(**_UNSYNCED)
        )


def moved(
    tenant_id: uuid.UUID,
    risk_id: uuid.UUID,
    before: Sequence[tuple[str, str]],
    after: Sequence[tuple[str, str]],
) -> tuple[list[tuple[uuid.UUID, str, str]], list[dict[str, Any]]]:
    """What an update of a risk's labels from ``before`` to ``after`` (``pairs_for``) takes:
    the (risk, kind, value) rows to delete and the rows to insert. A re-tagged risk usually
    keeps most of its labels, and each label row written costs its foreign-key check and
    three index entries."""
    old, new = set(before), set(after)
    gone = [(risk_id, kind, value) for kind, value in sorted(old - new)]
    added = [
        {"tenant_id": tenant_id, "kind": kind, "value": value, "risk_id": risk_id}
        for kind, value in sorted(new - old)
    ]
    return gone, added


_REMOVE_PAIRS = text(
    "DELETE FROM risk_labels AS l USING unnest(:risk_ids, :kinds, :label_values) "
    "AS d(risk_id, kind, value) WHERE l.tenant_id = :tenant_id AND l.risk_id = d.risk_id "
    "AND l.kind = d.kind AND l.value = d.value"
).bindparams(
    bindparam("risk_ids", type_=ARRAY(Uuid())),
    bindparam("kinds", type_=ARRAY(String())),
    bindparam("label_values", type_=ARRAY(String())),
    bindparam("tenant_id", type_=Uuid()),
)


async def remove_pairs(
    session: AsyncSession, *, tenant_id: uuid.UUID, rows: Sequence[tuple[uuid.UUID, str, str]]
) -> None:
    """Delete these (risk, kind, value) labels of the tenant: one statement (PostgreSQL: the
    rows as three arrays, joined by the primary key)."""
    if not rows:
        return
    if session.get_bind().dialect.name == "postgresql":
        risk_ids, kinds, values = (list(column) for column in zip(*rows, strict=True))
        await session.execute(
            _REMOVE_PAIRS,
            {"risk_ids": risk_ids, "kinds": kinds, "label_values": values, "tenant_id": tenant_id},
        )
        return
    for start in range(0, len(rows), SQLITE_CHUNK):
        await session.execute(
            delete(RiskLabel)
            .where(
                RiskLabel.tenant_id == tenant_id,
                tuple_(RiskLabel.risk_id, RiskLabel.kind, RiskLabel.value).in_(
                    rows[start : start + SQLITE_CHUNK]
                ),
            )
            .execution_options(**_UNSYNCED)
        )


async def replace(session: AsyncSession, risks: Sequence[Risk]) -> None:
    await remove(session, [r.id for r in risks])
    await add(session, risks)


async def remove_kind(session: AsyncSession, *, tenant_id: uuid.UUID, kind: str) -> None:
    await session.execute(
        delete(RiskLabel)
        .where(RiskLabel.tenant_id == tenant_id, RiskLabel.kind == kind)
        .execution_options(**_UNSYNCED)
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
    await session.execute(
        delete(RiskLabel).where(RiskLabel.tenant_id.in_(tenants)).execution_options(**_UNSYNCED)
    )
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
