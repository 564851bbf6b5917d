"""What ``openrisk jobs status|retry|purge`` does: read and tend the job queue and the outbox.

On PostgreSQL the queue is procrastinate's ``procrastinate_jobs`` table (successful jobs are
deleted when they finish; failed ones stay as dead letters until retried or purged). The
embedded engine (SQLite) keeps its queue in the serving process's memory: there only the
outbox, which holds every event until its jobs have finished, can be read from outside.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import text

from openrisk.config import Settings
from openrisk.core.db.engine import create_database
from openrisk.core.queue_metrics import OUTBOX_SQL, QUEUE_SQL, age

STATUSES = ("todo", "doing", "failed", "cancelled", "aborted", "succeeded")


@dataclass
class QueueStatus:
    embedded: bool
    outbox_pending: int
    outbox_oldest_s: float
    counts: dict[str, dict[str, int]] = field(default_factory=dict)  # task → status → n
    oldest_pending_s: float = 0.0  # the oldest due job not started


async def status(settings: Settings, *, now: datetime | None = None) -> QueueStatus:
    moment = now or datetime.now(UTC)
    database = create_database(settings, pooled=False)
    try:
        async with database.engine.connect() as conn:
            pending, oldest = (await conn.execute(OUTBOX_SQL)).one()
            found = QueueStatus(
                embedded=settings.is_sqlite,
                outbox_pending=int(pending),
                outbox_oldest_s=age(oldest, moment),
            )
            if settings.is_sqlite:
                return found
            rows = await conn.execute(
                text(
                    "SELECT task_name, status::text, count(*) FROM procrastinate_jobs "
                    "GROUP BY 1, 2 ORDER BY 1, 2"
                )
            )
            for task, state, count in rows.tuples():
                found.counts.setdefault(task, {})[state] = int(count)
            _, waiting = (await conn.execute(QUEUE_SQL)).one()
            found.oldest_pending_s = age(waiting, moment)
            return found
    finally:
        await database.dispose()


def _procrastinate(settings: Settings):  # type: ignore[no-untyped-def]
    from openrisk.core.jobs.engine import build_app, build_connector

    return build_app(build_connector(settings))


async def retry(settings: Settings, *, task: str | None = None, job_id: int | None = None) -> int:
    """Put failed jobs (dead letters) back in the queue, now; how many."""
    where = "status = 'failed'"
    params: dict[str, object] = {}
    if task:
        where += " AND task_name = :task"
        params["task"] = task
    if job_id is not None:
        where += " AND id = :id"
        params["id"] = job_id
    database = create_database(settings, pooled=False)
    try:
        async with database.engine.connect() as conn:
            ids = [
                int(i)
                for i in await conn.scalars(
                    text(f"SELECT id FROM procrastinate_jobs WHERE {where} ORDER BY id"), params
                )
            ]
    finally:
        await database.dispose()
    if not ids:
        return 0
    app = _procrastinate(settings)
    async with app.open_async():
        for one in ids:
            await app.job_manager.retry_job_by_id_async(one, datetime.now(UTC))
    return len(ids)


async def purge(settings: Settings, *, days: int, failed: bool = False) -> int:
    """Delete finished jobs (succeeded, cancelled, aborted; failed too with ``failed``) that
    finished more than ``days`` days ago; how many."""
    states = ["succeeded", "cancelled", "aborted", *(["failed"] if failed else [])]
    database = create_database(settings, pooled=False)
    try:
        async with database.engine.begin() as conn:
            deleted = await conn.execute(
                text(
                    """
                    WITH doomed AS (
                        SELECT j.id FROM procrastinate_jobs j
                        WHERE j.status::text = ANY(:states) AND NOT EXISTS (
                            SELECT 1 FROM procrastinate_events e
                            WHERE e.job_id = j.id AND e.at > now() - make_interval(days => :days)
                        )
                    ), unlinked AS (
                        UPDATE procrastinate_periodic_defers SET job_id = NULL
                        WHERE job_id IN (SELECT id FROM doomed)
                    )
                    DELETE FROM procrastinate_jobs WHERE id IN (SELECT id FROM doomed)
                    RETURNING id
                    """
                ),
                {"states": states, "days": days},
            )
            return len(deleted.all())
    finally:
        await database.dispose()
