"""The models and the migrations describe the same schema, on SQLite and PostgreSQL: after
`openrisk db upgrade`, Alembic's autogenerate finds nothing to do (so a contributor's
`alembic revision --autogenerate` holds only their own change, never a drop of the search
tables or a stray index)."""

from __future__ import annotations

from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from openrisk import models  # noqa: F401  (registers every table)
from openrisk.core.db.base import Base
from openrisk.core.db.migrate import include_object


def _differences(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(
        connection, opts={"compare_type": True, "include_object": include_object}
    )
    return list(compare_metadata(context, Base.metadata))


async def test_autogenerate_finds_nothing_after_the_migrations(database_url: str) -> None:
    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as connection:
            differences = await connection.run_sync(_differences)
    finally:
        await engine.dispose()
    assert differences == []
