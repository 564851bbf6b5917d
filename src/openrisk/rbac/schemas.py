from __future__ import annotations

import uuid
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

# a permission code, alone or with its scope: ``risk:update`` or ``risk:update:own``
Grant = Annotated[str, Field(min_length=3, max_length=64)]


class PermissionOut(BaseModel):
    code: str
    resource: str
    action: str


class RoleOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    name: str
    description: str
    level: int
    is_predefined: bool
    permissions: list[str]


class RoleCreate(BaseModel):
    name: str = Field(min_length=1, max_length=80)
    description: str = Field(default="", max_length=2000)
    level: int = Field(ge=0, le=9)
    permissions: list[Grant] = Field(default_factory=list, max_length=200)


class RoleUpdate(BaseModel):
    name: str | None = Field(default=None, min_length=1, max_length=80)
    description: str | None = Field(default=None, max_length=2000)
    level: int | None = Field(default=None, ge=0, le=9)


class RolePermissions(BaseModel):
    permissions: list[Grant] = Field(max_length=200)
