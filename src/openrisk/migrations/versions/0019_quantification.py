"""quantification: per-risk frequency and loss inputs with stored results, the tenant's loss
appetite (both with Row-Level Security), and what mitigations do to the loss and cost a year

Revision ID: 0019
Revises: 0021
"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0019"
down_revision: str | Sequence[str] | None = "0021"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

POLICY = "tenant_isolation"
SETTING = "NULLIF(current_setting('openrisk.tenant_id', true), '')"
CHECK = f"({SETTING} IS NULL OR tenant_id = {SETTING}::uuid)"
TABLES = ("risk_quantifications", "quant_appetites")
MITIGATION_COLUMNS = ("frequency_reduction", "loss_reduction", "annual_cost")


def _json() -> sa.types.TypeEngine[Any]:
    return sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def _timestamps() -> list[sa.Column[Any]]:
    return [
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    ]


def _tenant_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["tenant_id"], ["tenants.id"], name=f"fk_{table}_tenant_id_tenants", ondelete="CASCADE"
    )


def _user_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["updated_by"], ["users.id"], name=f"fk_{table}_updated_by_users", ondelete="SET NULL"
    )


def upgrade() -> None:
    op.create_table(
        "risk_quantifications",
        sa.Column("risk_id", sa.Uuid(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("inputs", _json(), nullable=False),
        sa.Column("result", _json(), nullable=True),
        sa.Column("result_digest", sa.String(length=64), nullable=True),
        sa.Column("computed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_by", sa.Uuid(), nullable=True),
        *_timestamps(),
        sa.ForeignKeyConstraint(
            ["risk_id"],
            ["risks.id"],
            name="fk_risk_quantifications_risk_id_risks",
            ondelete="CASCADE",
        ),
        _tenant_fk("risk_quantifications"),
        _user_fk("risk_quantifications"),
        sa.PrimaryKeyConstraint("risk_id", name="pk_risk_quantifications"),
    )
    op.create_index("ix_risk_quantifications_tenant", "risk_quantifications", ["tenant_id"])
    op.create_table(
        "quant_appetites",
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("threshold", sa.Float(), nullable=False),
        sa.Column("max_probability", sa.Float(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("updated_by", sa.Uuid(), nullable=True),
        *_timestamps(),
        _tenant_fk("quant_appetites"),
        _user_fk("quant_appetites"),
        sa.PrimaryKeyConstraint("tenant_id", name="pk_quant_appetites"),
    )
    for name in MITIGATION_COLUMNS:  # plain ALTER TABLE on both (no table copy on SQLite)
        op.add_column(
            "mitigations", sa.Column(name, sa.Float(), nullable=False, server_default=sa.text("0"))
        )
    if op.get_bind().dialect.name == "postgresql":
        for table in TABLES:
            op.execute(f'ALTER TABLE "{table}" ENABLE ROW LEVEL SECURITY')
            op.execute(f'ALTER TABLE "{table}" FORCE ROW LEVEL SECURITY')
            op.execute(f'CREATE POLICY {POLICY} ON "{table}" USING {CHECK} WITH CHECK {CHECK}')


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in TABLES:
            op.execute(f'DROP POLICY IF EXISTS {POLICY} ON "{table}"')
    for name in MITIGATION_COLUMNS:
        op.drop_column("mitigations", name)
    op.drop_table("quant_appetites")
    op.drop_index("ix_risk_quantifications_tenant", table_name="risk_quantifications")
    op.drop_table("risk_quantifications")
