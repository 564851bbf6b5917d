"""Generated reports, stored in the database (tenant-owned, standalone: no FK to the register)."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, deferred, mapped_column

from openrisk.core.db.base import Base, CreatedAt, UUIDPrimaryKey


class Report(UUIDPrimaryKey, CreatedAt, Base):
    __tablename__ = "reports"
    __table_args__ = (Index("ix_reports_tenant_created", "tenant_id", "created_at"),)

    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(16))  # register | executive
    format: Mapped[str] = mapped_column(String(8))  # csv | xlsx | pdf
    filename: Mapped[str] = mapped_column(String(200))
    content_type: Mapped[str] = mapped_column(String(120))
    size_bytes: Mapped[int] = mapped_column(Integer)
    # the numbers the report was built from (risk count, global score...), for listing
    summary: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # loaded only when downloading
    content: Mapped[bytes] = deferred(mapped_column(LargeBinary, nullable=False))
    created_by: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )
