"""Alembic driven from code: upgrade, downgrade, and the "schema is behind" start-up check."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

MIGRATIONS_DIR = Path(__file__).resolve().parents[2] / "migrations"


# Full-text search side tables, created by migration 0003 and kept in step by triggers: no model
# describes them, and autogenerate must not propose to drop them.
SEARCH_TABLES = ("risks_fts", "risk_search")
# The job engine's tables (procrastinate's own schema, applied by migration 0022 on PostgreSQL).
JOB_TABLES = ("procrastinate_",)


def include_object(
    obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any
) -> bool:
    """Alembic's filter for autogenerate: everything but the search and job engine tables."""
    unmodelled = type_ == "table" and reflected and compare_to is None
    return not (unmodelled and (name or "").startswith(SEARCH_TABLES + JOB_TABLES))


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
