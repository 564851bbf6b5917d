"""risk models: a tenant's levels, bands, factors, appetite and review cadence (with RLS)

Revision ID: 0018
Revises: 0019
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0018"
down_revision: str | Sequence[str] | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

POLICY = "tenant_isolation"
SETTING = "NULLIF(current_setting('openrisk.tenant_id', true), '')"
CHECK = f"({SETTING} IS NULL OR tenant_id = {SETTING}::uuid)"
JSON_TYPE = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "risk_models",
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("definition", JSON_TYPE, nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sa.Uuid(), nullable=True),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_risk_models_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["updated_by"],
            ["users.id"],
            name=op.f("fk_risk_models_updated_by_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("tenant_id", name=op.f("pk_risk_models")),
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute('ALTER TABLE "risk_models" ENABLE ROW LEVEL SECURITY')
        op.execute('ALTER TABLE "risk_models" FORCE ROW LEVEL SECURITY')
        op.execute(f'CREATE POLICY {POLICY} ON "risk_models" USING {CHECK} WITH CHECK {CHECK}')


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f'DROP POLICY IF EXISTS {POLICY} ON "risk_models"')
    op.drop_table("risk_models")
