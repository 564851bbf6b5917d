"""In-process domain events: services publish after commit, subscribers react.

Inline subscribers are awaited before ``publish`` returns (cache invalidation must finish before
the write answers, for read-your-writes). Background subscribers run as tasks off the request
path (webhook delivery); their failures are logged, never raised to the publisher.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import uuid
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Sequence
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
BatchHandler = Callable[[Sequence[DomainEvent]], Awaitable[None]]
DELIVERY_BATCH = 500


class EventBus:
    def __init__(self) -> None:
        self._inline: list[tuple[str, Handler]] = []
        self._background: list[tuple[str, Handler]] = []
        self._batches: list[tuple[str, BatchHandler]] = []
        self._tasks: set[asyncio.Task[None]] = set()

    def subscribe(self, prefix: str, handler: Handler, *, inline: bool = False) -> None:
        """Call ``handler`` for events whose type starts with ``prefix`` ("" for all)."""
        (self._inline if inline else self._background).append((prefix, handler))

    def subscribe_many(self, prefix: str, handler: BatchHandler) -> None:
        """A background subscriber that takes events in batches (one event when published
        alone, up to ``DELIVERY_BATCH`` from ``deliver_all``): it can look up once what each
        event would need."""
        self._batches.append((prefix, handler))

    async def publish(self, event: DomainEvent) -> None:
        for prefix, handler in self._inline:
            if event.type.startswith(prefix):
                await handler(event)
        await self.deliver(event)

    async def deliver(self, event: DomainEvent) -> None:
        """Hand a committed event to the background subscribers only (its cache invalidation
        was done otherwise: by the unit of work that wrote it, or once for a whole batch)."""
        for prefix, handler in self._background:
            if event.type.startswith(prefix):
                self._spawn(self._run(handler, event))
        for prefix, many in self._batches:
            if event.type.startswith(prefix):
                self._spawn(self._run_many(many, [event]))

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def deliver_all(self, events: Iterable[DomainEvent]) -> None:
        """Hand many committed events to the background subscribers, one after the other in a
        single task (a batch of thousands does not become thousands of concurrent tasks);
        ``events`` may be a generator, consumed in that task."""

        async def run() -> None:
            items = iter(events)
            while chunk := list(itertools.islice(items, DELIVERY_BATCH)):
                for event in chunk:
                    for prefix, handler in self._background:
                        if event.type.startswith(prefix):
                            await self._run(handler, event)
                for prefix, many in self._batches:
                    wanted = [e for e in chunk if e.type.startswith(prefix)]
                    if wanted:
                        await self._run_many(many, wanted)

        self._spawn(run())

    async def _run(self, handler: Handler, event: DomainEvent) -> None:
        try:
            await handler(event)
        except Exception:
            log.exception("event handler failed", extra={"event_type": event.type})

    async def _run_many(self, handler: BatchHandler, events: Sequence[DomainEvent]) -> None:
        try:
            await handler(events)
        except Exception:
            log.exception("event handler failed", extra={"event_type": events[0].type})

    async def drain(self, wait_s: float = 10.0) -> None:
        """Wait for background handlers (graceful shutdown, tests)."""
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=wait_s)
