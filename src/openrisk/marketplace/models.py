"""Connector catalogue (global), reviews, installed apps and their logs."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    CheckConstraint,
    Float,
    ForeignKey,
    Index,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from openrisk.core.db.base import Base, CreatedAt, Timestamps, UUIDPrimaryKey


class Connector(Timestamps, Base):
    """A connector of the global catalogue, upserted from ``marketplace/catalogue/*.json``."""

    __tablename__ = "connectors"
    __table_args__ = (Index("ix_connectors_category_status", "category", "status"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # slug
    name: Mapped[str] = mapped_column(String(120))
    version: Mapped[str] = mapped_column(String(40))
    category: Mapped[str] = mapped_column(String(40))
    status: Mapped[str] = mapped_column(String(16), default="active")
    capabilities: Mapped[list[str]] = mapped_column(default=list)
    description: Mapped[str] = mapped_column(Text, default="")
    documentation_url: Mapped[str | None] = mapped_column(String(500))
    config_schema: Mapped[dict[str, Any]] = mapped_column(default=dict)
    allow_multiple: Mapped[bool] = mapped_column(default=False)
    # maintained from the reviews and apps tables by SQL aggregates, never counted in Python
    rating: Mapped[float | None] = mapped_column(Float)
    review_count: Mapped[int] = mapped_column(default=0)
    install_count: Mapped[int] = mapped_column(default=0)


class ConnectorReview(UUIDPrimaryKey, Timestamps, Base):
    """One review per user and connector in each tenant the user reviews from; its text is shown
    in that tenant only, its rating counts in the connector's global mean."""

    __tablename__ = "connector_reviews"
    __table_args__ = (
        UniqueConstraint("connector_id", "tenant_id", "author_id"),
        CheckConstraint("rating BETWEEN 1 AND 5", name="rating_range"),
        Index("ix_connector_reviews_tenant_connector", "tenant_id", "connector_id", "created_at"),
    )

    connector_id: Mapped[str] = mapped_column(ForeignKey("connectors.id", ondelete="CASCADE"))
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    author_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    rating: Mapped[int] = mapped_column(SmallInteger)
    comment: Mapped[str] = mapped_column(Text, default="")


class App(UUIDPrimaryKey, Timestamps, Base):
    """A connector installed in a tenant.

    ``configuration`` holds the non-secret values only; write-only (secret) values live in
    ``secrets_encrypted`` (a Fernet token of their JSON, key derived from settings.secret_key).
    ``install_key`` is the connector id for connectors that allow one install per tenant and
    NULL otherwise, so the unique constraint enforces "one per tenant" in the database.
    """

    __tablename__ = "apps"
    __table_args__ = (
        UniqueConstraint("tenant_id", "install_key"),
        CheckConstraint("sync_interval_s >= 60", name="sync_interval_min"),
        Index("ix_apps_tenant_created", "tenant_id", "created_at"),
        Index("ix_apps_tenant_connector", "tenant_id", "connector_id"),
        Index("ix_apps_connector", "connector_id"),
        # the scheduler's claim: apps with auto_sync whose next slot has come
        Index(
            "ix_apps_next_sync",
            "next_sync_at",
            postgresql_where=text("auto_sync"),
            sqlite_where=text("auto_sync"),
        ),
    )

    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    connector_id: Mapped[str] = mapped_column(ForeignKey("connectors.id"))
    install_key: Mapped[str | None] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(120))
    status: Mapped[str] = mapped_column(String(16), default="installed")
    configuration: Mapped[dict[str, Any]] = mapped_column(default=dict)
    secrets_encrypted: Mapped[str | None] = mapped_column(Text)
    secret_keys: Mapped[list[str]] = mapped_column(default=list)  # names only, for masking
    auto_sync: Mapped[bool] = mapped_column(default=False)
    sync_interval_s: Mapped[int] = mapped_column(default=3600)
    last_sync_at: Mapped[datetime | None]
    # the start of the next scheduled sync's interval (auto_sync); NULL: due at once
    next_sync_at: Mapped[datetime | None]
    last_sync_status: Mapped[str | None] = mapped_column(String(16))
    last_sync_error: Mapped[str | None] = mapped_column(Text)
    installed_by: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )


class AppLog(UUIDPrimaryKey, CreatedAt, Base):
    """What an app did: install, configure, sync, each webhook delivery attempt..."""

    __tablename__ = "app_logs"
    __table_args__ = (
        Index("ix_app_logs_tenant_app_created", "tenant_id", "app_id", "created_at"),
        Index("ix_app_logs_app", "app_id"),
    )

    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    app_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("apps.id", ondelete="CASCADE"))
    action: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16))  # success | failure | retry | skipped
    detail: Mapped[str] = mapped_column(Text, default="")
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)


class DeadLetter(Base):
    """A delivery that failed for good (every attempt, or one that cannot succeed by retrying):
    kept, with the event it carried, until someone redelivers it. ``id`` is the delivery id
    (``X-OpenRisk-Delivery``); a redelivery sends the same one."""

    __tablename__ = "delivery_dead_letters"
    __table_args__ = (Index("ix_delivery_dead_letters_tenant_app", "tenant_id", "app_id"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    app_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("apps.id", ondelete="CASCADE"))
    event_type: Mapped[str] = mapped_column(String(120))
    event: Mapped[dict[str, Any]]  # as the delivery job had it (core/outbox.py: event_json)
    attempts: Mapped[int]
    detail: Mapped[str] = mapped_column(Text, default="")  # the last attempt's, as logged
    failed_at: Mapped[datetime]
