"""search documents kept by statement-level triggers, without foreign keys of their own

The full-text row trigger ran a PL/pgSQL function and an ``INSERT … ON CONFLICT`` for every
risk written, and every search document then checked two foreign keys: 43 ms per 1,000
inserted risks, 40 % of an import's or a seed's ``INSERT`` into ``risks``. One set-based
statement per write over the statement's transition table takes 14 ms per 1,000 (measured
by inserting 1,000 risks as the application role, five runs each). ``risk_search`` is
derived from ``risks`` and written only by these triggers, so its rows follow the risks'
own deletion (a trigger on ``DELETE``, which also runs for a tenant's cascade) instead of
foreign keys.

Revision ID: 0034
Revises: 0033
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0034"
down_revision: str | Sequence[str] | None = "0033"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

DOCUMENT = (
    "setweight(to_tsvector('english', coalesce({0}title, '')), 'A') || "
    "setweight(to_tsvector('english', coalesce({0}description, '')), 'B')"
)
UPSERT = "ON CONFLICT (risk_id) DO UPDATE SET document = EXCLUDED.document"

UPGRADE = (
    "DROP TRIGGER risks_search_sync ON risks",
    "DROP FUNCTION risks_search_sync()",
    "ALTER TABLE risk_search DROP CONSTRAINT risk_search_risk_id_fkey",
    "ALTER TABLE risk_search DROP CONSTRAINT risk_search_tenant_id_fkey",
    f"""
    CREATE FUNCTION risks_search_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        INSERT INTO risk_search (risk_id, tenant_id, document)
        SELECT id, tenant_id, {DOCUMENT.format("")} FROM new_rows WHERE deleted_at IS NULL
        {UPSERT};
        RETURN NULL;
    END
    $$
    """,
    # a statement-level trigger with transition tables cannot name columns (UPDATE OF): the
    # function compares the old and new rows itself
    f"""
    CREATE FUNCTION risks_search_updated() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        DELETE FROM risk_search
        WHERE risk_id IN (SELECT id FROM new_rows WHERE deleted_at IS NOT NULL);
        INSERT INTO risk_search (risk_id, tenant_id, document)
        SELECT n.id, n.tenant_id, {DOCUMENT.format("n.")}
        FROM new_rows n JOIN old_rows o ON o.id = n.id
        WHERE n.deleted_at IS NULL
          AND (o.deleted_at IS NOT NULL
               OR n.title IS DISTINCT FROM o.title
               OR n.description IS DISTINCT FROM o.description)
        {UPSERT};
        RETURN NULL;
    END
    $$
    """,
    """
    CREATE FUNCTION risks_search_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        DELETE FROM risk_search WHERE risk_id IN (SELECT id FROM old_rows);
        RETURN NULL;
    END
    $$
    """,
    "CREATE TRIGGER risks_search_insert AFTER INSERT ON risks "
    "REFERENCING NEW TABLE AS new_rows "
    "FOR EACH STATEMENT EXECUTE FUNCTION risks_search_inserted()",
    "CREATE TRIGGER risks_search_update AFTER UPDATE ON risks "
    "REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows "
    "FOR EACH STATEMENT EXECUTE FUNCTION risks_search_updated()",
    "CREATE TRIGGER risks_search_delete AFTER DELETE ON risks "
    "REFERENCING OLD TABLE AS old_rows "
    "FOR EACH STATEMENT EXECUTE FUNCTION risks_search_deleted()",
)

DOWNGRADE = (
    "DROP TRIGGER risks_search_insert ON risks",
    "DROP TRIGGER risks_search_update ON risks",
    "DROP TRIGGER risks_search_delete ON risks",
    "DROP FUNCTION risks_search_inserted()",
    "DROP FUNCTION risks_search_updated()",
    "DROP FUNCTION risks_search_deleted()",
    "DELETE FROM risk_search WHERE risk_id NOT IN (SELECT id FROM risks)",
    "ALTER TABLE risk_search ADD CONSTRAINT risk_search_risk_id_fkey "
    "FOREIGN KEY (risk_id) REFERENCES risks (id) ON DELETE CASCADE",
    "ALTER TABLE risk_search ADD CONSTRAINT risk_search_tenant_id_fkey "
    "FOREIGN KEY (tenant_id) REFERENCES tenants (id) ON DELETE CASCADE",
    f"""
    CREATE FUNCTION risks_search_sync() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF NEW.deleted_at IS NOT NULL THEN
            DELETE FROM risk_search WHERE risk_id = NEW.id;
        ELSE
            INSERT INTO risk_search (risk_id, tenant_id, document)
            VALUES (NEW.id, NEW.tenant_id, {DOCUMENT.format("NEW.")})
            {UPSERT};
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


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for statement in UPGRADE:
            op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for statement in DOWNGRADE:
            op.execute(statement)
