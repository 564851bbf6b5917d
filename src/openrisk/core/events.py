"""In-process domain events: services publish after commit, subscribers react.

Inline subscribers are awaited before ``publish`` returns (cache invalidation must finish before
the write answers, for read-your-writes). Background subscribers run as tasks off the request
path (webhook delivery); their failures are logged, never raised to the publisher.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

log = logging.getLogger(__name__)


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


Handler = Callable[[DomainEvent], Awaitable[None]]


class EventBus:
    def __init__(self) -> None:
        self._inline: list[tuple[str, Handler]] = []
        self._background: list[tuple[str, Handler]] = []
        self._tasks: set[asyncio.Task[None]] = set()

    def subscribe(self, prefix: str, handler: Handler, *, inline: bool = False) -> None:
        """Call ``handler`` for events whose type starts with ``prefix`` ("" for all)."""
        (self._inline if inline else self._background).append((prefix, handler))

    async def publish(self, event: DomainEvent) -> None:
        for prefix, handler in self._inline:
            if event.type.startswith(prefix):
                await handler(event)
        for prefix, handler in self._background:
            if event.type.startswith(prefix):
                task = asyncio.create_task(self._run(handler, event))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)

    async def _run(self, handler: Handler, event: DomainEvent) -> None:
        try:
            await handler(event)
        except Exception:
            log.exception("event handler failed", extra={"event_type": event.type})

    async def drain(self, wait_s: float = 10.0) -> None:
        """Wait for background handlers (graceful shutdown, tests)."""
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=wait_s)
