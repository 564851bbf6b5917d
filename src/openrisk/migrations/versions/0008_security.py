"""security: login throttling leaves the database; "own" grants only where they are enforced

The rate-limit counters live in Redis (or memory) now. Custom roles and API tokens lose every
"own" grant on a code without that scope (``risk:read:own`` and the like): such a grant was
silently read as one on every row, and the catalogue refuses it from now on.

Revision ID: 0008
Revises: 0006
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from openrisk.rbac.catalogue import is_own_scoped, split_grant

JSON_TYPE = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
GRANT_TABLES = ("roles", "api_tokens")

revision: str = "0008"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def enforced_only(grants: list[str]) -> list[str]:
    return [g for g in grants if split_grant(g)[1] is None or is_own_scoped(g)]


def drop_unenforced_own_grants() -> None:
    bind = op.get_bind()
    for name in GRANT_TABLES:
        table = sa.table(name, sa.column("id", sa.Uuid()), sa.column("permissions", JSON_TYPE))
        for row_id, grants in bind.execute(sa.select(table.c.id, table.c.permissions)).all():
            kept = enforced_only(list(grants or []))
            if kept != list(grants or []):
                bind.execute(sa.update(table).where(table.c.id == row_id).values(permissions=kept))


def upgrade() -> None:
    drop_unenforced_own_grants()
    # Failed logins were rows that nothing ever purged; the limiter keeps expiring counters.
    with op.batch_alter_table("login_attempts", schema=None) as batch_op:
        batch_op.drop_index("ix_login_attempts_ip_created")
        batch_op.drop_index("ix_login_attempts_email_created")
    op.drop_table("login_attempts")


def downgrade() -> None:
    # the dropped "own" grants are not restored: they granted more than they said
    op.create_table(
        "login_attempts",
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("ip", sa.String(length=64), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_login_attempts")),
    )
    with op.batch_alter_table("login_attempts", schema=None) as batch_op:
        batch_op.create_index(
            "ix_login_attempts_email_created", ["email", "created_at"], unique=False
        )
        batch_op.create_index("ix_login_attempts_ip_created", ["ip", "created_at"], unique=False)
