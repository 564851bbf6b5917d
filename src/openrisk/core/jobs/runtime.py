"""What a task reaches the application through, and what a relay route returns."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from procrastinate import JobContext
from sqlalchemy.ext.asyncio import AsyncSession

from openrisk.config import Settings
from openrisk.core.db.base import utcnow
from openrisk.core.db.engine import Database
from openrisk.core.events import DomainEvent
from openrisk.core.uow import UnitOfWork

RUNTIME_KEY = "openrisk"


@dataclass
class JobRuntime:
    """The application's resources, as a task sees them.

    ``database`` holds background connections (unpooled, bound to no tenant: a task filters on
    the tenant it was given, as a service does); ``uow(session)`` is a unit of work wired to
    the cache invalidation; ``now()`` is UTC (tests inject a clock). ``state`` is the
    application's state object (``app.state`` of the web process, or the worker's own), where
    domain packages keep their runtimes (``state.marketplace``).
    """

    settings: Settings
    database: Database
    uow_factory: Callable[[AsyncSession], UnitOfWork] = UnitOfWork
    clock: Callable[[], datetime] = utcnow
    state: Any = None

    def uow(self, session: AsyncSession) -> UnitOfWork:
        return self.uow_factory(session)

    def now(self) -> datetime:
        return self.clock()


def job_runtime(context: JobContext) -> JobRuntime:
    """The runtime of the worker running this job (tasks declare ``pass_context=True``)."""
    runtime = context.additional_context.get(RUNTIME_KEY)
    if not isinstance(runtime, JobRuntime):
        raise RuntimeError("this job runs outside an OpenRisk worker (no JobRuntime)")
    return runtime


@dataclass(frozen=True)
class JobSpec:
    """A job the relay defers: the full task name (``namespace:name``), its JSON kwargs, and
    the id of the event (outbox row) it comes from: the embedded relay keeps that row until
    every job of it has finished."""

    task: str
    args: dict[str, Any] = field(default_factory=dict)
    event_id: uuid.UUID | None = None


Route = Callable[[AsyncSession, Sequence[DomainEvent]], Awaitable[list[JobSpec]]]
"""What a topic prefix's events become (``openrisk.tasks.EVENT_ROUTES``): the jobs to defer,
computed in the relay's transaction (the session is bound to no tenant)."""
