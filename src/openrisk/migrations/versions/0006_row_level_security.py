"""Row-Level Security on every tenant-owned table (PostgreSQL); merges the domain branches.

Revision ID: 0006
Revises: 0003, 0004, 0005
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | Sequence[str] | None = ("0003", "0004", "0005")
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

POLICY = "tenant_isolation"
# NULLIF: once set in a session, the setting reads '' outside the transaction that set it
SETTING = "NULLIF(current_setting('openrisk.tenant_id', true), '')"
# Connector reviews feed every tenant's view of a connector's rating: readable by all,
# writable only in the caller's tenant.
READABLE_BY_ALL = {"connector_reviews"}


def tenant_tables() -> list[tuple[str, bool]]:
    """(table, tenant_id nullable) for every table that has a tenant_id column."""
    inspector = sa.inspect(op.get_bind())
    found = []
    for table in sorted(inspector.get_table_names()):
        for column in inspector.get_columns(table):
            if column["name"] == "tenant_id":
                found.append((table, bool(column["nullable"])))
    return found


def condition(nullable: bool) -> str:
    unset = f"{SETTING} IS NULL"
    own = f"tenant_id = {SETTING}::uuid"
    shared = " OR tenant_id IS NULL" if nullable else ""
    return f"({unset} OR {own}{shared})"


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table, nullable in tenant_tables():
        check = condition(nullable)
        op.execute(f'ALTER TABLE "{table}" ENABLE ROW LEVEL SECURITY')
        op.execute(f'ALTER TABLE "{table}" FORCE ROW LEVEL SECURITY')
        op.execute(f'CREATE POLICY {POLICY} ON "{table}" USING {check} WITH CHECK {check}')
        if table in READABLE_BY_ALL:
            op.execute(f'CREATE POLICY {POLICY}_read ON "{table}" FOR SELECT USING (true)')


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table, _ in tenant_tables():
        op.execute(f'DROP POLICY IF EXISTS {POLICY} ON "{table}"')
        op.execute(f'DROP POLICY IF EXISTS {POLICY}_read ON "{table}"')
        op.execute(f'ALTER TABLE "{table}" NO FORCE ROW LEVEL SECURITY')
        op.execute(f'ALTER TABLE "{table}" DISABLE ROW LEVEL SECURITY')
