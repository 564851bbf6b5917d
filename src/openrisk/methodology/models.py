"""The stored risk model of a tenant (one row; a tenant without one uses the default)."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import Date, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from openrisk.core.db.base import Base, CreatedAt, Timestamps, UUIDPrimaryKey, utcnow


class RiskModelRecord(Base):
    """``definition`` is the model as the API shows it (without ``version``); ``version``
    starts at 1 (the default model) and grows by one with each change."""

    __tablename__ = "risk_models"

    tenant_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True
    )
    definition: Mapped[dict[str, Any]] = mapped_column()
    version: Mapped[int] = mapped_column(Integer, default=1)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_by: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )


class RiskModelJob(UUIDPrimaryKey, CreatedAt, Base):
    """A change of the risk model of a large register, applied by a job: ``queued`` →
    ``running`` → ``done`` (``version`` and ``result``: the model version it made and the
    re-mapping) or ``failed`` (``error``). ``request`` is the change as it was sent."""

    __tablename__ = "risk_model_jobs"
    __table_args__ = (Index("ix_risk_model_jobs_tenant_created", "tenant_id", "created_at"),)

    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(String(12), default="queued")
    requested_by: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )
    request: Mapped[dict[str, Any]] = mapped_column()
    version: Mapped[int | None] = mapped_column(Integer)
    result: Mapped[dict[str, Any] | None] = mapped_column()
    error: Mapped[str | None] = mapped_column(Text)
    finished_at: Mapped[datetime | None]


class RiskAcceptance(UUIDPrimaryKey, Timestamps, Base):
    """A request to accept a risk until ``expires_on``: ``submitted`` → ``approved`` or
    ``rejected``; an approved one ends ``revoked`` or ``expired``."""

    __tablename__ = "risk_acceptances"
    __table_args__ = (
        Index("ix_risk_acceptances_tenant_status", "tenant_id", "status", "created_at"),
        Index("ix_risk_acceptances_tenant_risk", "tenant_id", "risk_id"),
    )

    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    risk_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("risks.id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(String(12), default="submitted")
    justification: Mapped[str] = mapped_column(Text)
    compensating_controls: Mapped[str] = mapped_column(Text, default="")
    expires_on: Mapped[date] = mapped_column(Date)
    requested_by: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )
    decided_by: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )
    decided_at: Mapped[datetime | None]
    decision_comment: Mapped[str] = mapped_column(Text, default="")
    ended_at: Mapped[datetime | None]


class RiskReview(UUIDPrimaryKey, CreatedAt, Base):
    """A recorded review of a risk: it restarts the risk's review clock."""

    __tablename__ = "risk_reviews"
    __table_args__ = (Index("ix_risk_reviews_tenant_risk", "tenant_id", "risk_id", "created_at"),)

    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    risk_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("risks.id", ondelete="CASCADE"))
    reviewed_on: Mapped[date] = mapped_column(Date)
    outcome: Mapped[str] = mapped_column(String(12))
    comment: Mapped[str] = mapped_column(Text, default="")
    reviewed_by: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )
