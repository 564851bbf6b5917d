"""The stored risk model of a tenant (one row; a tenant without one uses the default)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Integer
from sqlalchemy.orm import Mapped, mapped_column

from openrisk.core.db.base import Base, utcnow


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
