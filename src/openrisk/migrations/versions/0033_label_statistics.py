"""extended statistics on the labels' (tenant, kind, value)

The planner multiplied the selectivities of the tenant, the kind and the value of a label as
if they were independent, and so expected 480 of the 12,430 risks of a tenant that carry
``framework=ISO27001``: it then joined every one of them to sort by title (27 ms at 100,000
risks) instead of walking the title index until a page was found (7 ms). The statistics
object records how the three columns go together.

Revision ID: 0033
Revises: 0032
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0033"
down_revision: str | Sequence[str] | None = "0032"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "CREATE STATISTICS IF NOT EXISTS st_risk_labels_label (mcv, dependencies) "
            "ON tenant_id, kind, value FROM risk_labels"
        )
        op.execute("ANALYZE risk_labels")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP STATISTICS IF EXISTS st_risk_labels_label")
