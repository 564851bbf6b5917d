"""Writing many rows in one statement per table, on PostgreSQL and SQLite.

``insert_rows``: COPY on PostgreSQL, multi-row INSERTs elsewhere. PostgreSQL refuses COPY FROM
into a table whose row-level security applies to the role (the recommended NOBYPASSRLS
application role): the rows are then copied into a temporary staging table and moved with one
INSERT … SELECT, which the policies check row by row like any INSERT.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import orjson
from sqlalchemy import JSON, Table, insert
from sqlalchemy.ext.asyncio import AsyncSession

SQLITE_CHUNK = 2_000
COPY_MIN_ROWS = 50  # below this, a plain INSERT costs fewer round trips than a COPY


def _is_postgresql(session: AsyncSession) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def _records(table: Table, columns: Sequence[str], rows: Sequence[Mapping[str, Any]]) -> list[Any]:
    json_columns = {c.name for c in table.columns if isinstance(c.type, JSON)}
    return [
        tuple(
            orjson.dumps(row[c]).decode() if c in json_columns and row[c] is not None else row[c]
            for c in columns
        )
        for row in rows
    ]


async def _driver(session: AsyncSession) -> Any:
    connection = await session.connection()
    raw = await connection.get_raw_connection()
    driver = raw.driver_connection
    assert driver is not None
    return driver


async def _stage(driver: Any, table: Table) -> str:
    stage = f"openrisk_stage_{table.name}"
    await driver.execute(
        f'CREATE TEMP TABLE IF NOT EXISTS "{stage}" '
        f'(LIKE "{table.name}" INCLUDING DEFAULTS) ON COMMIT DROP'
    )
    return stage


async def insert_rows(
    session: AsyncSession, table: Table, rows: Sequence[Mapping[str, Any]]
) -> None:
    """Insert rows that all name the same columns (every column without a server default)."""
    if not rows:
        return
    if not _is_postgresql(session):
        for start in range(0, len(rows), SQLITE_CHUNK):
            await session.execute(insert(table), list(rows[start : start + SQLITE_CHUNK]))
        return
    columns = list(rows[0])
    records = _records(table, columns, rows)
    driver = await _driver(session)
    if not await driver.fetchval("SELECT row_security_active($1::regclass)", table.name):
        await driver.copy_records_to_table(table.name, records=records, columns=columns)
        return
    stage = await _stage(driver, table)
    names = ", ".join(f'"{c}"' for c in columns)
    await driver.copy_records_to_table(stage, records=records, columns=columns)
    await driver.execute(
        f'INSERT INTO "{table.name}" ({names}) SELECT {names} FROM "{stage}"; TRUNCATE "{stage}"'
    )
