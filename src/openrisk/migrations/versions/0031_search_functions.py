"""full-text search through two security-definer functions, so that it uses its GIN index
under row-level security

Row-level security evaluates a query's own conditions after the policy's, unless they are
leakproof; ``tsvector @@ tsquery`` is not, so for the app role PostgreSQL could not use the GIN
index of ``risk_search`` and scanned every tenant's search documents (43 ms for one ranked
search at 100,000 risks, against 12 ms with the index). The functions below run as the
table's owner and apply the policy's rule themselves: the tenant asked for must be the one
the transaction is bound to. ``risk_search`` stops forcing its policy on its owner, so that
they read it with the index; every other role still goes through the policy.

Revision ID: 0031
Revises: 0028
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0031"
down_revision: str | Sequence[str] | None = "0028"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SETTING = "NULLIF(current_setting('openrisk.tenant_id', true), '')"
# the policy's rule, on the tenant asked for rather than on each row
BOUND = f"({SETTING} IS NULL OR p_tenant = {SETTING}::uuid)"
FUNCTIONS = {
    "risk_text_matches": ("risk_id uuid", "s.risk_id"),
    "risk_text_ranked": ("risk_id uuid, rank real", "s.risk_id, ts_rank(s.document, p_query)"),
}


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return  # SQLite searches its FTS5 table, without row-level security
    for name, (columns, selected) in FUNCTIONS.items():
        op.execute(
            f"""
            CREATE FUNCTION {name}(p_tenant uuid, p_query tsquery)
            RETURNS TABLE ({columns})
            LANGUAGE sql STABLE SECURITY DEFINER
            SET search_path = pg_catalog, pg_temp
            ROWS 1000
            AS $$
              SELECT {selected}
              FROM public.risk_search AS s
              WHERE s.tenant_id = p_tenant AND s.document @@ p_query AND {BOUND}
            $$
            """
        )
    op.execute("ALTER TABLE risk_search NO FORCE ROW LEVEL SECURITY")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("ALTER TABLE risk_search FORCE ROW LEVEL SECURITY")
    for name in FUNCTIONS:
        op.execute(f"DROP FUNCTION {name}(uuid, tsquery)")
