"""The outbox relay: committed event rows become jobs of the engine.

PostgreSQL (``TransactionalRelay``): in one transaction, claim a batch of event rows
(``FOR UPDATE SKIP LOCKED``: relays in any number of processes never take the same row), ask
the routes which jobs they mean (``openrisk.tasks.EVENT_ROUTES``, in the same transaction), insert
those jobs with procrastinate's own SQL function (``procrastinate_defer_jobs_v1``) on the same
connection, delete the rows, commit. The jobs exist if and only if the rows are gone: no event
is lost, none is enqueued twice by the relay. The event id (the outbox row id) travels in the
job: it is the idempotency key of what the job does (a webhook's delivery id derives from it).

SQLite, the embedded default (``EmbeddedRelay``): procrastinate has no SQLite connector, so
jobs run from its in-memory connector inside the web process, and the outbox row is what
survives a restart: the relay leases the row to its process (``claimed_by``,
``claimed_until``), renews the lease while the row's jobs are queued or running, and deletes
the row once all of them have finished. After a crash the lease runs out and the next start
takes the row up again (the same event id: a receiver de-duplicates the repeated delivery);
a graceful stop hands unfinished rows back at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import timedelta
from typing import Any

import procrastinate
from procrastinate.jobs import Job
from procrastinate.testing import InMemoryConnector
from sqlalchemy import delete, or_, select, text, update

from openrisk.core.db.base import utcnow
from openrisk.core.db.engine import Database
from openrisk.core.jobs.engine import QUEUE
from openrisk.core.jobs.runtime import JobSpec
from openrisk.core.outbox import INVALIDATE_TOPIC, JOB_TOPIC_PREFIX, OutboxRow, domain_event

log = logging.getLogger(__name__)

DEFER_JOBS = text(
    """
    SELECT procrastinate_defer_jobs_v1(ARRAY(
        SELECT ROW(j.queue, j.task, 0, NULL::text, NULL::text, CAST(j.args AS jsonb),
                   NULL::timestamptz)::procrastinate_job_to_defer_v1
        FROM unnest(CAST(:queues AS varchar[]), CAST(:tasks AS varchar[]),
                    CAST(:args AS text[])) WITH ORDINALITY AS j(queue, task, args, n)
        ORDER BY j.n
    ))
    """
)


async def route(session: Any, rows: Sequence[OutboxRow]) -> list[JobSpec]:
    """The jobs these rows mean: ``job:<task>`` rows are that task; events go to the routes of
    ``openrisk.tasks.EVENT_ROUTES`` whose prefix their topic starts with."""
    from openrisk.tasks import EVENT_ROUTES

    specs: list[JobSpec] = []
    events = []
    for row in rows:
        if row.topic.startswith(JOB_TOPIC_PREFIX):
            task = row.topic.removeprefix(JOB_TOPIC_PREFIX)
            specs.append(JobSpec(task=task, args=dict(row.payload), event_id=row.id))
        else:
            events.append(domain_event(row))
    for prefix, to_jobs in EVENT_ROUTES:
        wanted = [event for event in events if event.type.startswith(prefix)]
        if wanted:
            specs.extend(await to_jobs(session, wanted))
    return specs


def _pending_rows() -> Any:
    return (
        select(OutboxRow)
        .where(OutboxRow.topic != INVALIDATE_TOPIC)
        .order_by(OutboxRow.created_at, OutboxRow.id)
    )


class JobRelay:
    """Wake-ups after commits and a poll every ``interval_s`` hand pending rows on."""

    def __init__(
        self,
        database: Database,
        app: procrastinate.App,
        *,
        interval_s: float = 5.0,
        batch: int = 200,
    ) -> None:
        self._database = database
        self._app = app
        self._interval_s = interval_s
        self._batch = batch
        self._wakeup = asyncio.Event()
        self._lock = asyncio.Lock()

    def wake(self) -> None:
        self._wakeup.set()

    async def run(self, *, also: Callable[[], Awaitable[object]] | None = None) -> None:
        """Until cancelled: relay on every wake-up and poll; ``also`` runs on each poll."""
        while True:
            # asyncio.timeout, not wait_for: Python 3.11's wait_for can swallow a cancel that
            # arrives as the wake-up is set (a shutdown right after a commit), and the relay
            # would then never stop
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._interval_s):
                    await self._wakeup.wait()
            woken = self._wakeup.is_set()
            self._wakeup.clear()
            try:
                await self.relay_pending()
                if also is not None and not woken:
                    await also()
            except asyncio.CancelledError:
                raise
            except Exception:  # the database is away: try again on the next poll
                log.warning("outbox relay pass failed", exc_info=True)

    async def relay_pending(self) -> int:
        """Relay every pending event row; returns how many rows were taken."""
        total = 0
        async with self._lock:
            while True:
                taken = await self._relay_batch()
                total += taken
                if taken < self._batch:
                    return total

    async def _relay_batch(self) -> int:
        raise NotImplementedError

    async def settled(self) -> bool:
        """True when no row taken by this relay still waits for its jobs."""
        return True

    async def close(self) -> None:
        """Graceful stop (nothing to hand back by default)."""

    def _queue_of(self, task: str) -> str:
        known = self._app.tasks.get(task)
        return known.queue if known is not None else QUEUE


class TransactionalRelay(JobRelay):
    """PostgreSQL: rows become procrastinate jobs in the transaction that deletes them."""

    async def _relay_batch(self) -> int:
        async with self._database.sessions() as session:
            rows = list(
                await session.scalars(
                    _pending_rows().limit(self._batch).with_for_update(skip_locked=True)
                )
            )
            if not rows:
                return 0
            specs = await route(session, rows)
            if specs:
                await session.execute(
                    DEFER_JOBS,
                    {
                        "queues": [self._queue_of(spec.task) for spec in specs],
                        "tasks": [spec.task for spec in specs],
                        "args": [json.dumps(spec.args) for spec in specs],
                    },
                )
            await session.execute(delete(OutboxRow).where(OutboxRow.id.in_([r.id for r in rows])))
            await session.commit()
        return len(rows)


class EmbeddedRelay(JobRelay):
    """SQLite: rows leased to this process until their in-memory jobs have finished."""

    def __init__(
        self,
        database: Database,
        app: procrastinate.App,
        *,
        lease_s: float = 30.0,
        interval_s: float = 5.0,
        batch: int = 200,
    ) -> None:
        super().__init__(database, app, interval_s=interval_s, batch=batch)
        connector = app.connector
        if not isinstance(connector, InMemoryConnector):
            raise TypeError("the embedded relay runs jobs from procrastinate's InMemoryConnector")
        self._connector = connector
        self.owner = uuid.uuid4()
        self._lease = timedelta(seconds=lease_s)
        self._jobs_of: dict[uuid.UUID, set[int]] = {}  # held row → its unfinished job ids

    async def _relay_batch(self) -> int:
        now = utcnow()
        unclaimed = or_(OutboxRow.claimed_until.is_(None), OutboxRow.claimed_until < now)
        async with self._database.sessions() as session:
            free = list(
                await session.scalars(
                    _pending_rows()
                    .with_only_columns(OutboxRow.id)
                    .where(unclaimed)
                    .limit(self._batch)
                )
            )
            if not free:  # a read only: SQLite's write lock is not taken for nothing
                return 0
            rows = list(
                await session.scalars(
                    update(OutboxRow)
                    .where(OutboxRow.id.in_(free), unclaimed)
                    .values(claimed_by=self.owner, claimed_until=now + self._lease)
                    .returning(OutboxRow)
                    .execution_options(synchronize_session=False)
                )
            )
            rows.sort(key=lambda row: (row.created_at, str(row.id)))
            specs = await route(session, rows)
            with_jobs = {spec.event_id for spec in specs}
            idle = [row.id for row in rows if row.id not in with_jobs]
            if idle:  # nothing to do for these events
                await session.execute(delete(OutboxRow).where(OutboxRow.id.in_(idle)))
            await session.commit()
        if specs:
            deferred = await self._app.job_manager.batch_defer_jobs_async(
                [
                    Job(
                        id=None,
                        queue=self._queue_of(spec.task),
                        lock=None,
                        queueing_lock=None,
                        task_name=spec.task,
                        task_kwargs=spec.args,
                    )
                    for spec in specs
                ]
            )
            for spec, job in zip(specs, deferred, strict=True):
                if spec.event_id is not None and job.id is not None:
                    self._jobs_of.setdefault(spec.event_id, set()).add(job.id)
        return len(rows)

    def _finished(self, job_id: int) -> bool:
        row = self._connector.jobs.get(job_id)
        return row is None or row["status"] not in ("todo", "doing")

    async def settle(self) -> None:
        """Delete the rows whose jobs have all finished; renew the lease of the others."""
        done = []
        for row_id, job_ids in list(self._jobs_of.items()):
            for job_id in [j for j in job_ids if self._finished(j)]:
                job_ids.discard(job_id)
                self._connector.jobs.pop(job_id, None)  # a failed job's row, kept in memory
            if not job_ids:
                done.append(row_id)
                del self._jobs_of[row_id]
        if not done and not self._jobs_of:
            return
        async with self._database.sessions() as session:
            if done:
                await session.execute(
                    delete(OutboxRow).where(
                        OutboxRow.id.in_(done), OutboxRow.claimed_by == self.owner
                    )
                )
            if self._jobs_of:
                await session.execute(
                    update(OutboxRow)
                    .where(OutboxRow.claimed_by == self.owner)
                    .values(claimed_until=utcnow() + self._lease)
                    .execution_options(synchronize_session=False)
                )
            await session.commit()

    async def keep(self, every_s: float) -> None:
        """Until cancelled: settle every ``every_s`` seconds."""
        while True:
            await asyncio.sleep(every_s)
            try:
                await self.settle()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("outbox lease renewal failed", exc_info=True)

    async def settled(self) -> bool:
        await self.settle()
        return not self._jobs_of

    async def close(self) -> None:
        """Hand the unfinished rows back: the next start (or another process) takes them."""
        await self.settle()
        if not self._jobs_of:
            return
        async with self._database.sessions() as session:
            await session.execute(
                update(OutboxRow)
                .where(OutboxRow.claimed_by == self.owner)
                .values(claimed_by=None, claimed_until=None)
                .execution_options(synchronize_session=False)
            )
            await session.commit()
        self._jobs_of.clear()
