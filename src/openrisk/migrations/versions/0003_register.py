"""register: risks, history, daily aggregates, assets, mitigations, custom fields, full-text

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26 12:36:46.781507

Dashboard roll-ups (risk_day_counts, risk_cell_counts, mitigation_day_counts, risk_daily_stats)
and risk_labels (tags, frameworks, custom field values as rows) keep aggregates and filters
O(matches) or O(days) at any register size. List indexes are partial (WHERE deleted_at IS NULL),
tenant first.

Full-text search is dialect-specific:
- PostgreSQL: ``risk_search`` (risk_id, tenant_id, document tsvector: title weight A,
  description B) with a GIN index, ranked with ts_rank.
- SQLite: the FTS5 table ``risks_fts`` (risk_id, tenant_id, title, description), ranked by bm25.
Both hold live risks only and are kept in sync by triggers on ``risks``. (A later batch
migration that recreates ``risks`` on SQLite must recreate these triggers.)
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

JSON_TYPE = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
SCORE = sa.Numeric(precision=5, scale=2)
revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PG_DOCUMENT = (
    "setweight(to_tsvector('english', coalesce({0}title, '')), 'A') || "
    "setweight(to_tsvector('english', coalesce({0}description, '')), 'B')"
)
PG_SEARCH = (
    """
    CREATE TABLE risk_search (
        risk_id uuid PRIMARY KEY REFERENCES risks (id) ON DELETE CASCADE,
        tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
        document tsvector NOT NULL
    )
    """,
    "CREATE INDEX ix_risk_search_document ON risk_search USING gin (document)",
    # deliberately no index on tenant_id alone: a generic plan would scan the tenant's rows
    # through it and test every document (the GIN bitmap is always the better plan)
    f"""
    CREATE FUNCTION risks_search_sync() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF NEW.deleted_at IS NOT NULL THEN
            DELETE FROM risk_search WHERE risk_id = NEW.id;
        ELSE
            INSERT INTO risk_search (risk_id, tenant_id, document)
            VALUES (NEW.id, NEW.tenant_id, {PG_DOCUMENT.format("NEW.")})
            ON CONFLICT (risk_id) DO UPDATE SET document = EXCLUDED.document;
        END IF;
        RETURN NULL;
    END
    $$
    """,
    """
    CREATE TRIGGER risks_search_sync
    AFTER INSERT OR UPDATE OF title, description, deleted_at ON risks
    FOR EACH ROW EXECUTE FUNCTION risks_search_sync()
    """,
)
SQLITE_FTS = (
    "CREATE VIRTUAL TABLE risks_fts USING fts5("
    "risk_id UNINDEXED, tenant_id UNINDEXED, title, description, "
    "tokenize='porter unicode61')",
    "CREATE TRIGGER risks_fts_insert AFTER INSERT ON risks WHEN new.deleted_at IS NULL BEGIN "
    "INSERT INTO risks_fts (risk_id, tenant_id, title, description) "
    "VALUES (new.id, new.tenant_id, new.title, new.description); END",
    "CREATE TRIGGER risks_fts_update AFTER UPDATE OF title, description, deleted_at ON risks "
    "BEGIN "
    "DELETE FROM risks_fts WHERE risk_id = old.id; "
    "INSERT INTO risks_fts (risk_id, tenant_id, title, description) "
    "SELECT new.id, new.tenant_id, new.title, new.description WHERE new.deleted_at IS NULL; "
    "END",
    "CREATE TRIGGER risks_fts_delete AFTER DELETE ON risks BEGIN "
    "DELETE FROM risks_fts WHERE risk_id = old.id; END",
)


def _timestamps() -> list[sa.Column[object]]:
    return [
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    ]


def _tenant_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["tenant_id"],
        ["tenants.id"],
        name=op.f(f"fk_{table}_tenant_id_tenants"),
        ondelete="CASCADE",
    )


def _user_fk(table: str, column: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        [column], ["users.id"], name=op.f(f"fk_{table}_{column}_users"), ondelete="SET NULL"
    )


LIVE = sa.text("deleted_at IS NULL")


def _live_index(name: str, table: str, columns: list[str]) -> None:
    """Partial index over live rows, tenant first (usable for ORDER BY after tenant_id)."""
    op.create_index(name, table, ["tenant_id", *columns], postgresql_where=LIVE, sqlite_where=LIVE)


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    op.create_table(
        "assets",
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("type", sa.String(length=40), nullable=False),
        sa.Column("criticality", sa.String(length=8), nullable=False),
        sa.Column("owner", sa.String(length=200), nullable=True),
        sa.Column("external_id", sa.String(length=255), nullable=True),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        *_timestamps(),
        _tenant_fk("assets"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_assets")),
    )
    _live_index("ix_assets_live_name", "assets", ["name", "id"])
    _live_index("ix_assets_live_criticality", "assets", ["criticality", "id"])
    _live_index("ix_assets_live_created", "assets", ["created_at", "id"])

    op.create_table(
        "custom_fields",
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=40), nullable=False),
        sa.Column("label", sa.String(length=100), nullable=False),
        sa.Column("type", sa.String(length=10), nullable=False),
        sa.Column("required", sa.Boolean(), nullable=False),
        sa.Column("options", JSON_TYPE, nullable=False),
        sa.Column("description", sa.String(length=500), nullable=False),
        *_timestamps(),
        _tenant_fk("custom_fields"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_custom_fields")),
        sa.UniqueConstraint("tenant_id", "name", name=op.f("uq_custom_fields_tenant_id_name")),
    )

    op.create_table(
        "risk_daily_stats",
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("total_delta", sa.Integer(), nullable=False),
        sa.Column("score_delta", sa.Numeric(precision=14, scale=2), nullable=False),
        sa.Column("created", sa.Integer(), nullable=False),
        sa.Column("mitigated", sa.Integer(), nullable=False),
        _tenant_fk("risk_daily_stats"),
        sa.PrimaryKeyConstraint("tenant_id", "day", name=op.f("pk_risk_daily_stats")),
    )

    op.create_table(
        "risk_day_counts",
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("severity", sa.String(length=8), nullable=False),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.Column("score_sum", sa.Numeric(precision=14, scale=2), nullable=False),
        _tenant_fk("risk_day_counts"),
        sa.PrimaryKeyConstraint(
            "tenant_id", "day", "status", "severity", name=op.f("pk_risk_day_counts")
        ),
    )
    op.create_table(
        "risk_cell_counts",
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("impact", sa.SmallInteger(), nullable=False),
        sa.Column("probability", sa.SmallInteger(), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("n", sa.Integer(), nullable=False),
        _tenant_fk("risk_cell_counts"),
        sa.PrimaryKeyConstraint(
            "tenant_id", "impact", "probability", "status", name=op.f("pk_risk_cell_counts")
        ),
    )
    op.create_table(
        "mitigation_day_counts",
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("n", sa.Integer(), nullable=False),
        _tenant_fk("mitigation_day_counts"),
        sa.PrimaryKeyConstraint(
            "tenant_id", "day", "status", name=op.f("pk_mitigation_day_counts")
        ),
    )

    op.create_table(
        "risks",
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("title", sa.String(length=255), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("impact", sa.SmallInteger(), nullable=False),
        sa.Column("probability", sa.SmallInteger(), nullable=False),
        sa.Column("score", SCORE, nullable=False),
        sa.Column("severity", sa.String(length=8), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("treatment", sa.String(length=10), nullable=False),
        sa.Column("owner_id", sa.Uuid(), nullable=True),
        sa.Column("tags", JSON_TYPE, nullable=False),
        sa.Column("frameworks", JSON_TYPE, nullable=False),
        sa.Column("source", sa.String(length=12), nullable=False),
        sa.Column("external_id", sa.String(length=255), nullable=True),
        sa.Column("review_date", sa.Date(), nullable=True),
        sa.Column("custom_fields", JSON_TYPE, nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_by", sa.Uuid(), nullable=True),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        *_timestamps(),
        _user_fk("risks", "created_by"),
        _user_fk("risks", "owner_id"),
        _tenant_fk("risks"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_risks")),
    )
    for name, columns in (
        ("ix_risks_live_score", ["score", "id"]),
        ("ix_risks_live_title", ["title", "id"]),
        ("ix_risks_live_created", ["created_at", "id"]),
        ("ix_risks_live_updated", ["updated_at", "id"]),
        ("ix_risks_live_impact", ["impact", "probability", "id"]),
        ("ix_risks_live_probability", ["probability", "impact", "id"]),
        ("ix_risks_live_status", ["status", "score", "id"]),
        ("ix_risks_live_severity", ["severity", "score", "id"]),
    ):
        _live_index(name, "risks", columns)
    op.create_index("ix_risks_tenant_owner", "risks", ["tenant_id", "owner_id"])

    op.create_table(
        "mitigations",
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("risk_id", sa.Uuid(), nullable=False),
        sa.Column("title", sa.String(length=255), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("assignee_id", sa.Uuid(), nullable=True),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("progress", sa.SmallInteger(), nullable=False),
        sa.Column("due_date", sa.Date(), nullable=True),
        sa.Column("cost", sa.SmallInteger(), nullable=False),
        sa.Column("effort_days", sa.Integer(), nullable=False),
        sa.Column("created_by", sa.Uuid(), nullable=True),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        *_timestamps(),
        _user_fk("mitigations", "assignee_id"),
        _user_fk("mitigations", "created_by"),
        sa.ForeignKeyConstraint(
            ["risk_id"],
            ["risks.id"],
            name=op.f("fk_mitigations_risk_id_risks"),
            ondelete="CASCADE",
        ),
        _tenant_fk("mitigations"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mitigations")),
    )
    op.create_index("ix_mitigations_tenant_assignee", "mitigations", ["tenant_id", "assignee_id"])
    _live_index("ix_mitigations_live_risk", "mitigations", ["risk_id", "created_at"])
    _live_index("ix_mitigations_live_status", "mitigations", ["status", "due_date", "created_at"])

    op.create_table(
        "risk_assets",
        sa.Column("risk_id", sa.Uuid(), nullable=False),
        sa.Column("asset_id", sa.Uuid(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["asset_id"],
            ["assets.id"],
            name=op.f("fk_risk_assets_asset_id_assets"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["risk_id"], ["risks.id"], name=op.f("fk_risk_assets_risk_id_risks"), ondelete="CASCADE"
        ),
        _tenant_fk("risk_assets"),
        sa.PrimaryKeyConstraint("risk_id", "asset_id", name=op.f("pk_risk_assets")),
    )
    op.create_index("ix_risk_assets_asset_risk", "risk_assets", ["asset_id", "risk_id"])

    op.create_table(
        "risk_labels",
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=48), nullable=False),
        sa.Column("value", sa.String(length=255), nullable=False),
        sa.Column("risk_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["risk_id"], ["risks.id"], name=op.f("fk_risk_labels_risk_id_risks"), ondelete="CASCADE"
        ),
        _tenant_fk("risk_labels"),
        sa.PrimaryKeyConstraint(
            "tenant_id", "kind", "value", "risk_id", name=op.f("pk_risk_labels")
        ),
    )
    op.create_index("ix_risk_labels_risk", "risk_labels", ["risk_id"])

    op.create_table(
        "risk_history",
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("risk_id", sa.Uuid(), nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("impact", sa.SmallInteger(), nullable=False),
        sa.Column("probability", sa.SmallInteger(), nullable=False),
        sa.Column("score", SCORE, nullable=False),
        sa.Column("severity", sa.String(length=8), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("prev_score", SCORE, nullable=True),
        sa.Column("prev_status", sa.String(length=12), nullable=True),
        sa.Column("changed_by", sa.Uuid(), nullable=True),
        sa.Column("changes", JSON_TYPE, nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        _user_fk("risk_history", "changed_by"),
        sa.ForeignKeyConstraint(
            ["risk_id"],
            ["risks.id"],
            name=op.f("fk_risk_history_risk_id_risks"),
            ondelete="CASCADE",
        ),
        _tenant_fk("risk_history"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_risk_history")),
    )
    op.create_index("ix_risk_history_tenant_created", "risk_history", ["tenant_id", "created_at"])
    op.create_index(
        "ix_risk_history_tenant_risk_created",
        "risk_history",
        ["tenant_id", "risk_id", "created_at"],
    )

    op.create_table(
        "mitigation_subactions",
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("mitigation_id", sa.Uuid(), nullable=False),
        sa.Column("title", sa.String(length=255), nullable=False),
        sa.Column("completed", sa.Boolean(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["mitigation_id"],
            ["mitigations.id"],
            name=op.f("fk_mitigation_subactions_mitigation_id_mitigations"),
            ondelete="CASCADE",
        ),
        _tenant_fk("mitigation_subactions"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mitigation_subactions")),
    )
    op.create_index(
        "ix_mitigation_subactions_mitigation",
        "mitigation_subactions",
        ["mitigation_id", "position"],
    )

    if dialect == "postgresql":
        for statement in PG_SEARCH:
            op.execute(statement)
    elif dialect == "sqlite":
        for statement in SQLITE_FTS:
            op.execute(statement)


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        for trigger in ("risks_fts_insert", "risks_fts_update", "risks_fts_delete"):
            op.execute(f"DROP TRIGGER IF EXISTS {trigger}")
        op.execute("DROP TABLE IF EXISTS risks_fts")
    elif dialect == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS risks_search_sync ON risks")
        op.execute("DROP FUNCTION IF EXISTS risks_search_sync()")
        op.execute("DROP TABLE IF EXISTS risk_search")
    op.drop_table("mitigation_subactions")
    op.drop_table("risk_history")
    op.drop_table("risk_labels")
    op.drop_table("risk_assets")
    op.drop_table("mitigations")
    op.drop_table("risks")
    op.drop_table("risk_daily_stats")
    op.drop_table("mitigation_day_counts")
    op.drop_table("risk_cell_counts")
    op.drop_table("risk_day_counts")
    op.drop_table("custom_fields")
    op.drop_table("assets")
