"""The procrastinate application of a process, built from Settings.

One ``procrastinate.App`` per runtime (a web process, a worker, a test), each with its own
connector: PostgreSQL through procrastinate's psycopg 3 connector, the embedded default (SQLite)
through procrastinate's in-memory connector, made durable by the relay keeping the outbox rows
until their jobs are done (``relay.py``). The tasks of every blueprint in ``openrisk/tasks.py`` are
bound to each application as copies (``Blueprint.add_tasks_from`` would rename and rebind the
shared blueprint to the first application only).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

import procrastinate
from procrastinate import exceptions, retry
from procrastinate.connector import BaseConnector
from procrastinate.jobs import Job
from procrastinate.tasks import Task
from procrastinate.testing import InMemoryConnector
from sqlalchemy.engine import make_url

from openrisk.config import Settings

QUEUE = "default"
# libpq's names for what asyncpg's URLs say otherwise
_QUERY_NAMES = {"ssl": "sslmode"}


def conninfo(database_url: str) -> str:
    """``postgresql+asyncpg://u:p@h:5432/db?ssl=require`` → ``postgresql://u:p@h:5432/db?
    sslmode=require`` (the same server, user and database, as libpq spells it)."""
    url = make_url(database_url)
    query = {_QUERY_NAMES.get(key, key): value for key, value in url.query.items()}
    return url.set(drivername="postgresql", query=query).render_as_string(hide_password=False)


def build_connector(settings: Settings) -> BaseConnector:
    if settings.is_sqlite:
        return InMemoryConnector()
    return procrastinate.PsycopgConnector(
        conninfo=conninfo(settings.database_url),
        min_size=1,
        max_size=max(settings.jobs_concurrency, 4) + 2,
        kwargs={"connect_timeout": max(1, round(settings.db_connect_timeout_s))},
    )


class ReleasedOnShutdown(retry.BaseRetryStrategy):
    """A job cut short by a worker's shutdown goes back to the queue at once (released, not
    lost); any other failure follows the task's own strategy (none: the job fails)."""

    def __init__(self, inner: retry.BaseRetryStrategy | None) -> None:
        self.inner = inner

    def get_retry_decision(
        self, *, exception: BaseException, job: Job
    ) -> retry.RetryDecision | None:
        if isinstance(exception, asyncio.CancelledError | exceptions.JobAborted):
            return retry.RetryDecision(retry_in={"seconds": 0})
        if self.inner is None:
            return None
        return self.inner.get_retry_decision(exception=exception, job=job)


def build_app(
    connector: BaseConnector, *, crons: Mapping[str, str] | None = None
) -> procrastinate.App:
    """``crons``: periodic tasks' schedules by full task name, instead of their declared ones
    (``openrisk.tasks.periodic_crons``: settings, so tests can tick every second)."""
    from openrisk.tasks import BLUEPRINTS

    app = procrastinate.App(connector=connector)
    for namespace, blueprint in BLUEPRINTS:
        for name, task in blueprint.tasks.items():
            bound: Task[..., object, ...] = Task(
                task.func,
                blueprint=app,
                name=f"{namespace}:{name}",
                retry=ReleasedOnShutdown(task.retry_strategy),
                pass_context=task.pass_context,
                queue=task.queue,
                priority=task.priority,
                lock=task.lock,
                queueing_lock=task.queueing_lock,
                task_middleware=task.task_middleware,
            )
            app.tasks[bound.name] = bound
        for periodic in blueprint.periodic_registry.periodic_tasks.values():
            full = f"{namespace}:{periodic.task.name}"
            app.periodic_registry.register_task(
                task=app.tasks[full],
                cron=(crons or {}).get(full, periodic.cron),
                periodic_id=periodic.periodic_id,
                configure_kwargs=periodic.configure_kwargs,
            )
    return app
