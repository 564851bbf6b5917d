"""Assets of a tenant (systems, data, people) whose criticality weighs the linked risks' scores."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from openrisk.core.db.base import Base, Timestamps, UUIDPrimaryKey
from openrisk.risks.models import live_index


class Asset(UUIDPrimaryKey, Timestamps, Base):
    __tablename__ = "assets"
    __table_args__ = (
        live_index("ix_assets_live_name", "name", "id"),
        live_index("ix_assets_live_criticality", "criticality", "id"),
        live_index("ix_assets_live_created", "created_at", "id"),
    )

    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    type: Mapped[str] = mapped_column(String(40))
    criticality: Mapped[str] = mapped_column(String(8))
    owner: Mapped[str | None] = mapped_column(String(200))
    external_id: Mapped[str | None] = mapped_column(String(255))
    description: Mapped[str] = mapped_column(Text, default="")
    deleted_at: Mapped[datetime | None]
