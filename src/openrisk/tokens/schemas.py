from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from openrisk.rbac.schemas import Grant


class TokenCreate(BaseModel):
    name: str = Field(min_length=1, max_length=100)
    permissions: list[Grant] | None = Field(
        default=None,
        max_length=200,
        description="Grants for the token (subset of yours); default: all of yours.",
    )
    expires_in_days: int | None = Field(default=90, ge=1, le=3650)


class TokenOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    name: str
    prefix: str
    user_id: uuid.UUID
    permissions: list[str]
    expires_at: datetime | None
    last_used_at: datetime | None
    revoked_at: datetime | None
    created_at: datetime


class TokenSecretOut(BaseModel):
    """Returned once, at creation or rotation: ``token`` is never shown again."""

    id: uuid.UUID
    name: str
    token: str
    prefix: str
    permissions: list[str]
    expires_at: datetime | None
