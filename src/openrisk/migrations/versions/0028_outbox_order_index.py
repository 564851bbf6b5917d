"""outbox: index (created_at, id), the order in which the relay takes the rows

Revision ID: 0028
Revises: 0027
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0028"
down_revision: str | Sequence[str] | None = "0027"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_outbox_created_at_id", "outbox", ["created_at", "id"])
    op.drop_index("ix_outbox_created_at", table_name="outbox")


def downgrade() -> None:
    op.create_index("ix_outbox_created_at", "outbox", ["created_at"])
    op.drop_index("ix_outbox_created_at_id", table_name="outbox")
