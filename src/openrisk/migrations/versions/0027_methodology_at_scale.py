"""risk model jobs: a large register's model change is applied by a job (with RLS); roll-ups
of the live risks that triggers on ``risks`` move (the inherent, residual and target cells by
status, the appetite flags by creation day, the next review dates), so the dashboards read a
few rows; the creation time index also carries the next review date, so the review counts of
the risks created in a period are an index-only scan

Revision ID: 0027
Revises: 0024
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0027"
down_revision: str | Sequence[str] | None = "0024"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

POLICY = "tenant_isolation"
SETTING = "NULLIF(current_setting('openrisk.tenant_id', true), '')"
CHECK = f"({SETTING} IS NULL OR tenant_id = {SETTING}::uuid)"
JSON_TYPE = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
TABLES = ("risk_model_jobs", "risk_level_cells", "risk_appetite_days", "risk_review_dates")


def _rls(table: str) -> None:
    op.execute(f'ALTER TABLE "{table}" ENABLE ROW LEVEL SECURITY')
    op.execute(f'ALTER TABLE "{table}" FORCE ROW LEVEL SECURITY')
    op.execute(f'CREATE POLICY {POLICY} ON "{table}" USING {CHECK} WITH CHECK {CHECK}')


# What a risk contributes, as (table, key columns, SELECT list over a row source ``r``):
# a cell per level that has one, its appetite flags on its creation day.
_CELLS = "tenant_id, basis, impact, probability, status"
_DAYS = "tenant_id, day, above, residual_above"
_REVIEWS = "tenant_id, day"


def _contributions(source: str, sign: str, day: str, live: str) -> tuple[str, str, str]:
    """(cells, days, reviews): SELECTs of what the rows of ``source`` add (``sign`` 1) or take
    off."""
    cells = " UNION ALL ".join(
        f"SELECT tenant_id, '{basis}' AS basis, {basis}_impact AS impact, "
        f"{basis}_probability AS probability, status, {sign} AS n FROM {source} "
        f"WHERE {live}" + (f" AND {basis}_impact IS NOT NULL" if basis == "target" else "")
        for basis in ("inherent", "residual", "target")
    )
    days = (
        f"SELECT tenant_id, {day} AS day, NOT within_appetite AS above, "
        f"NOT residual_within_appetite AS residual_above, {sign} AS n FROM {source} WHERE {live}"
    )
    reviews = f"SELECT tenant_id, next_review_date AS day, {sign} AS n FROM {source} WHERE {live}"
    return cells, days, reviews


def _pg_function() -> str:
    day = "date(timezone('UTC', created_at))"
    parts = {}
    for op_name, sources in (
        ("INSERT", (("new_rows", "1"),)),
        ("UPDATE", (("old_rows", "-1"), ("new_rows", "1"))),
        ("DELETE", (("old_rows", "-1"),)),
    ):
        cells = []
        days = []
        reviews = []
        for source, sign in sources:
            c, d, r = _contributions(source, sign, day, "deleted_at IS NULL")
            cells.append(c)
            days.append(d)
            reviews.append(r)
        parts[op_name] = f"""
            WITH cells AS ({" UNION ALL ".join(cells)}),
            days AS ({" UNION ALL ".join(days)}),
            reviews AS ({" UNION ALL ".join(reviews)}),
            moved_cells AS (
                INSERT INTO risk_level_cells ({_CELLS}, n)
                SELECT {_CELLS}, SUM(n) FROM cells GROUP BY {_CELLS} HAVING SUM(n) <> 0
                ORDER BY {_CELLS}
                ON CONFLICT ({_CELLS}) DO UPDATE SET n = risk_level_cells.n + EXCLUDED.n
            ),
            moved_reviews AS (
                INSERT INTO risk_review_dates ({_REVIEWS}, n)
                SELECT {_REVIEWS}, SUM(n) FROM reviews GROUP BY {_REVIEWS} HAVING SUM(n) <> 0
                ORDER BY {_REVIEWS}
                ON CONFLICT ({_REVIEWS}) DO UPDATE SET n = risk_review_dates.n + EXCLUDED.n
            )
            INSERT INTO risk_appetite_days ({_DAYS}, n)
            SELECT {_DAYS}, SUM(n) FROM days GROUP BY {_DAYS} HAVING SUM(n) <> 0
            ORDER BY {_DAYS}
            ON CONFLICT ({_DAYS}) DO UPDATE SET n = risk_appetite_days.n + EXCLUDED.n;"""
    return f"""
    CREATE FUNCTION risks_level_rollups() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP = 'INSERT' THEN {parts["INSERT"]}
        ELSIF TG_OP = 'UPDATE' THEN {parts["UPDATE"]}
        ELSE {parts["DELETE"]}
        END IF;
        RETURN NULL;
    END
    $$
    """


# One statement-level trigger per write (a re-scoring UPDATE moves a few rows of each table).
PG = (
    _pg_function(),
    "CREATE TRIGGER risks_levels_insert AFTER INSERT ON risks "
    "REFERENCING NEW TABLE AS new_rows "
    "FOR EACH STATEMENT EXECUTE FUNCTION risks_level_rollups()",
    "CREATE TRIGGER risks_levels_update AFTER UPDATE ON risks "
    "REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows "
    "FOR EACH STATEMENT EXECUTE FUNCTION risks_level_rollups()",
    "CREATE TRIGGER risks_levels_delete AFTER DELETE ON risks "
    "REFERENCING OLD TABLE AS old_rows "
    "FOR EACH STATEMENT EXECUTE FUNCTION risks_level_rollups()",
)

_TRACKED = (
    "status",
    "deleted_at",
    "inherent_impact",
    "inherent_probability",
    "residual_impact",
    "residual_probability",
    "target_impact",
    "target_probability",
    "within_appetite",
    "residual_within_appetite",
    "next_review_date",
)


def _sqlite_statements(row: str, sign: str) -> str:
    """The upserts of one row's contributions (``row``: new or old) in a row trigger."""
    live = f"{row}.deleted_at IS NULL"
    statements = []
    for basis in ("inherent", "residual", "target"):
        condition = live + (f" AND {row}.target_impact IS NOT NULL" if basis == "target" else "")
        statements.append(
            f"INSERT INTO risk_level_cells ({_CELLS}, n) "
            f"SELECT {row}.tenant_id, '{basis}', {row}.{basis}_impact, "
            f"{row}.{basis}_probability, {row}.status, {sign} WHERE {condition} "
            f"ON CONFLICT ({_CELLS}) DO UPDATE SET n = n + excluded.n;"
        )
    statements.append(
        f"INSERT INTO risk_appetite_days ({_DAYS}, n) "
        f"SELECT {row}.tenant_id, date({row}.created_at), NOT {row}.within_appetite, "
        f"NOT {row}.residual_within_appetite, {sign} WHERE {live} "
        f"ON CONFLICT ({_DAYS}) DO UPDATE SET n = n + excluded.n;"
    )
    statements.append(
        f"INSERT INTO risk_review_dates ({_REVIEWS}, n) "
        f"SELECT {row}.tenant_id, {row}.next_review_date, {sign} WHERE {live} "
        f"ON CONFLICT ({_REVIEWS}) DO UPDATE SET n = n + excluded.n;"
    )
    return " ".join(statements)


SQLITE = (
    "CREATE TRIGGER risks_levels_insert AFTER INSERT ON risks "
    f"BEGIN {_sqlite_statements('new', '1')} END",
    f"CREATE TRIGGER risks_levels_update AFTER UPDATE OF {', '.join(_TRACKED)} ON risks "
    f"WHEN ({', '.join('old.' + c for c in _TRACKED)}) "
    f"IS NOT ({', '.join('new.' + c for c in _TRACKED)}) "
    f"BEGIN {_sqlite_statements('old', '-1')} {_sqlite_statements('new', '1')} END",
    "CREATE TRIGGER risks_levels_delete AFTER DELETE ON risks "
    f"BEGIN {_sqlite_statements('old', '-1')} END",
)


def _backfill(postgresql_db: bool) -> None:
    day = "date(timezone('UTC', created_at))" if postgresql_db else "date(created_at)"
    cells, days, reviews = _contributions("risks", "1", day, "deleted_at IS NULL")
    op.execute(
        f"INSERT INTO risk_level_cells ({_CELLS}, n) "
        f"SELECT {_CELLS}, SUM(n) FROM ({cells}) AS c GROUP BY {_CELLS}"
    )
    op.execute(
        f"INSERT INTO risk_appetite_days ({_DAYS}, n) "
        f"SELECT {_DAYS}, SUM(n) FROM ({days}) AS d GROUP BY {_DAYS}"
    )
    op.execute(
        f"INSERT INTO risk_review_dates ({_REVIEWS}, n) "
        f"SELECT {_REVIEWS}, SUM(n) FROM ({reviews}) AS r GROUP BY {_REVIEWS}"
    )


def upgrade() -> None:
    postgresql_db = op.get_bind().dialect.name == "postgresql"
    op.create_table(
        "risk_level_cells",
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("basis", sa.String(length=8), nullable=False),
        sa.Column("impact", sa.SmallInteger(), nullable=False),
        sa.Column("probability", sa.SmallInteger(), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_risk_level_cells_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "tenant_id",
            "basis",
            "impact",
            "probability",
            "status",
            name=op.f("pk_risk_level_cells"),
        ),
    )
    op.create_table(
        "risk_appetite_days",
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("above", sa.Boolean(), nullable=False),
        sa.Column("residual_above", sa.Boolean(), nullable=False),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_risk_appetite_days_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "tenant_id", "day", "above", "residual_above", name=op.f("pk_risk_appetite_days")
        ),
    )
    op.create_table(
        "risk_review_dates",
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_risk_review_dates_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("tenant_id", "day", name=op.f("pk_risk_review_dates")),
    )
    _backfill(postgresql_db)
    for statement in PG if postgresql_db else SQLITE:
        op.execute(statement)
    op.drop_index("ix_risks_live_created", table_name="risks")
    op.create_index(
        "ix_risks_live_created",
        "risks",
        ["tenant_id", "created_at", "id", "next_review_date"],
        postgresql_where=sa.text("deleted_at IS NULL"),
        sqlite_where=sa.text("deleted_at IS NULL"),
    )
    op.create_table(
        "risk_model_jobs",
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("requested_by", sa.Uuid(), nullable=True),
        sa.Column("request", JSON_TYPE, nullable=False),
        sa.Column("version", sa.Integer(), nullable=True),
        sa.Column("result", JSON_TYPE, nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_risk_model_jobs_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["requested_by"],
            ["users.id"],
            name=op.f("fk_risk_model_jobs_requested_by_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_risk_model_jobs")),
    )
    op.create_index(
        "ix_risk_model_jobs_tenant_created", "risk_model_jobs", ["tenant_id", "created_at"]
    )
    if postgresql_db:
        for table in TABLES:
            _rls(table)


def downgrade() -> None:
    postgresql_db = op.get_bind().dialect.name == "postgresql"
    op.drop_index("ix_risks_live_created", table_name="risks")
    op.create_index(
        "ix_risks_live_created",
        "risks",
        ["tenant_id", "created_at", "id"],
        postgresql_where=sa.text("deleted_at IS NULL"),
        sqlite_where=sa.text("deleted_at IS NULL"),
    )
    for trigger in ("risks_levels_insert", "risks_levels_update", "risks_levels_delete"):
        op.execute(f"DROP TRIGGER IF EXISTS {trigger}" + (" ON risks" if postgresql_db else ""))
    if postgresql_db:
        op.execute("DROP FUNCTION IF EXISTS risks_level_rollups()")
        for table in TABLES:
            op.execute(f'DROP POLICY IF EXISTS {POLICY} ON "{table}"')
    op.drop_table("risk_review_dates")
    op.drop_table("risk_appetite_days")
    op.drop_table("risk_level_cells")
    op.drop_index("ix_risk_model_jobs_tenant_created", table_name="risk_model_jobs")
    op.drop_table("risk_model_jobs")
