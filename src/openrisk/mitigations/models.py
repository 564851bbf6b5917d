"""Mitigations of risks and their sub-actions (whose completion drives progress)."""

from __future__ import annotations

import uuid
from datetime import date, datetime

from sqlalchemy import Date, Float, ForeignKey, Index, Integer, SmallInteger, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from openrisk.core.db.base import Base, CreatedAt, Timestamps, UUIDPrimaryKey
from openrisk.risks.models import DELETED, live_index


class Mitigation(UUIDPrimaryKey, Timestamps, Base):
    __tablename__ = "mitigations"
    __table_args__ = (
        live_index("ix_mitigations_live_risk", "risk_id", "created_at"),
        # overdue counts (open status, due date, period) with an index-only scan
        live_index("ix_mitigations_live_status", "status", "due_date", "created_at"),
        Index("ix_mitigations_tenant_assignee", "tenant_id", "assignee_id"),
        # restoring a risk finds the mitigations deleted with it (migration 0021)
        Index(
            "ix_mitigations_deleted_risk",
            "tenant_id",
            "risk_id",
            "deleted_at",
            postgresql_where=DELETED,
            sqlite_where=DELETED,
        ),
    )

    tenant_id: Mapped[uuid.UUID] = mapped_column()  # the risk's (no foreign key of its own)
    risk_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("risks.id", ondelete="CASCADE"))
    title: Mapped[str] = mapped_column(String(255))
    description: Mapped[str] = mapped_column(Text, default="")
    assignee_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )
    status: Mapped[str] = mapped_column(String(12), default="PLANNED")
    progress: Mapped[int] = mapped_column(SmallInteger, default=0)
    due_date: Mapped[date | None] = mapped_column(Date)
    cost: Mapped[int] = mapped_column(SmallInteger, default=2)
    effort_days: Mapped[int] = mapped_column(Integer, default=1)
    # what the mitigation does to the risk's quantified loss, and what it costs a year
    frequency_reduction: Mapped[float] = mapped_column(Float, default=0.0)
    loss_reduction: Mapped[float] = mapped_column(Float, default=0.0)
    annual_cost: Mapped[float] = mapped_column(Float, default=0.0)
    # levels it takes off the risk's current impact and probability (residual while open;
    # moved into current when it is done)
    impact_reduction: Mapped[int] = mapped_column(SmallInteger, default=0)
    probability_reduction: Mapped[int] = mapped_column(SmallInteger, default=0)
    created_by: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )
    deleted_at: Mapped[datetime | None]

    sub_actions: Mapped[list[SubAction]] = relationship(
        order_by="SubAction.position",
        cascade="all, delete-orphan",
        lazy="raise",
    )


class SubAction(UUIDPrimaryKey, CreatedAt, Base):
    __tablename__ = "mitigation_subactions"
    __table_args__ = (Index("ix_mitigation_subactions_mitigation", "mitigation_id", "position"),)

    tenant_id: Mapped[uuid.UUID] = mapped_column()  # the mitigation's
    mitigation_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("mitigations.id", ondelete="CASCADE")
    )
    title: Mapped[str] = mapped_column(String(255))
    completed: Mapped[bool] = mapped_column(default=False)
    position: Mapped[int] = mapped_column(Integer, default=0)


class MitigationDayCount(Base):
    """Live mitigations by creation day and status, for the dashboard's stats per period."""

    __tablename__ = "mitigation_day_counts"

    tenant_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True
    )
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    status: Mapped[str] = mapped_column(String(12), primary_key=True)
    n: Mapped[int] = mapped_column(Integer, default=0)
