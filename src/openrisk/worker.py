"""``openrisk worker``: a process that runs background jobs (wiring only, like ``app.py``).

It runs the outbox relay (rows left by web processes that stopped before relaying them), the
sweeper of leftover cache invalidations, the stalled-job recovery and a procrastinate worker
with ``--concurrency`` jobs at once. Any number of workers may run, on any hosts, against the
same PostgreSQL database. SIGTERM or SIGINT stops it gracefully: no new job is taken, running
jobs get ``OPENRISK_JOBS_SHUTDOWN_TIMEOUT_S`` to finish, those still running are put back in
the queue for another worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from types import SimpleNamespace

from openrisk.config import Settings
from openrisk.core.cache.factory import build_app_caches
from openrisk.core.cache.invalidation import CacheInvalidator
from openrisk.core.db.engine import create_database
from openrisk.core.jobs import JobRuntime
from openrisk.core.jobs.worker import JobEngine
from openrisk.core.logging import configure_logging
from openrisk.core.outbox import sweep_invalidations
from openrisk.core.uow import UnitOfWork
from openrisk.rbac.authz_cache import AuthzCache

log = logging.getLogger(__name__)


async def run_worker(settings: Settings, *, concurrency: int | None = None) -> None:
    configure_logging(level=settings.log_level, json=settings.log_json)
    # A worker's own process: its jobs share a pool sized to run them all at once.
    size = (concurrency or settings.jobs_concurrency) + 4
    database = create_database(
        settings.model_copy(update={"pool_max_open": size, "pool_max_idle": size})
    )
    caches = build_app_caches(settings)
    authz = AuthzCache(caches.shared if caches.coherent else None)
    invalidator = CacheInvalidator(caches.responses, authz=lambda: authz.bump(strict=True))
    state = SimpleNamespace(cache_invalidator=invalidator, outbox_relay=None)
    engine = JobEngine(
        settings,
        JobRuntime(
            settings=settings,
            database=database,
            uow_factory=lambda session: UnitOfWork.for_app(state, session),
            state=state,
        ),
    )
    state.outbox_relay = engine.relay
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopping.set)
    try:
        await engine.start(
            run_jobs=True,
            concurrency=concurrency,
            also=lambda: sweep_invalidations(database, invalidator),
        )
        log.info("worker started", extra={"concurrency": concurrency or settings.jobs_concurrency})
        waiting = asyncio.create_task(engine.wait())
        stop = asyncio.create_task(stopping.wait())
        await asyncio.wait({waiting, stop}, return_when=asyncio.FIRST_COMPLETED)
        stop.cancel()
        log.info("worker stopping")
    finally:
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)
        await engine.stop()
        with contextlib.suppress(Exception):
            await caches.shared.close()
        await database.dispose()
