from __future__ import annotations

import uuid

from pydantic import BaseModel, ConfigDict, Field

from openrisk.auth.emails import Email


class RegisterRequest(BaseModel):
    email: Email
    password: str = Field(min_length=10, max_length=256)
    full_name: str = Field(default="", max_length=200)
    tenant_name: str = Field(min_length=1, max_length=200)


class LoginRequest(BaseModel):
    email: Email
    password: str = Field(min_length=1, max_length=256)


class RefreshRequest(BaseModel):
    refresh_token: str = Field(min_length=1, max_length=512)


class UserOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    email: str
    full_name: str
    is_superuser: bool


class TokenPair(BaseModel):
    access_token: str
    refresh_token: str
    token_type: str = "bearer"
    expires_in: int
    user: UserOut


class MembershipOut(BaseModel):
    tenant_id: uuid.UUID
    tenant_name: str
    tenant_slug: str
    role_id: uuid.UUID
    role_name: str
    role_level: int
    is_default: bool


class MeOut(UserOut):
    memberships: list[MembershipOut]
