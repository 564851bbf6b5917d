"""Helpers shared by the register's services (risks, mitigations, assets, custom fields)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from openrisk.core.errors import ValidationFailed
from openrisk.tenants.models import Membership


def dialect_name(session: AsyncSession) -> str:
    return session.get_bind().dialect.name


async def ensure_member(
    session: AsyncSession, *, tenant_id: uuid.UUID, user_id: uuid.UUID, field: str
) -> None:
    """422 naming ``field`` unless ``user_id`` is a member of the tenant."""
    found = await session.scalar(
        select(Membership.id).where(
            Membership.tenant_id == tenant_id, Membership.user_id == user_id
        )
    )
    if found is None:
        raise ValidationFailed.field(field, "must be a member of this tenant")


async def members_of(
    session: AsyncSession, *, tenant_id: uuid.UUID, user_ids: Iterable[uuid.UUID]
) -> set[uuid.UUID]:
    wanted = set(user_ids)
    if not wanted:
        return set()
    found = await session.scalars(
        select(Membership.user_id).where(
            Membership.tenant_id == tenant_id, Membership.user_id.in_(wanted)
        )
    )
    return set(found)


_PLAIN = frozenset({str, int, float, bool, type(None)})


def to_json(value: Any) -> Any:
    """A JSON-able copy: UUIDs and dates as strings, Decimals as numbers."""
    kind = type(value)
    if kind in _PLAIN:  # the common cases first, without abstract-class checks
        return value
    if kind is dict:
        return {str(k): to_json(v) for k, v in value.items()}
    if kind is list:
        return [to_json(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): to_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [to_json(v) for v in value]
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)
