"""residual timeline: risk_daily_stats gains the day's change of the live risks' residual score
sum, moved by triggers on ``risks`` (a risk's residual enters on its creation day and moves on
the day it changes, whatever wrote it); existing risks count on their creation day

Revision ID: 0024
Revises: 0023
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0024"
down_revision: str | Sequence[str] | None = "0023"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = "tenant_id, day, total_delta, score_delta, created, mitigated, residual_delta"
UPSERT = "ON CONFLICT (tenant_id, day) DO UPDATE SET residual_delta = "
UPSERT += "risk_daily_stats.residual_delta + EXCLUDED.residual_delta"

# One statement-level trigger per write: a re-scoring UPDATE of every risk moves one row.
PG = (
    f"""
    CREATE FUNCTION risks_residual_daily() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP = 'INSERT' THEN
            INSERT INTO risk_daily_stats ({COLUMNS})
            SELECT tenant_id, date(timezone('UTC', created_at)), 0, 0, 0, 0, SUM(residual_score)
            FROM new_rows WHERE deleted_at IS NULL
            GROUP BY 1, 2 ORDER BY 1, 2
            {UPSERT};
        ELSE
            INSERT INTO risk_daily_stats ({COLUMNS})
            SELECT n.tenant_id, date(timezone('UTC', now())), 0, 0, 0, 0,
                   SUM(CASE WHEN n.deleted_at IS NULL THEN n.residual_score ELSE 0 END
                       - CASE WHEN o.deleted_at IS NULL THEN o.residual_score ELSE 0 END)
            FROM new_rows n JOIN old_rows o ON o.id = n.id
            WHERE n.residual_score IS DISTINCT FROM o.residual_score
               OR (n.deleted_at IS NULL) <> (o.deleted_at IS NULL)
            GROUP BY 1, 2 ORDER BY 1, 2
            {UPSERT};
        END IF;
        RETURN NULL;
    END
    $$
    """,
    "CREATE TRIGGER risks_residual_insert AFTER INSERT ON risks "
    "REFERENCING NEW TABLE AS new_rows "
    "FOR EACH STATEMENT EXECUTE FUNCTION risks_residual_daily()",
    "CREATE TRIGGER risks_residual_update AFTER UPDATE ON risks "
    "REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows "
    "FOR EACH STATEMENT EXECUTE FUNCTION risks_residual_daily()",
)
_DELTA = (
    "(CASE WHEN new.deleted_at IS NULL THEN new.residual_score ELSE 0 END) - "
    "(CASE WHEN old.deleted_at IS NULL THEN old.residual_score ELSE 0 END)"
)
SQLITE = (
    "CREATE TRIGGER risks_residual_insert AFTER INSERT ON risks WHEN new.deleted_at IS NULL "
    f"BEGIN INSERT INTO risk_daily_stats ({COLUMNS}) "
    "VALUES (new.tenant_id, date(new.created_at), 0, 0, 0, 0, new.residual_score) "
    f"{UPSERT}; END",
    "CREATE TRIGGER risks_residual_update AFTER UPDATE OF residual_score, deleted_at ON risks "
    f"WHEN {_DELTA} <> 0 "
    f"BEGIN INSERT INTO risk_daily_stats ({COLUMNS}) "
    f"VALUES (new.tenant_id, date('now'), 0, 0, 0, 0, {_DELTA}) "
    f"{UPSERT}; END",
)


def upgrade() -> None:
    postgresql = op.get_bind().dialect.name == "postgresql"
    with op.batch_alter_table("risk_daily_stats") as batch:
        batch.add_column(
            sa.Column(
                "residual_delta",
                sa.Numeric(precision=14, scale=2),
                nullable=False,
                server_default="0",
            )
        )
    day = "date(timezone('UTC', created_at))" if postgresql else "date(created_at)"
    op.execute(
        f"INSERT INTO risk_daily_stats ({COLUMNS}) "
        f"SELECT tenant_id, {day}, 0, 0, 0, 0, SUM(residual_score) FROM risks "
        f"WHERE deleted_at IS NULL GROUP BY 1, 2 {UPSERT}"
    )
    for statement in PG if postgresql else SQLITE:
        op.execute(statement)


def downgrade() -> None:
    postgresql = op.get_bind().dialect.name == "postgresql"
    op.execute("DROP TRIGGER IF EXISTS risks_residual_update" + (" ON risks" if postgresql else ""))
    op.execute("DROP TRIGGER IF EXISTS risks_residual_insert" + (" ON risks" if postgresql else ""))
    if postgresql:
        op.execute("DROP FUNCTION IF EXISTS risks_residual_daily()")
    with op.batch_alter_table("risk_daily_stats") as batch:
        batch.drop_column("residual_delta")
