from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, Field

from openrisk.auth.emails import Email


class MemberOut(BaseModel):
    user_id: uuid.UUID
    email: str
    full_name: str
    role_id: uuid.UUID
    role_name: str
    role_level: int
    joined_at: datetime


class MemberInvite(BaseModel):
    email: Email
    role_id: uuid.UUID


class InviteOut(BaseModel):
    """Either the new member, or (unknown email) the one-time invitation to hand over."""

    status: str = Field(description="member_added or invited")
    member: MemberOut | None = None
    invitation_token: str | None = None
    invitation_url: str | None = None
    invitation_expires_at: datetime | None = None


class MemberRoleUpdate(BaseModel):
    role_id: uuid.UUID


class EffectivePermissionOut(BaseModel):
    code: str
    scope: str
    origin: str


class EffectivePermissionsOut(BaseModel):
    member: MemberOut
    permissions: list[EffectivePermissionOut]


class AcceptInvitation(BaseModel):
    token: str = Field(min_length=10, max_length=200)
    password: str = Field(min_length=10, max_length=256)
    full_name: str = Field(default="", max_length=200)


class InvitationOut(BaseModel):
    """A pending invitation (its link is shown only when it is made or renewed)."""

    id: uuid.UUID
    email: str
    role_id: uuid.UUID
    role_name: str
    invited_by: uuid.UUID | None
    created_at: datetime
    expires_at: datetime
    expired: bool
