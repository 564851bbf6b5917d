"""Bulk writes: a JSON value given already encoded (RawJson) is stored as the same document as
the value itself, on PostgreSQL (COPY) and SQLite (multi-row INSERT) alike."""

from __future__ import annotations

import uuid
from typing import Any, cast

import orjson
from fastapi import FastAPI
from sqlalchemy import Table, select

from openrisk.audit.models import AuditEvent
from openrisk.core.db.base import utcnow
from openrisk.core.db.bulk import RawJson, insert_rows
from openrisk.core.db.tenancy import bind_session_to_tenant
from tests.conftest import Account


async def test_raw_json_and_plain_values_are_stored_alike(app: FastAPI, admin: Account) -> None:
    tenant = uuid.UUID(admin.tenant_id)
    changes: dict[str, Any] = {
        "title": {"before": None, "after": "Ransomware \u00e9t\u00e9"},
        "score": {"before": 4.0, "after": 12.5},
        "tags": {"before": [], "after": ["a", "b"]},
    }
    ids = [uuid.uuid4(), uuid.uuid4(), uuid.uuid4()]
    base = {
        "tenant_id": tenant,
        "actor_user_id": uuid.UUID(admin.user_id),
        "actor_token_id": None,
        "action": "bulk.test",
        "resource_type": "risk",
        "outcome": "success",
        "ip": None,
        "user_agent": None,
        "request_id": None,
        "created_at": utcnow(),
    }
    rows = [
        {**base, "id": ids[0], "resource_id": "plain", "changes": changes},
        {**base, "id": ids[1], "resource_id": "raw", "changes": RawJson(orjson.dumps(changes))},
        {**base, "id": ids[2], "resource_id": "none", "changes": None},
    ]
    async with app.state.db.session() as session:
        await bind_session_to_tenant(session, tenant)
        await insert_rows(session, cast(Table, AuditEvent.__table__), rows)
        await session.commit()
        found = await session.execute(
            select(AuditEvent.resource_id, AuditEvent.changes).where(AuditEvent.id.in_(ids))
        )
        stored = {resource: value for resource, value in found}
    assert stored == {"plain": changes, "raw": changes, "none": None}
