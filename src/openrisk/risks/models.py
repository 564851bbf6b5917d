"""Risks, their links to assets, their append-only history and the daily aggregates of it."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    Date,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    SmallInteger,
    String,
    Text,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from openrisk.core.db.base import Base, CreatedAt, Timestamps, UUIDPrimaryKey

SCORE_TYPE = Numeric(5, 2)

LIVE = text("deleted_at IS NULL")
DELETED = text("deleted_at IS NOT NULL")


def live_index(name: str, *columns: str) -> Index:
    """A partial index over live rows, tenant first. (A ``deleted_at IS NULL`` column in the
    key would not let PostgreSQL use the following columns for ORDER BY; a predicate does.)"""
    return Index(name, "tenant_id", *columns, postgresql_where=LIVE, sqlite_where=LIVE)


# One index per sort key (same direction on every column; the id tie-breaker makes pages
# deterministic). (impact, probability) also serves the filtered 5×5 matrix; status/severity
# serve those filters sorted by score.
_LIST_INDEXES = (
    live_index("ix_risks_live_score", "score", "id"),
    live_index("ix_risks_live_title", "title", "id"),
    # next_review_date: the review counts of the risks created in a period, index-only
    live_index("ix_risks_live_created", "created_at", "id", "next_review_date"),
    live_index("ix_risks_live_updated", "updated_at", "id"),
    live_index("ix_risks_live_impact", "impact", "probability", "id"),
    live_index("ix_risks_live_probability", "probability", "impact", "id"),
    live_index("ix_risks_live_status", "status", "score", "id"),
    live_index("ix_risks_live_severity", "severity", "score", "id"),
    live_index("ix_risks_live_residual", "residual_score", "id"),
    live_index("ix_risks_live_next_review", "next_review_date", "id"),
    live_index("ix_risks_live_appetite", "within_appetite", "score", "id"),
    Index("ix_risks_tenant_owner", "tenant_id", "owner_id"),
    # the bin: deleted risks, newest deletion first (migration 0021)
    Index(
        "ix_risks_deleted",
        "tenant_id",
        "deleted_at",
        "id",
        postgresql_where=DELETED,
        sqlite_where=DELETED,
    ),
)


class Risk(UUIDPrimaryKey, Timestamps, Base):
    """A risk of a tenant. Full-text search reads side tables that triggers keep in step with
    the live risks (migration 0003): ``risk_search`` (tsvector) on PostgreSQL, the FTS5 table
    ``risks_fts`` on SQLite."""

    __tablename__ = "risks"
    __table_args__ = _LIST_INDEXES

    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    title: Mapped[str] = mapped_column(String(255))
    description: Mapped[str] = mapped_column(Text, default="")
    impact: Mapped[int] = mapped_column(SmallInteger)
    probability: Mapped[int] = mapped_column(SmallInteger)
    score: Mapped[Decimal] = mapped_column(SCORE_TYPE)
    severity: Mapped[str] = mapped_column(String(8))
    # the other levels of the risk (methodology.levels keeps them in step)
    inherent_impact: Mapped[int] = mapped_column(SmallInteger)
    inherent_probability: Mapped[int] = mapped_column(SmallInteger)
    inherent_score: Mapped[Decimal] = mapped_column(SCORE_TYPE)
    inherent_severity: Mapped[str] = mapped_column(String(8))
    residual_impact: Mapped[int] = mapped_column(SmallInteger)
    residual_probability: Mapped[int] = mapped_column(SmallInteger)
    residual_score: Mapped[Decimal] = mapped_column(SCORE_TYPE)
    residual_severity: Mapped[str] = mapped_column(String(8))
    target_impact: Mapped[int | None] = mapped_column(SmallInteger)
    target_probability: Mapped[int | None] = mapped_column(SmallInteger)
    target_score: Mapped[Decimal | None] = mapped_column(SCORE_TYPE)
    target_severity: Mapped[str | None] = mapped_column(String(8))
    within_appetite: Mapped[bool] = mapped_column(default=True)
    residual_within_appetite: Mapped[bool] = mapped_column(default=True)
    status: Mapped[str] = mapped_column(String(12))
    treatment: Mapped[str] = mapped_column(String(10))
    owner_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    tags: Mapped[list[str]] = mapped_column(default=list)
    frameworks: Mapped[list[str]] = mapped_column(default=list)
    source: Mapped[str] = mapped_column(String(12), default="MANUAL")
    external_id: Mapped[str | None] = mapped_column(String(255))
    review_date: Mapped[date | None] = mapped_column(Date)
    acceptance_expires_on: Mapped[date | None] = mapped_column(Date)
    last_reviewed_on: Mapped[date | None] = mapped_column(Date)
    # the last review (or the creation) plus the band's review days, or review_date if earlier
    next_review_date: Mapped[date] = mapped_column(Date)
    custom_fields: Mapped[dict[str, Any]] = mapped_column(default=dict)
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_by: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )
    deleted_at: Mapped[datetime | None]

    __mapper_args__ = {"version_id_col": version}


class RiskAsset(Base):
    """Many-to-many link between risks and assets (both of the same tenant)."""

    __tablename__ = "risk_assets"
    __table_args__ = (Index("ix_risk_assets_asset_risk", "asset_id", "risk_id"),)

    risk_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("risks.id", ondelete="CASCADE"), primary_key=True
    )
    asset_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("assets.id", ondelete="CASCADE"), primary_key=True
    )
    # no foreign key to tenants: the risk's own implies it (migration 0035)
    tenant_id: Mapped[uuid.UUID] = mapped_column()


class RiskHistory(UUIDPrimaryKey, CreatedAt, Base):
    """Append-only: one row per change, with the state after it and what it was before."""

    __tablename__ = "risk_history"
    __table_args__ = (
        Index("ix_risk_history_tenant_risk_created", "tenant_id", "risk_id", "created_at"),
        Index("ix_risk_history_tenant_created", "tenant_id", "created_at"),
    )

    tenant_id: Mapped[uuid.UUID] = mapped_column()  # the risk's (no foreign key of its own)
    risk_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("risks.id", ondelete="CASCADE"))
    action: Mapped[str] = mapped_column(String(16))
    impact: Mapped[int] = mapped_column(SmallInteger)
    probability: Mapped[int] = mapped_column(SmallInteger)
    score: Mapped[Decimal] = mapped_column(SCORE_TYPE)
    severity: Mapped[str] = mapped_column(String(8))
    status: Mapped[str] = mapped_column(String(12))
    prev_score: Mapped[Decimal | None] = mapped_column(SCORE_TYPE)
    prev_status: Mapped[str | None] = mapped_column(String(12))
    changed_by: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )
    changes: Mapped[dict[str, Any] | None]


class RiskDailyStat(Base):
    """Per-day deltas derived from history (live-risk count, score sum, created, mitigated).

    Maintained in the same transaction as each history row (and rebuildable from history with
    one statement), so the timeline is a running sum over at most a few hundred rows.
    ``residual_delta`` (the live risks' residual score sum) is moved by triggers on ``risks``
    (migration 0024): on a risk's creation day, then on each day its residual changes.
    """

    __tablename__ = "risk_daily_stats"

    tenant_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True
    )
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    total_delta: Mapped[int] = mapped_column(Integer, default=0)
    score_delta: Mapped[Decimal] = mapped_column(Numeric(14, 2), default=Decimal(0))
    created: Mapped[int] = mapped_column(Integer, default=0)
    mitigated: Mapped[int] = mapped_column(Integer, default=0)
    residual_delta: Mapped[Decimal] = mapped_column(
        Numeric(14, 2), default=Decimal(0), server_default="0"
    )


class RiskDayCount(Base):
    """Live risks by creation day, status and severity (count and score sum): the dashboard's
    stats per period read a few hundred of these rows instead of every risk."""

    __tablename__ = "risk_day_counts"

    tenant_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True
    )
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    status: Mapped[str] = mapped_column(String(12), primary_key=True)
    severity: Mapped[str] = mapped_column(String(8), primary_key=True)
    n: Mapped[int] = mapped_column(Integer, default=0)
    score_sum: Mapped[Decimal] = mapped_column(Numeric(14, 2), default=Decimal(0))


class RiskCellCount(Base):
    """Live risks per impact × probability cell and status (the 5×5 matrix)."""

    __tablename__ = "risk_cell_counts"

    tenant_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True
    )
    impact: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    probability: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    status: Mapped[str] = mapped_column(String(12), primary_key=True)
    n: Mapped[int] = mapped_column(Integer, default=0)


class RiskLevelCell(Base):
    """Live risks per cell of their inherent, residual or target level (``basis``) and
    status: the dashboard's matrices of those levels. Triggers on ``risks`` move them
    (migration 0027), whatever writes the levels."""

    __tablename__ = "risk_level_cells"

    tenant_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True
    )
    basis: Mapped[str] = mapped_column(String(8), primary_key=True)
    impact: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    probability: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    status: Mapped[str] = mapped_column(String(12), primary_key=True)
    n: Mapped[int] = mapped_column(Integer, default=0)


class RiskAppetiteDay(Base):
    """Live risks by creation day and whether their current and their residual score are
    above the appetite: the dashboard's appetite counts per period. Moved by triggers on
    ``risks`` (migration 0027)."""

    __tablename__ = "risk_appetite_days"

    tenant_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True
    )
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    above: Mapped[bool] = mapped_column(primary_key=True)
    residual_above: Mapped[bool] = mapped_column(primary_key=True)
    n: Mapped[int] = mapped_column(Integer, default=0)


class RiskReviewDate(Base):
    """Live risks by next review date: the dashboard's overdue and due soon counts over the
    whole register. Moved by triggers on ``risks`` (migration 0027)."""

    __tablename__ = "risk_review_dates"

    tenant_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True
    )
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    n: Mapped[int] = mapped_column(Integer, default=0)


class RiskLabel(Base):
    """The tags, frameworks and custom field values of live risks, one row each, so that
    filtering and counting by them is an index range scan (``kind`` is ``tag``, ``framework``
    or ``cf:<field name>``; ``value`` is canonical text, see ``risks.labels``)."""

    __tablename__ = "risk_labels"
    __table_args__ = (Index("ix_risk_labels_risk", "risk_id"),)

    tenant_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)  # the risk's
    kind: Mapped[str] = mapped_column(String(48), primary_key=True)
    value: Mapped[str] = mapped_column(String(255), primary_key=True)
    risk_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("risks.id", ondelete="CASCADE"), primary_key=True
    )
