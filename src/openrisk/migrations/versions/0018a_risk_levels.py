"""risk levels: inherent, residual and target levels of every risk, the appetite flags, and the
reductions mitigations bring (existing risks: inherent and residual equal to current)

Revision ID: 0018a
Revises: 0018
"""

import json
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0018a"
down_revision: str | Sequence[str] | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SCORE = sa.Numeric(5, 2)
DEFAULT_APPETITE = 14.99
LIVE = sa.text("deleted_at IS NULL")
INDEXES = (
    ("ix_risks_live_residual", ["tenant_id", "residual_score", "id"]),
    ("ix_risks_live_appetite", ["tenant_id", "within_appetite", "score", "id"]),
)


def _columns() -> list[sa.Column[object]]:
    return [
        sa.Column("inherent_impact", sa.SmallInteger(), nullable=False, server_default="1"),
        sa.Column("inherent_probability", sa.SmallInteger(), nullable=False, server_default="1"),
        sa.Column("inherent_score", SCORE, nullable=False, server_default="1"),
        sa.Column("inherent_severity", sa.String(8), nullable=False, server_default="LOW"),
        sa.Column("residual_impact", sa.SmallInteger(), nullable=False, server_default="1"),
        sa.Column("residual_probability", sa.SmallInteger(), nullable=False, server_default="1"),
        sa.Column("residual_score", SCORE, nullable=False, server_default="1"),
        sa.Column("residual_severity", sa.String(8), nullable=False, server_default="LOW"),
        sa.Column("target_impact", sa.SmallInteger(), nullable=True),
        sa.Column("target_probability", sa.SmallInteger(), nullable=True),
        sa.Column("target_score", SCORE, nullable=True),
        sa.Column("target_severity", sa.String(8), nullable=True),
        sa.Column("within_appetite", sa.Boolean(), nullable=False, server_default=sa.true()),
        sa.Column(
            "residual_within_appetite", sa.Boolean(), nullable=False, server_default=sa.true()
        ),
    ]


def upgrade() -> None:
    for column in _columns():
        op.add_column("risks", column)
    for name in ("impact_reduction", "probability_reduction"):
        op.add_column(
            "mitigations",
            sa.Column(name, sa.SmallInteger(), nullable=False, server_default="0"),
        )
    op.execute(
        "UPDATE risks SET inherent_impact = impact, inherent_probability = probability, "
        "inherent_score = score, inherent_severity = severity, residual_impact = impact, "
        "residual_probability = probability, residual_score = score, "
        "residual_severity = severity"
    )
    bind = op.get_bind()
    appetites = {None: DEFAULT_APPETITE}
    for tenant_id, definition in bind.execute(
        sa.text("SELECT tenant_id, definition FROM risk_models")
    ):
        if isinstance(definition, str):
            definition = json.loads(definition)
        appetites[tenant_id] = float(definition.get("appetite_score", DEFAULT_APPETITE))
    flags = "within_appetite = (score <= :a), residual_within_appetite = (score <= :a)"
    custom = [t for t in appetites if t is not None]
    if custom:
        bind.execute(
            sa.text(f"UPDATE risks SET {flags} WHERE tenant_id NOT IN :ids").bindparams(
                sa.bindparam("ids", expanding=True)
            ),
            {"a": DEFAULT_APPETITE, "ids": custom},
        )
        for tenant_id in custom:
            bind.execute(
                sa.text(f"UPDATE risks SET {flags} WHERE tenant_id = :t"),
                {"a": appetites[tenant_id], "t": tenant_id},
            )
    else:
        bind.execute(sa.text(f"UPDATE risks SET {flags}"), {"a": DEFAULT_APPETITE})
    for name, columns in INDEXES:
        op.create_index(name, "risks", columns, postgresql_where=LIVE, sqlite_where=LIVE)


def downgrade() -> None:
    for name, _ in INDEXES:
        op.drop_index(name, table_name="risks")
    # plain DROP COLUMN (SQLite 3.35+): recreating the risks table would lose its triggers
    for name in ("probability_reduction", "impact_reduction"):
        op.execute(f"ALTER TABLE mitigations DROP COLUMN {name}")
    for column in reversed(_columns()):
        op.execute(f"ALTER TABLE risks DROP COLUMN {column.name}")
