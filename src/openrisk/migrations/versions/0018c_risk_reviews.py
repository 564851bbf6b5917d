"""risk reviews: recorded reviews (with RLS), each risk's last review and next review date
(existing risks: creation day plus the review days of their band, or their review date if
earlier)

Revision ID: 0018c
Revises: 0018b
"""

import json
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0018c"
down_revision: str | Sequence[str] | None = "0018b"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

POLICY = "tenant_isolation"
SETTING = "NULLIF(current_setting('openrisk.tenant_id', true), '')"
CHECK = f"({SETTING} IS NULL OR tenant_id = {SETTING}::uuid)"
LIVE = sa.text("deleted_at IS NULL")
DEFAULT_DAYS = {"CRITICAL": 30, "HIGH": 90, "MEDIUM": 180, "LOW": 365}


def _days_case(days: dict[str, int]) -> str:
    whens = " ".join(f"WHEN '{band}' THEN {int(n)}" for band, n in sorted(days.items()))
    return f"CASE severity {whens} ELSE 365 END"


def _next_review_sql(postgresql: bool, days: dict[str, int]) -> str:
    if postgresql:
        due = f"(date(timezone('UTC', created_at)) + {_days_case(days)})"
    else:
        due = f"date(date(created_at), printf('+%d days', {_days_case(days)}))"
    return (
        f"CASE WHEN review_date IS NOT NULL AND review_date < {due} THEN review_date ELSE {due} END"
    )


def upgrade() -> None:
    bind = op.get_bind()
    postgresql = bind.dialect.name == "postgresql"
    op.create_table(
        "risk_reviews",
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("risk_id", sa.Uuid(), nullable=False),
        sa.Column("reviewed_on", sa.Date(), nullable=False),
        sa.Column("outcome", sa.String(length=12), nullable=False),
        sa.Column("comment", sa.Text(), nullable=False),
        sa.Column("reviewed_by", sa.Uuid(), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_risk_reviews_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["risk_id"],
            ["risks.id"],
            name=op.f("fk_risk_reviews_risk_id_risks"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["reviewed_by"],
            ["users.id"],
            name=op.f("fk_risk_reviews_reviewed_by_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_risk_reviews")),
    )
    op.create_index(
        "ix_risk_reviews_tenant_risk", "risk_reviews", ["tenant_id", "risk_id", "created_at"]
    )
    op.add_column("risks", sa.Column("last_reviewed_on", sa.Date(), nullable=True))
    op.add_column(
        "risks",
        sa.Column("next_review_date", sa.Date(), nullable=False, server_default="2000-01-01"),
    )
    custom = {}
    for tenant_id, definition in bind.execute(
        sa.text("SELECT tenant_id, definition FROM risk_models")
    ):
        if isinstance(definition, str):
            definition = json.loads(definition)
        custom[tenant_id] = {**DEFAULT_DAYS, **definition.get("review_days", {})}
    if custom:
        bind.execute(
            sa.text(
                f"UPDATE risks SET next_review_date = {_next_review_sql(postgresql, DEFAULT_DAYS)} "
                "WHERE tenant_id NOT IN :ids"
            ).bindparams(sa.bindparam("ids", expanding=True)),
            {"ids": list(custom)},
        )
        for tenant_id, days in custom.items():
            bind.execute(
                sa.text(
                    f"UPDATE risks SET next_review_date = {_next_review_sql(postgresql, days)} "
                    "WHERE tenant_id = :t"
                ),
                {"t": tenant_id},
            )
    else:
        op.execute(
            f"UPDATE risks SET next_review_date = {_next_review_sql(postgresql, DEFAULT_DAYS)}"
        )
    op.create_index(
        "ix_risks_live_next_review",
        "risks",
        ["tenant_id", "next_review_date", "id"],
        postgresql_where=LIVE,
        sqlite_where=LIVE,
    )
    if postgresql:
        op.execute('ALTER TABLE "risk_reviews" ENABLE ROW LEVEL SECURITY')
        op.execute('ALTER TABLE "risk_reviews" FORCE ROW LEVEL SECURITY')
        op.execute(f'CREATE POLICY {POLICY} ON "risk_reviews" USING {CHECK} WITH CHECK {CHECK}')


def downgrade() -> None:
    op.drop_index("ix_risks_live_next_review", table_name="risks")
    op.execute("ALTER TABLE risks DROP COLUMN next_review_date")
    op.execute("ALTER TABLE risks DROP COLUMN last_reviewed_on")
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f'DROP POLICY IF EXISTS {POLICY} ON "risk_reviews"')
    op.drop_index("ix_risk_reviews_tenant_risk", table_name="risk_reviews")
    op.drop_table("risk_reviews")
