"""a risk's labels, history and asset links check one foreign key, not two

Each of these rows belongs to a risk (a foreign key to ``risks`` that cascades), and the risk
to its tenant; their second foreign key, to ``tenants``, checked again what the first one
implies, once per row: 3 µs of every label, history row and link written (9 ms per 1,000
risks' labels, measured by inserting them as the application role with and without it), a
tenth of an import's writes of new risks. A tenant's deletion still reaches them through its
risks. ``tenant_id`` stays on every row: row-level security and the indexes lead with it.

Revision ID: 0035
Revises: 0034
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0035"
down_revision: str | Sequence[str] | None = "0034"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("risk_labels", "risk_history", "risk_assets")


def upgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table) as batch:
            batch.drop_constraint(f"fk_{table}_tenant_id_tenants", type_="foreignkey")


def downgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table) as batch:
            batch.create_foreign_key(
                f"fk_{table}_tenant_id_tenants",
                "tenants",
                ["tenant_id"],
                ["id"],
                ondelete="CASCADE",
            )
