from __future__ import annotations

import uuid

from sqlalchemy import ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from openrisk.core.db.base import Base, CreatedAt, UUIDPrimaryKey


class Role(UUIDPrimaryKey, CreatedAt, Base):
    """A role: predefined (tenant_id NULL, immutable) or custom to one tenant.

    ``permissions`` holds grants such as ``risk:read`` or ``risk:update:own``.
    """

    __tablename__ = "roles"
    __table_args__ = (UniqueConstraint("tenant_id", "name"),)

    tenant_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(80))
    description: Mapped[str] = mapped_column(Text, default="")
    level: Mapped[int] = mapped_column(default=0)
    is_predefined: Mapped[bool] = mapped_column(default=False)
    permissions: Mapped[list[str]] = mapped_column(default=list)
