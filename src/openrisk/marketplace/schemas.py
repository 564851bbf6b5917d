"""Request and response bodies of the marketplace API."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from openrisk.core.inputs import FreeJson
from openrisk.marketplace.configuration import MASK


class ConnectorStatus(StrEnum):
    active = "active"
    beta = "beta"
    deprecated = "deprecated"


class ConnectorSort(StrEnum):
    name = "name"
    rating = "rating"
    installs = "installs"
    relevance = "relevance"


class AppStatus(StrEnum):
    installed = "installed"
    disabled = "disabled"
    error = "error"


class ConnectorOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    name: str
    version: str
    category: str
    status: str
    capabilities: list[str]
    description: str
    documentation_url: str | None
    allow_multiple: bool
    rating: float | None = Field(description="Mean of all reviews (every tenant); null if none.")
    review_count: int
    install_count: int
    updated_at: datetime

    @field_validator("rating")
    @classmethod
    def _round(cls, value: float | None) -> float | None:
        return None if value is None else round(value, 2)


class ReviewIn(BaseModel):
    rating: int = Field(ge=1, le=5)
    comment: str = Field(default="", max_length=4000)


class ReviewOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    connector_id: str
    author_id: uuid.UUID
    rating: int
    comment: str
    created_at: datetime
    updated_at: datetime


class ConnectorDetail(ConnectorOut):
    config_schema: dict[str, Any]
    secret_fields: list[str] = Field(description="Write-only settings: never returned.")
    has_driver: bool = Field(description="False for catalogue-only connectors (no events/sync).")
    my_review: ReviewOut | None = None


class AppCreate(BaseModel):
    connector_id: str = Field(min_length=1, max_length=64)
    name: str | None = Field(default=None, min_length=1, max_length=120)
    configuration: Annotated[dict[str, Any], FreeJson] = Field(default_factory=dict)
    auto_sync: bool = False
    sync_interval_s: int = Field(default=3600, ge=60, le=7 * 24 * 3600)


class AppUpdate(BaseModel):
    """``configuration`` is a JSON merge patch: null removes a key, MASK keeps a secret."""

    name: str | None = Field(default=None, min_length=1, max_length=120)
    configuration: Annotated[dict[str, Any], FreeJson] | None = None
    auto_sync: bool | None = None
    sync_interval_s: int | None = Field(default=None, ge=60, le=7 * 24 * 3600)


class AppOut(BaseModel):
    id: uuid.UUID
    connector_id: str
    connector_name: str
    connector_version: str
    name: str
    status: str
    configuration: dict[str, Any] = Field(
        description=f"Secret settings appear as {MASK!r} when set, and are omitted otherwise."
    )
    auto_sync: bool
    sync_interval_s: int
    last_sync_at: datetime | None
    last_sync_status: str | None
    last_sync_error: str | None
    installed_by: uuid.UUID | None
    created_at: datetime
    updated_at: datetime


class AppLogOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    app_id: uuid.UUID
    action: str
    status: str
    detail: str
    data: dict[str, Any]
    created_at: datetime


class RedeliveryOut(BaseModel):
    delivery_id: uuid.UUID = Field(description="X-OpenRisk-Delivery: the same as the failed one")
    event_type: str
    status: str = Field(description='"queued": a delivery job is enqueued')


class SyncOut(BaseModel):
    status: str
    detail: str
    data: dict[str, Any]
    app: AppOut
