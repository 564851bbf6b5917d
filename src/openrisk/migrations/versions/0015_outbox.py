"""outbox: events and cache invalidations written in the change's transaction (with RLS)

Revision ID: 0015
Revises: 0018c
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0015"
down_revision: str | Sequence[str] | None = "0018c"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

POLICY = "tenant_isolation"
SETTING = "NULLIF(current_setting('openrisk.tenant_id', true), '')"
# Like every table with a nullable tenant_id: a tenant-bound session sees and writes its own
# tenant's rows and global ones; the relay and the sweeper (bound to no tenant) see all rows.
CHECK = f"({SETTING} IS NULL OR tenant_id = {SETTING}::uuid OR tenant_id IS NULL)"


def upgrade() -> None:
    op.create_table(
        "outbox",
        sa.Column("tenant_id", sa.Uuid(), nullable=True),
        sa.Column("topic", sa.String(length=120), nullable=False),
        sa.Column(
            "payload", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox")),
    )
    op.create_index("ix_outbox_created_at", "outbox", ["created_at"])
    if op.get_bind().dialect.name == "postgresql":
        op.execute('ALTER TABLE "outbox" ENABLE ROW LEVEL SECURITY')
        op.execute('ALTER TABLE "outbox" FORCE ROW LEVEL SECURITY')
        op.execute(f'CREATE POLICY {POLICY} ON "outbox" USING {CHECK} WITH CHECK {CHECK}')


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f'DROP POLICY IF EXISTS {POLICY} ON "outbox"')
    op.drop_index("ix_outbox_created_at", table_name="outbox")
    op.drop_table("outbox")
