"""Writing many rows in one statement per table, on PostgreSQL and SQLite.

``insert_rows``: COPY on PostgreSQL, multi-row INSERTs elsewhere. ``stage_rows``: rows COPYed
into a temporary table of the transaction, for one set-based statement that joins them (an
``UPDATE … FROM``). PostgreSQL refuses COPY FROM
into a table whose row-level security applies to the role (the recommended NOBYPASSRLS
application role): the rows are then copied into a temporary staging table and moved with one
INSERT … SELECT, which the policies check row by row like any INSERT.

A JSON column's value may be given already encoded (``RawJson``): a document that several rows
share, or that was written straight from other bytes, is then encoded once. ``insert_records``
takes the rows as tuples in a given column order with every JSON value already encoded as text:
the shape COPY wants, so a generator of many rows (the bulk seed) pays nothing per row here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from operator import itemgetter
from typing import Any, cast

import orjson
from sqlalchemy import JSON, ColumnElement, Table, any_, bindparam, event, insert
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session


class RawJson(bytes):
    """A JSON document already encoded (by orjson): written to a JSON column as it is."""


SQLITE_CHUNK = 2_000
COPY_MIN_ROWS = 50  # below this, a plain INSERT costs fewer round trips than a COPY


def _is_postgresql(session: AsyncSession) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def among(session: AsyncSession, column: Any, values: Sequence[Any]) -> ColumnElement[bool]:
    """``column IN (values)`` for many values: on PostgreSQL one array parameter
    (``column = ANY(:values)``). An ``IN`` list of 1,000 ids binds 1,000 parameters, which
    SQLAlchemy expands and the driver and the server parse one by one: 13 ms a query against
    4 ms with the array (1,000 risk ids, on the 2-core host), and one statement text whatever
    the count, so the driver's prepared statement is reused."""
    if _is_postgresql(session):
        return cast(
            ColumnElement[bool],
            column == any_(bindparam(None, list(values), type_=ARRAY(column.type))),
        )
    return cast(ColumnElement[bool], column.in_(list(values)))


def _json_columns(table: Table, columns: Sequence[str]) -> list[int]:
    json_columns = {c.name for c in table.columns if isinstance(c.type, JSON)}
    return [i for i, c in enumerate(columns) if c in json_columns]


def _encoded(value: Any) -> Any:
    if value is None:
        return None
    if type(value) is RawJson:
        return value.decode()
    return orjson.dumps(value).decode()


def _records(table: Table, columns: Sequence[str], rows: Sequence[Mapping[str, Any]]) -> list[Any]:
    """The rows as COPY records (JSON values as text)."""
    positions = _json_columns(table, columns)
    take = itemgetter(*columns) if len(columns) > 1 else lambda row: (row[columns[0]],)
    if not positions:
        return [take(row) for row in rows]
    records = []
    for row in rows:
        record = list(take(row))
        for i in positions:
            record[i] = _encoded(record[i])
        records.append(record)
    return records


def _decoded(table: Table, rows: Sequence[Mapping[str, Any]]) -> Sequence[Mapping[str, Any]]:
    """The rows with their ``RawJson`` values decoded, for the driver's own JSON encoding."""
    names = [c.name for c in table.columns if isinstance(c.type, JSON)]
    if not any(type(row.get(n)) is RawJson for row in rows for n in names):
        return rows
    return [
        {k: orjson.loads(memoryview(v)) if type(v) is RawJson else v for k, v in row.items()}
        for row in rows
    ]


async def _driver(session: AsyncSession) -> Any:
    connection = await session.connection()
    raw = await connection.get_raw_connection()
    driver = raw.driver_connection
    assert driver is not None
    return driver


# What one transaction of a session found out, for its next batches: whether row-level
# security applies to a table, and the staging tables it created (dropped at its end). A
# chunked import would otherwise ask both again for every table of every chunk: two round
# trips each, while the database waits for the next statement.
_KNOWN = "openrisk.bulk"


@event.listens_for(Session, "after_transaction_end")
def _forget(session: Session, transaction: Any) -> None:
    """A transaction or savepoint ended: its staging tables may be gone (``ON COMMIT DROP``,
    or rolled back with a savepoint), so the next batch checks again."""
    session.info.pop(_KNOWN, None)


def _known(session: AsyncSession) -> dict[str, bool]:
    known: dict[str, bool] = session.info.setdefault(_KNOWN, {})
    return known


async def _row_security(session: AsyncSession, driver: Any, table: Table) -> bool:
    known = _known(session)
    key = f"rls:{table.name}"
    if key not in known:
        active = await driver.fetchval("SELECT row_security_active($1::regclass)", table.name)
        known[key] = bool(active)
    return known[key]


async def _stage(session: AsyncSession, driver: Any, table: Table) -> str:
    stage = f"openrisk_stage_{table.name}"
    known = _known(session)
    if f"stage:{stage}" not in known:
        await driver.execute(
            f'CREATE TEMP TABLE IF NOT EXISTS "{stage}" '
            f'(LIKE "{table.name}" INCLUDING DEFAULTS) ON COMMIT DROP'
        )
        known[f"stage:{stage}"] = True
    return stage


async def insert_rows(
    session: AsyncSession, table: Table, rows: Sequence[Mapping[str, Any]]
) -> None:
    """Insert rows that all name the same columns (every column without a server default)."""
    if not rows:
        return
    if not _is_postgresql(session):
        rows = _decoded(table, rows)
        for start in range(0, len(rows), SQLITE_CHUNK):
            await session.execute(insert(table), list(rows[start : start + SQLITE_CHUNK]))
        return
    columns = list(rows[0])
    await _copy(session, table, columns, _records(table, columns, rows))


async def insert_records(
    session: AsyncSession, table: Table, columns: Sequence[str], records: Sequence[Sequence[Any]]
) -> None:
    """Insert tuples of values in the order of ``columns``, JSON values encoded as text."""
    if not records:
        return
    if _is_postgresql(session):
        await _copy(session, table, list(columns), records)
        return
    positions = _json_columns(table, columns)
    rows = []
    for record in records:
        row = dict(zip(columns, record, strict=True))
        for i in positions:
            if record[i] is not None:
                row[columns[i]] = orjson.loads(record[i])
        rows.append(row)
    for start in range(0, len(rows), SQLITE_CHUNK):
        await session.execute(insert(table), rows[start : start + SQLITE_CHUNK])


async def _copy(
    session: AsyncSession, table: Table, columns: list[str], records: Sequence[Sequence[Any]]
) -> None:
    driver = await _driver(session)
    if not await _row_security(session, driver, table):
        await driver.copy_records_to_table(table.name, records=records, columns=columns)
        return
    stage = await _stage(session, driver, table)
    names = ", ".join(f'"{c}"' for c in columns)
    await driver.copy_records_to_table(stage, records=records, columns=columns)
    await driver.execute(
        f'INSERT INTO "{table.name}" ({names}) SELECT {names} FROM "{stage}"; TRUNCATE "{stage}"'
    )


async def stage_rows(
    session: AsyncSession,
    table: Table,
    rows: Sequence[Mapping[str, Any]],
    *,
    stage: str,
    statement: str,
    extra: Mapping[str, str] | None = None,
) -> str:
    """PostgreSQL: COPY ``rows`` into the temporary table ``stage`` (dropped at commit; emptied
    first), shaped like ``table``'s columns that the rows name plus ``extra`` (name → SQL
    expression over ``table`` giving its type), without constraints; then ANALYZE it, so that
    the planner joins it by its real size, and run ``statement`` (which reads it) in the same
    round trip. Returns the statement's status (e.g. ``UPDATE 1000``)."""
    extra = dict(extra or {})
    names = list(rows[0])
    own = [c for c in names if c not in extra]
    driver = await _driver(session)
    shape = ", ".join([*(f'"{c}"' for c in own), *(f'{e} AS "{n}"' for n, e in extra.items())])
    await driver.execute(
        f'CREATE TEMP TABLE IF NOT EXISTS "{stage}" ON COMMIT DROP AS '
        f'SELECT {shape} FROM "{table.name}" WITH NO DATA; TRUNCATE "{stage}"'
    )
    await driver.copy_records_to_table(stage, records=_records(table, names, rows), columns=names)
    return str(await driver.execute(f'ANALYZE "{stage}"; {statement}'))
