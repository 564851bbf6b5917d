from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from openrisk.core.inputs import FreeJson


class TenantCreate(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    slug: str | None = Field(default=None, min_length=2, max_length=60, pattern=r"^[a-z0-9-]+$")


class TenantUpdate(BaseModel):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    status: Literal["active", "suspended"] | None = None
    settings: Annotated[dict[str, Any], FreeJson] | None = None


class TenantOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    name: str
    slug: str
    status: str
    owner_id: uuid.UUID | None
    settings: dict[str, Any]
    created_at: datetime


class TenantStats(BaseModel):
    tenant_id: uuid.UUID
    members: int
    custom_roles: int
    active_tokens: int
    audit_events: int
    counts: dict[str, int] = Field(
        default_factory=dict, description="rows per tenant-owned resource (risks, assets, …)"
    )
