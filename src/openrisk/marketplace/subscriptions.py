"""Which of a tenant's apps receive its events, and the lock that keeps the answer true.

A bulk write (an import of thousands of risks) asks ``receivers_of`` once and skips writing
events nobody would receive. For that to be safe an app must not start receiving in the
middle of it: on PostgreSQL the question takes a shared transaction-level advisory lock of the
tenant, and installing or enabling an app takes the same lock exclusively (``hold``). So an app
installed while an import runs waits for it to commit, and receives the events of what is
committed after its own install, as it would of any other write. SQLite has one writer at a
time and no advisory locks; there the question is only a read.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Sequence

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from openrisk.marketplace.drivers import driver_for, notifier_ids
from openrisk.marketplace.models import App

_SHARED = text("SELECT pg_advisory_xact_lock_shared(:key)")
_EXCLUSIVE = text("SELECT pg_advisory_xact_lock(:key)")


def lock_key(tenant_id: uuid.UUID) -> int:
    """The advisory lock of a tenant's subscriptions: a signed 64-bit key of its own namespace."""
    digest = hashlib.blake2b(b"openrisk.subscriptions:" + tenant_id.bytes, digest_size=8)
    return int.from_bytes(digest.digest(), "big", signed=True)


async def hold(session: AsyncSession, *, tenant_id: uuid.UUID, exclusive: bool) -> None:
    """Lock the tenant's subscriptions until the transaction ends (PostgreSQL only)."""
    if session.get_bind().dialect.name == "postgresql":
        statement = _EXCLUSIVE if exclusive else _SHARED
        await session.execute(statement, {"key": lock_key(tenant_id)})


async def receivers_of(
    session: AsyncSession, *, tenant_id: uuid.UUID, topics: Sequence[str]
) -> bool:
    """Whether an enabled notifier app of the tenant reacts to one of ``topics``; the answer
    holds until the transaction ends."""
    await hold(session, tenant_id=tenant_id, exclusive=False)
    connectors = await session.scalars(
        select(App.connector_id).where(
            App.tenant_id == tenant_id,
            App.connector_id.in_(notifier_ids()),
            App.status != "disabled",
        )
    )
    return any(
        topic.startswith(prefix)
        for connector_id in set(connectors)
        for prefix in driver_for(connector_id).events
        for topic in topics
    )
