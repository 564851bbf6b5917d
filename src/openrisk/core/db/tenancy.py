"""PostgreSQL Row-Level Security as a second wall behind the tenant filters of every query.

Every tenant-owned table has a policy (migration 0006) that, when the transaction-local setting
``openrisk.tenant_id`` is set, shows and accepts only that tenant's rows. A request's session is
bound to its tenant once the request context is resolved; every transaction the session begins
afterwards sets the value again (``set_config(..., is_local => true)`` lasts one transaction).
Sessions that are not bound (sign-in, membership resolution, background jobs) see every row,
as before: the wall guards tenant-scoped requests, where a missing filter would leak.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

TENANT_SETTING = "openrisk.tenant_id"
_SET_TENANT = text(f"SELECT set_config('{TENANT_SETTING}', :tenant_id, true)")
_INFO_KEY = "tenant_id"


@event.listens_for(Session, "after_begin")
def _set_tenant_for_transaction(session: Session, transaction: Any, connection: Any) -> None:
    tenant_id = session.info.get(_INFO_KEY)
    if tenant_id is not None and connection.dialect.name == "postgresql":
        connection.execute(_SET_TENANT, {"tenant_id": tenant_id})


async def bind_session_to_tenant(session: AsyncSession, tenant_id: uuid.UUID) -> None:
    """Scope every later transaction of ``session`` to ``tenant_id`` (and the current one)."""
    session.info[_INFO_KEY] = str(tenant_id)
    bind = session.bind
    if session.in_transaction() and bind is not None and bind.dialect.name == "postgresql":
        await session.execute(_SET_TENANT, {"tenant_id": str(tenant_id)})
