"""Recording audit events inside the caller's transaction, so a mutation and its event commit
together or not at all."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from openrisk.audit.models import AuditEvent
from openrisk.core.context import RequestContext, RequestOrigin


def diff(before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """``{field: {"before": x, "after": y}}`` for every field whose value changed."""
    return {
        key: {"before": before.get(key), "after": after.get(key)}
        for key in sorted(set(before) | set(after))
        if before.get(key) != after.get(key)
    }


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


def _jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)  # UUIDs, dates, decimals, enums
