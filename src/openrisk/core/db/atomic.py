"""Building blocks for invariants that must hold with many writers at once.

Two requests that both read "the slug is free" or "there are two Admins" and then write can
both be right about what they read and together break the rule. The remedies here keep the
check and the write in one place the database serialises: a row lock taken before the check
(PostgreSQL), the single writer lock SQLite takes at a transaction's first write, and unique
constraints whose violation is a clean 409 instead of a 500.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import Table, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import DeclarativeBase

from openrisk.core.errors import Conflict


async def flush_or_conflict(session: AsyncSession, detail: str) -> None:
    """Flush; a unique (or other integrity) violation becomes a 409 with ``detail``.

    The transaction is unusable after the violation: the caller's request ends with the error
    and its unit of work rolls back.
    """
    try:
        await session.flush()
    except IntegrityError as error:
        raise Conflict(detail) from error


async def insert_unless_exists(
    session: AsyncSession,
    model: type[DeclarativeBase],
    values: Mapping[str, Any],
    *,
    unique: list[str],
) -> bool:
    """``INSERT … ON CONFLICT (unique) DO NOTHING``: True when this call inserted the row.

    Unlike insert-then-catch, a lost race leaves the transaction usable (PostgreSQL aborts a
    transaction on a unique violation), so the caller can try another value.
    """
    table = model.__table__
    assert isinstance(table, Table)
    dialect = session.get_bind().dialect.name
    module: Any = postgresql if dialect == "postgresql" else sqlite
    statement = (
        module.insert(table)
        .values(dict(values))
        .on_conflict_do_nothing(index_elements=unique)
        .returning(table.c.id)
    )
    return (await session.execute(statement)).first() is not None


async def lock_row(session: AsyncSession, table: Table, row_id: Any) -> None:
    """Serialise writers on one row until this transaction ends, on every backend.

    A no-op UPDATE, not ``SELECT … FOR UPDATE``: on PostgreSQL both take the row lock (later
    statements of a READ COMMITTED transaction then see what the previous holder committed), but
    only a write makes SQLite take its writer lock now, before this transaction's checks read.
    """
    id_column = table.c.id
    first_other = next(column for column in table.c if column is not id_column)
    await session.execute(
        update(table).where(id_column == row_id).values({first_other.name: first_other})
    )
