"""the bin: indexes over deleted risks and deleted mitigations

The register's indexes cover live rows only. The bin lists a tenant's deleted risks newest
deletion first, and a restore finds the mitigations deleted together with a risk; both read
these partial indexes over deleted rows (small: only what is in the bin).

Revision ID: 0021
Revises: 0014
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0021"
down_revision: str | Sequence[str] | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

DELETED = sa.text("deleted_at IS NOT NULL")


def upgrade() -> None:
    op.create_index(
        "ix_risks_deleted",
        "risks",
        ["tenant_id", "deleted_at", "id"],
        postgresql_where=DELETED,
        sqlite_where=DELETED,
    )
    op.create_index(
        "ix_mitigations_deleted_risk",
        "mitigations",
        ["tenant_id", "risk_id", "deleted_at"],
        postgresql_where=DELETED,
        sqlite_where=DELETED,
    )


def downgrade() -> None:
    op.drop_index("ix_mitigations_deleted_risk", table_name="mitigations")
    op.drop_index("ix_risks_deleted", table_name="risks")
