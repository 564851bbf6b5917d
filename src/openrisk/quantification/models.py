"""A risk's quantitative inputs with its last results, and a tenant's loss appetite."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Float, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from openrisk.core.db.base import Base, Timestamps


class RiskQuantification(Timestamps, Base):
    """One row per quantified risk. ``inputs`` is what the analyst entered (frequency and
    loss); ``result`` the simulation of those inputs with the risk's mitigations as they were
    then, and ``result_digest`` the digest of everything that simulation read: a result whose
    digest differs from the current inputs' is stale and is simulated again."""

    __tablename__ = "risk_quantifications"
    __table_args__ = (Index("ix_risk_quantifications_tenant", "tenant_id"),)

    risk_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("risks.id", ondelete="CASCADE"), primary_key=True
    )
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    inputs: Mapped[dict[str, Any]]
    result: Mapped[dict[str, Any] | None]
    result_digest: Mapped[str | None] = mapped_column(String(64))
    computed_at: Mapped[datetime | None]
    updated_by: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )


class LossAppetiteSetting(Timestamps, Base):
    """ "P(annual loss > threshold) <= max_probability": the loss a tenant accepts in a year."""

    __tablename__ = "quant_appetites"

    tenant_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True
    )
    threshold: Mapped[float] = mapped_column(Float)
    max_probability: Mapped[float] = mapped_column(Float)
    currency: Mapped[str] = mapped_column(String(3))
    updated_by: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )
