"""One row per e-mail OpenRisk decided to send: its unique ``reason`` key is what makes a
reminder go out once (a second scan of the same due date inserts nothing)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from openrisk.core.db.base import Base, CreatedAt, UUIDPrimaryKey


class Notification(UUIDPrimaryKey, CreatedAt, Base):
    """``pending`` until the relay accepted it (``sent``) or refused it for good (``failed``).

    ``reason`` is unique: ``<kind>:<subject id>:<date or token>:<recipient>``. The rows of
    one ``batch_id`` are one e-mail. ``data`` holds what the message shows (titles, dates);
    an invitation's link token is kept sealed (encrypted with ``OPENRISK_SECRET_KEY``) and
    dropped once the message is sent.
    """

    __tablename__ = "notifications"
    __table_args__ = (
        Index("ix_notifications_tenant_created", "tenant_id", "created_at"),
        Index("ix_notifications_batch", "batch_id"),
    )

    tenant_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE")
    )
    kind: Mapped[str] = mapped_column(String(40))
    reason: Mapped[str] = mapped_column(String(300), unique=True)
    recipient: Mapped[str] = mapped_column(String(320))
    subject_id: Mapped[uuid.UUID | None]
    # the reasons of one recipient found together are told in one message (one job)
    batch_id: Mapped[uuid.UUID]
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)
    status: Mapped[str] = mapped_column(String(12), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    sent_at: Mapped[datetime | None]
