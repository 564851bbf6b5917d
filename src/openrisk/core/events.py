"""Domain events: what a committed change means for the rest of the system.

A service declares them on its unit of work (``uow.emit``); they are written to the outbox in
the change's transaction and become jobs through the relay (``core/jobs/relay.py``).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any


@dataclass(frozen=True)
class DomainEvent:
    """``type`` is ``"<resource>.<verb>"``, e.g. ``risk.created``, ``asset.updated``."""

    type: str
    tenant_id: uuid.UUID | None
    resource_id: uuid.UUID | str | None
    data: dict[str, Any] = field(default_factory=dict)
    actor_id: uuid.UUID | None = None
    occurred_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    id: uuid.UUID = field(default_factory=uuid.uuid4)

    @property
    def resource(self) -> str:
        return self.type.split(".", 1)[0]
