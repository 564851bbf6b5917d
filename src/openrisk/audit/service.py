"""Recording audit events inside the caller's transaction, so a mutation and its event commit
together or not at all."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import Any, cast

from sqlalchemy import Table
from sqlalchemy.ext.asyncio import AsyncSession

from openrisk.audit.models import AuditEvent
from openrisk.core.context import RequestContext, RequestOrigin
from openrisk.core.db.base import utcnow
from openrisk.core.db.bulk import RawJson, insert_rows
from openrisk.core.ids import new_id


def diff(before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """``{field: {"before": x, "after": y}}`` for every field whose value changed."""
    changed = {}
    for key in sorted(before.keys() | after.keys()):
        old, new = before.get(key), after.get(key)
        if old != new:
            changed[key] = {"before": old, "after": new}
    return changed


def record(
    session: AsyncSession,
    *,
    context: RequestContext,
    action: str,
    resource_type: str,
    resource_id: uuid.UUID | str | None,
    changes: Mapping[str, Any] | None = None,
    outcome: str = "success",
) -> AuditEvent:
    """Add an event for an action taken in ``context``'s tenant (committed with the caller)."""
    return record_raw(
        session,
        tenant_id=context.tenant_id,
        actor_user_id=context.user_id,
        actor_token_id=context.principal.token_id,
        origin=context.origin,
        action=action,
        resource_type=resource_type,
        resource_id=resource_id,
        changes=changes,
        outcome=outcome,
    )


def record_raw(
    session: AsyncSession,
    *,
    tenant_id: uuid.UUID | None,
    actor_user_id: uuid.UUID | None,
    origin: RequestOrigin,
    action: str,
    resource_type: str,
    resource_id: uuid.UUID | str | None,
    actor_token_id: uuid.UUID | None = None,
    changes: Mapping[str, Any] | None = None,
    outcome: str = "success",
) -> AuditEvent:
    event = AuditEvent(
        tenant_id=tenant_id,
        actor_user_id=actor_user_id,
        actor_token_id=actor_token_id,
        action=action,
        resource_type=resource_type,
        resource_id=str(resource_id) if resource_id is not None else None,
        changes=_jsonable(changes) if changes else None,
        outcome=outcome,
        ip=origin.ip,
        user_agent=(origin.user_agent or "")[:255] or None,
        request_id=origin.request_id,
    )
    session.add(event)
    return event


def audit_rows(
    *,
    context: RequestContext,
    action: str,
    resource_type: str,
    items: Sequence[tuple[uuid.UUID | str, Mapping[str, Any] | RawJson | None]],
    outcome: str = "success",
) -> list[dict[str, Any]]:
    """One ``audit_events`` row per (resource id, changes) of a batch, built without a
    database (an import builds them while the previous chunk is written); changes given as
    ``RawJson`` are written as they are (JSON the caller encoded once for several rows)."""
    origin = context.origin
    now = utcnow()
    common = {
        "tenant_id": context.tenant_id,
        "actor_user_id": context.user_id,
        "actor_token_id": context.principal.token_id,
        "action": action,
        "resource_type": resource_type,
        "outcome": outcome,
        "ip": origin.ip,
        "user_agent": (origin.user_agent or "")[:255] or None,
        "request_id": origin.request_id,
    }
    return [
        {
            **common,
            "id": new_id(),
            "created_at": now,
            "resource_id": str(resource_id),
            "changes": changes if type(changes) is RawJson else _jsonable(changes) or None,
        }
        for resource_id, changes in items
    ]


async def insert_audit_rows(session: AsyncSession, rows: Sequence[Mapping[str, Any]]) -> None:
    """Write rows built by ``audit_rows`` in the caller's transaction."""
    await insert_rows(session, cast(Table, AuditEvent.__table__), rows)


_PLAIN = frozenset({str, int, float, bool, type(None)})


def _jsonable(value: Any) -> Any:
    kind = type(value)
    if kind in _PLAIN:  # the common cases first, without abstract-class checks
        return value
    if kind is dict:
        return {str(k): _jsonable(v) for k, v in value.items()}
    if kind is list:
        return [_jsonable(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)  # UUIDs, dates, decimals, enums
