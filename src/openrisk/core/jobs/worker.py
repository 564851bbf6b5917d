"""Running jobs: the engine of a process (``JobEngine``) and the stalled-job recovery.

A web process always runs the relay (its writes become jobs at once); it runs jobs too when
``Settings.runs_jobs_in_process`` (the SQLite default). ``openrisk worker`` runs the relay, the
sweeper of leftover cache invalidations and a procrastinate worker. Every worker beats a
heartbeat; every ``jobs_stalled_check_s`` each one looks for jobs left ``doing`` by a worker
silent for ``jobs_stalled_after_s`` (killed, its host gone) and puts them back in the queue.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import procrastinate
from procrastinate.testing import InMemoryConnector

from openrisk.config import Settings
from openrisk.core.jobs.engine import build_app, build_connector
from openrisk.core.jobs.relay import EmbeddedRelay, JobRelay, TransactionalRelay
from openrisk.core.jobs.runtime import RUNTIME_KEY, JobRuntime
from openrisk.core.queue_metrics import measure_job, preinitialise_job_series

log = logging.getLogger(__name__)

UNFINISHED = ("todo", "doing")


async def retry_stalled_jobs(app: procrastinate.App, *, stalled_after_s: float) -> int:
    """Put back in the queue the jobs of workers whose heartbeat stopped; how many."""
    retried = 0
    manager = app.job_manager
    for job in await manager.get_stalled_jobs(seconds_since_heartbeat=stalled_after_s):
        try:
            await manager.retry_job(job)
        except Exception:  # another worker took it back first, or it just finished
            continue
        retried += 1
        log.warning(
            "job of a stalled worker put back in the queue",
            extra={"job_id": job.id, "task": job.task_name},
        )
    return retried


class JobEngine:
    """A process's procrastinate application, relay and (optionally) worker."""

    def __init__(self, settings: Settings, runtime: JobRuntime) -> None:
        self.settings = settings
        self.runtime = runtime
        self.connector = build_connector(settings)
        from openrisk.tasks import periodic_crons

        self.app = build_app(self.connector, crons=periodic_crons(settings))
        preinitialise_job_series([name for name in self.app.tasks if ":" in name])
        self.relay: JobRelay
        if isinstance(self.connector, InMemoryConnector):
            self.relay = EmbeddedRelay(
                runtime.database,
                self.app,
                lease_s=settings.jobs_lease_s,
                interval_s=settings.outbox_interval_s,
            )
        else:
            self.relay = TransactionalRelay(
                runtime.database, self.app, interval_s=settings.outbox_interval_s
            )
        self._opened = False
        self._tasks: list[asyncio.Task[Any]] = []
        self._worker: asyncio.Task[None] | None = None

    @property
    def embedded(self) -> bool:
        return isinstance(self.relay, EmbeddedRelay)

    async def open(self) -> None:
        if not self._opened:
            await self.app.open_async()
            self._opened = True

    def worker_options(self, *, concurrency: int | None = None, wait: bool = True) -> Any:
        s = self.settings
        return {
            "concurrency": concurrency or s.jobs_concurrency,
            "wait": wait,
            "fetch_job_polling_interval": s.jobs_poll_s,
            "abort_job_polling_interval": max(s.jobs_poll_s, 1.0),
            "shutdown_graceful_timeout": s.jobs_shutdown_timeout_s,
            "update_heartbeat_interval": s.jobs_heartbeat_s,
            "stalled_worker_timeout": s.jobs_stalled_after_s,
            "delete_jobs": "successful",
            "additional_context": {RUNTIME_KEY: self.runtime},
            "worker_middleware": [measure_job],  # openrisk_jobs_total, _job_duration_seconds
            "install_signal_handlers": False,
        }

    async def start(
        self,
        *,
        run_jobs: bool,
        concurrency: int | None = None,
        also: Callable[[], Awaitable[object]] | None = None,
    ) -> None:
        """The relay (and ``also`` on each of its polls); a worker when ``run_jobs``."""
        if self.embedded or run_jobs:
            await self.open()
        self._tasks.append(asyncio.create_task(self.relay.run(also=also), name="outbox relay"))
        if isinstance(self.relay, EmbeddedRelay):
            every = min(1.0, self.settings.jobs_lease_s / 3)
            self._tasks.append(asyncio.create_task(self.relay.keep(every), name="outbox lease"))
        if run_jobs:
            options = self.worker_options(concurrency=concurrency)
            self._worker = asyncio.create_task(
                self.app.run_worker_async(**options), name="job worker"
            )
            if not self.embedded:
                self._tasks.append(asyncio.create_task(self._recover(), name="stalled jobs"))
        self.relay.wake()  # rows left by a process that stopped before relaying them

    async def _recover(self) -> None:
        while True:
            try:
                await retry_stalled_jobs(
                    self.app, stalled_after_s=self.settings.jobs_stalled_after_s
                )
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("stalled job check failed", exc_info=True)
            await asyncio.sleep(self.settings.jobs_stalled_check_s)

    async def wait(self) -> None:
        """Until the worker stops (``openrisk worker``: on SIGTERM/SIGINT)."""
        if self._worker is not None:
            await self._worker

    async def stop(self) -> None:
        """Graceful: the worker takes no new job, waits for (or releases) the running ones;
        then what is pending is relayed one last time."""
        if self._worker is not None:
            self._worker.cancel()  # procrastinate: stop fetching, wait, then release the rest
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker
            self._worker = None
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        with contextlib.suppress(Exception):
            if not self.embedded:
                await self.relay.relay_pending()
            await self.relay.close()
        if self._opened:
            await self.app.close_async()
            self._opened = False

    async def unfinished(self) -> int:
        manager = self.app.job_manager
        total = 0
        for status in UNFINISHED:
            total += len(list(await manager.list_jobs_async(status=status)))
        return total

    async def drain(self, timeout_s: float = 15.0) -> None:
        """Relay what is pending and run jobs until none is left (tests, benchmarks): with a
        worker of its own when this process runs none."""
        await self.open()
        deadline = time.monotonic() + timeout_s
        while True:
            await self.relay.relay_pending()
            if not await self.unfinished() and await self.relay.settled():
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"jobs still unfinished after {timeout_s} s")
            if self._worker is None:
                await self.app.run_worker_async(**self.worker_options(wait=False))
            await asyncio.sleep(0.01)
