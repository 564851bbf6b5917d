from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict


class AuditEventOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    tenant_id: uuid.UUID | None
    actor_user_id: uuid.UUID | None
    actor_token_id: uuid.UUID | None
    action: str
    resource_type: str
    resource_id: str | None
    changes: dict[str, Any] | None
    outcome: str
    ip: str | None
    user_agent: str | None
    request_id: str | None
    created_at: datetime
