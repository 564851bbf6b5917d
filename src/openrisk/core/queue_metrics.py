"""Metrics of background work: jobs run (by task and outcome) and their duration, measured by a
worker middleware around every job; the outbox and the job queue, read from the database when
``/metrics`` is scraped (any web process of any host sees the same numbers).

- ``openrisk_jobs_total{task,outcome}``: succeeded | retried (failed, will run again) |
  failed (failed for good: a dead letter) | released (cut short by a shutdown, queued again)
- ``openrisk_job_duration_seconds{task}``
- ``openrisk_outbox_pending`` and ``openrisk_outbox_oldest_pending_seconds``: committed events
  not yet turned into jobs (the embedded engine keeps them until their jobs finished)
- ``openrisk_job_queue_depth`` and ``openrisk_job_oldest_pending_seconds``: jobs due and not
  started (PostgreSQL's engine; retries scheduled for later are not due yet)
- ``openrisk_jobs_dead``: jobs failed for good, waiting for ``openrisk jobs retry`` or ``purge``
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from prometheus_client import Counter, Gauge, Histogram
from sqlalchemy import text

from openrisk.core.db.base import utcnow
from openrisk.core.db.engine import Database

JOB_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)
OUTCOMES = ("succeeded", "retried", "failed", "released")

JOBS = Counter(
    "openrisk_jobs_total", "Background jobs run, by task and outcome", ["task", "outcome"]
)
JOB_DURATION = Histogram(
    "openrisk_job_duration_seconds", "Background job duration", ["task"], buckets=JOB_BUCKETS
)
# The same database value whichever process reads it: the most recent reading counts.
OUTBOX_PENDING = Gauge(
    "openrisk_outbox_pending",
    "Outbox events not yet handed to jobs",
    multiprocess_mode="mostrecent",
)
OUTBOX_OLDEST = Gauge(
    "openrisk_outbox_oldest_pending_seconds",
    "Age of the oldest outbox event not yet handed to jobs",
    multiprocess_mode="mostrecent",
)
QUEUE_DEPTH = Gauge(
    "openrisk_job_queue_depth", "Jobs due and not started", multiprocess_mode="mostrecent"
)
QUEUE_OLDEST = Gauge(
    "openrisk_job_oldest_pending_seconds",
    "How long the oldest due job has waited for a worker",
    multiprocess_mode="mostrecent",
)
DEAD = Gauge("openrisk_jobs_dead", "Jobs failed for good", multiprocess_mode="mostrecent")

OUTBOX_SQL = text("SELECT count(*), min(created_at) FROM outbox WHERE topic <> 'cache.invalidate'")
QUEUE_SQL = text(
    """
    SELECT count(*), min(coalesce(j.scheduled_at, e.at))
    FROM procrastinate_jobs j
    LEFT JOIN procrastinate_events e ON e.job_id = j.id AND e.type = 'deferred'
    WHERE j.status = 'todo' AND (j.scheduled_at IS NULL OR j.scheduled_at <= now())
    """
)
DEAD_SQL = text("SELECT count(*) FROM procrastinate_jobs WHERE status = 'failed'")


def _will_retry(context: Any, error: BaseException) -> bool:
    task, job = getattr(context, "task", None), getattr(context, "job", None)
    strategy = getattr(task, "retry_strategy", None)
    if strategy is None or job is None or not isinstance(error, Exception):
        return False
    return strategy.get_retry_decision(exception=error, job=job) is not None


async def measure_job(call_next: Callable[[], Awaitable[Any]], context: Any, worker: Any) -> Any:
    """Procrastinate worker middleware: count and time every job."""
    task = getattr(getattr(context, "job", None), "task_name", None) or "unknown"
    started = time.perf_counter()
    try:
        result = await call_next()
    except asyncio.CancelledError:
        JOBS.labels(task=task, outcome="released").inc()
        raise
    except BaseException as error:
        outcome = "retried" if _will_retry(context, error) else "failed"
        JOBS.labels(task=task, outcome=outcome).inc()
        raise
    else:
        JOBS.labels(task=task, outcome="succeeded").inc()
        return result
    finally:
        JOB_DURATION.labels(task=task).observe(time.perf_counter() - started)


def age(oldest: datetime | str | None, now: datetime) -> float:
    if oldest is None:
        return 0.0
    if isinstance(oldest, str):  # SQLite: text
        oldest = datetime.fromisoformat(oldest)
    if oldest.tzinfo is None:
        oldest = oldest.replace(tzinfo=now.tzinfo)
    return max((now - oldest).total_seconds(), 0.0)


async def refresh_queue_gauges(
    database: Database, *, now: Callable[[], datetime] = utcnow, timeout_s: float = 2.0
) -> None:
    """Read the outbox and the job queue into their gauges (bounded in time)."""
    async with asyncio.timeout(timeout_s), database.engine.connect() as conn:
        count, oldest = (await conn.execute(OUTBOX_SQL)).one()
        OUTBOX_PENDING.set(count)
        OUTBOX_OLDEST.set(age(oldest, now()))
        if conn.dialect.name != "postgresql":
            return  # the embedded engine's queue is in the serving process's memory
        depth, waiting = (await conn.execute(QUEUE_SQL)).one()
        QUEUE_DEPTH.set(depth)
        QUEUE_OLDEST.set(age(waiting, now()))
        DEAD.set((await conn.execute(DEAD_SQL)).scalar_one())


def preinitialise_job_series(tasks: list[str]) -> None:
    """A zero series per (task, outcome): rate() and increase() see the first job."""
    for task in tasks:
        for outcome in OUTCOMES:
            JOBS.labels(task=task, outcome=outcome)
