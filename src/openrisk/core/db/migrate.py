"""Alembic driven from code: upgrade, downgrade, and the "schema is behind" start-up check."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

MIGRATIONS_DIR = Path(__file__).resolve().parents[2] / "migrations"


class SchemaBehind(RuntimeError):
    """The database schema is older than the code; the server must not start."""


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


def upgrade(database_url: str, revision: str = "heads") -> None:
    command.upgrade(alembic_config(database_url), revision)


def downgrade(database_url: str, revision: str = "-1") -> None:
    command.downgrade(alembic_config(database_url), revision)


def head_revisions() -> set[str]:
    return set(ScriptDirectory.from_config(alembic_config("sqlite://")).get_heads())


def _current_revisions(connection: Connection) -> set[str]:
    return set(MigrationContext.configure(connection).get_current_heads())


async def current_revisions(engine: AsyncEngine) -> set[str]:
    async with engine.connect() as conn:
        return await conn.run_sync(_current_revisions)


async def ensure_schema_current(engine: AsyncEngine) -> None:
    current, heads = await current_revisions(engine), head_revisions()
    if current != heads:
        raise SchemaBehind(
            f"The database schema is at revision {', '.join(sorted(current)) or 'none'} but "
            f"this version of OpenRisk needs {', '.join(sorted(heads))}. "
            "Run `openrisk db upgrade` and start again."
        )
