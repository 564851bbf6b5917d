"""notifications (one row per e-mail, unique reason), the apps' next scheduled sync, and report
jobs of large registers (with RLS)

Revision ID: 0030
Revises: 0022
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0030"
down_revision: str | Sequence[str] | None = "0022"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

POLICY = "tenant_isolation"
SETTING = "NULLIF(current_setting('openrisk.tenant_id', true), '')"
CHECK = f"({SETTING} IS NULL OR tenant_id = {SETTING}::uuid)"
# notifications.tenant_id is NULL for none today, but nullable like the outbox's
NULLABLE_CHECK = f"({SETTING} IS NULL OR tenant_id = {SETTING}::uuid OR tenant_id IS NULL)"
JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def _rls(table: str, check: str) -> None:
    op.execute(f'ALTER TABLE "{table}" ENABLE ROW LEVEL SECURITY')
    op.execute(f'ALTER TABLE "{table}" FORCE ROW LEVEL SECURITY')
    op.execute(f'CREATE POLICY {POLICY} ON "{table}" USING {check} WITH CHECK {check}')


def upgrade() -> None:
    op.create_table(
        "notifications",
        sa.Column("tenant_id", sa.Uuid(), nullable=True),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("reason", sa.String(length=300), nullable=False),
        sa.Column("recipient", sa.String(length=320), nullable=False),
        sa.Column("subject_id", sa.Uuid(), nullable=True),
        sa.Column("batch_id", sa.Uuid(), nullable=False),
        sa.Column("data", JSON, nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_notifications_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notifications")),
        sa.UniqueConstraint("reason", name=op.f("uq_notifications_reason")),
    )
    op.create_index("ix_notifications_tenant_created", "notifications", ["tenant_id", "created_at"])
    op.create_index("ix_notifications_batch", "notifications", ["batch_id"])

    op.create_table(
        "report_jobs",
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("format", sa.String(length=8), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("requested_by", sa.Uuid(), nullable=True),
        sa.Column("report_id", sa.Uuid(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_report_jobs_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["requested_by"],
            ["users.id"],
            name=op.f("fk_report_jobs_requested_by_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["report_id"],
            ["reports.id"],
            name=op.f("fk_report_jobs_report_id_reports"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_report_jobs")),
    )
    op.create_index("ix_report_jobs_tenant_created", "report_jobs", ["tenant_id", "created_at"])

    op.add_column("apps", sa.Column("next_sync_at", sa.DateTime(timezone=True), nullable=True))
    op.create_index(
        "ix_apps_next_sync",
        "apps",
        ["next_sync_at"],
        postgresql_where=sa.text("auto_sync"),
        sqlite_where=sa.text("auto_sync"),
    )
    if op.get_bind().dialect.name == "postgresql":
        _rls("notifications", NULLABLE_CHECK)
        _rls("report_jobs", CHECK)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in ("notifications", "report_jobs"):
            op.execute(f'DROP POLICY IF EXISTS {POLICY} ON "{table}"')
    op.drop_index("ix_apps_next_sync", table_name="apps")
    op.execute("ALTER TABLE apps DROP COLUMN next_sync_at")
    op.drop_index("ix_report_jobs_tenant_created", table_name="report_jobs")
    op.drop_table("report_jobs")
    op.drop_index("ix_notifications_batch", table_name="notifications")
    op.drop_index("ix_notifications_tenant_created", table_name="notifications")
    op.drop_table("notifications")
