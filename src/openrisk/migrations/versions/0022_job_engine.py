"""job engine: procrastinate's schema (PostgreSQL) and the embedded relay's lease on outbox rows

Revision ID: 0022
Revises: 0015

On PostgreSQL the job engine's tables, types and functions are procrastinate's own schema, as
the installed version ships it (``SchemaManager.get_schema()``). Only workers and the relay
read them, never a request, so they have no Row-Level Security; the application role needs
the usual table and sequence grants (docs/architecture.md, "Background jobs"). On SQLite (the
embedded default) there is no job table: the in-process relay keeps an outbox row, leased to
the process running its jobs, until they have finished (``claimed_by``, ``claimed_until``;
``core/jobs/relay.py``).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.util import await_only

revision: str = "0022"
down_revision: str | Sequence[str] | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = (
    "procrastinate_events",
    "procrastinate_periodic_defers",
    "procrastinate_jobs",
    "procrastinate_workers",
)
TYPES = (
    "procrastinate_job_to_defer_v1",
    "procrastinate_job_event_type",
    "procrastinate_job_status",
)


def _run_script(sql: str) -> None:
    """Several statements at once (asyncpg's simple protocol), in the migration's transaction."""
    raw = op.get_bind().connection.driver_connection
    assert raw is not None
    await_only(raw.execute(sql))


def upgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.add_column(sa.Column("claimed_by", sa.Uuid(), nullable=True))
        batch.add_column(sa.Column("claimed_until", sa.DateTime(timezone=True), nullable=True))
    if op.get_bind().dialect.name != "postgresql":
        return
    from procrastinate.schema import SchemaManager

    _run_script(SchemaManager.get_schema())


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        functions = op.get_bind().execute(
            sa.text(
                "SELECT p.oid::regprocedure::text FROM pg_proc p "
                "JOIN pg_namespace n ON n.oid = p.pronamespace "
                "WHERE n.nspname = current_schema() AND p.proname LIKE 'procrastinate\\_%'"
            )
        )
        statements = [f"DROP TABLE IF EXISTS {name} CASCADE;" for name in TABLES]
        statements += [f"DROP FUNCTION IF EXISTS {sig} CASCADE;" for (sig,) in functions]
        statements += [f"DROP TYPE IF EXISTS {name} CASCADE;" for name in TYPES]
        _run_script("\n".join(statements))
    with op.batch_alter_table("outbox") as batch:
        batch.drop_column("claimed_until")
        batch.drop_column("claimed_by")
