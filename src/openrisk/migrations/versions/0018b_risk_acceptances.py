"""risk acceptances: requests to accept a risk with justification, approver and expiry (with
RLS), and the expiry of the current acceptance on the risk

Revision ID: 0018b
Revises: 0018a
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0018b"
down_revision: str | Sequence[str] | None = "0018a"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

POLICY = "tenant_isolation"
SETTING = "NULLIF(current_setting('openrisk.tenant_id', true), '')"
CHECK = f"({SETTING} IS NULL OR tenant_id = {SETTING}::uuid)"


def _user(name: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        [name],
        ["users.id"],
        name=op.f(f"fk_risk_acceptances_{name}_users"),
        ondelete="SET NULL",
    )


def upgrade() -> None:
    op.create_table(
        "risk_acceptances",
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("risk_id", sa.Uuid(), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("justification", sa.Text(), nullable=False),
        sa.Column("compensating_controls", sa.Text(), nullable=False),
        sa.Column("expires_on", sa.Date(), nullable=False),
        sa.Column("requested_by", sa.Uuid(), nullable=True),
        sa.Column("decided_by", sa.Uuid(), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("decision_comment", sa.Text(), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_risk_acceptances_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["risk_id"],
            ["risks.id"],
            name=op.f("fk_risk_acceptances_risk_id_risks"),
            ondelete="CASCADE",
        ),
        _user("requested_by"),
        _user("decided_by"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_risk_acceptances")),
    )
    op.create_index(
        "ix_risk_acceptances_tenant_status",
        "risk_acceptances",
        ["tenant_id", "status", "created_at"],
    )
    op.create_index("ix_risk_acceptances_tenant_risk", "risk_acceptances", ["tenant_id", "risk_id"])
    op.add_column("risks", sa.Column("acceptance_expires_on", sa.Date(), nullable=True))
    if op.get_bind().dialect.name == "postgresql":
        op.execute('ALTER TABLE "risk_acceptances" ENABLE ROW LEVEL SECURITY')
        op.execute('ALTER TABLE "risk_acceptances" FORCE ROW LEVEL SECURITY')
        op.execute(f'CREATE POLICY {POLICY} ON "risk_acceptances" USING {CHECK} WITH CHECK {CHECK}')


def downgrade() -> None:
    op.execute("ALTER TABLE risks DROP COLUMN acceptance_expires_on")
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f'DROP POLICY IF EXISTS {POLICY} ON "risk_acceptances"')
    op.drop_index("ix_risk_acceptances_tenant_risk", table_name="risk_acceptances")
    op.drop_index("ix_risk_acceptances_tenant_status", table_name="risk_acceptances")
    op.drop_table("risk_acceptances")
