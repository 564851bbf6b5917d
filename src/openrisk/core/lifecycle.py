"""Start-up checks, the garbage collector's schedule and background upkeep of the database pool."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import Iterator

from sqlalchemy import text

from openrisk.config import Settings
from openrisk.core.db.engine import Database
from openrisk.core.metrics import DB_UP, record_pool

log = logging.getLogger(__name__)


# Allocations of container objects between two collections of the youngest generation
# (CPython's default is 700), and how many of those collections make one of the next
# generation, then of the oldest (default 10 and 10). A page of an export or a chunk of an
# import allocates hundreds of thousands: with the defaults a JSON export of 98,000 risks ran
# 2,000 young and 17 full collections, 0.4-0.6 s of its 3.5-3.8 s of CPU; with these, about
# 100 young ones and one full one, 0.15 s.
COLLECTOR_THRESHOLDS = (10_000, 10, 10)


def freeze_heap() -> None:
    """Collect what start-up left behind, keep everything still alive out of later
    collections (see ``Settings.freeze_heap_on_start``) and collect less often."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*COLLECTOR_THRESHOLDS)


_pauses = 0  # bulk operations running with the collector held off
_resume = False  # whether the collector was on when the first of them began


@contextlib.contextmanager
def collections_paused() -> Iterator[None]:
    """Hold the cyclic garbage collector off while a bulk operation runs (nested or
    concurrent ones included), and turn it back on after the last one if it was on.

    The objects of a large import live for its whole length, so each collection finds them
    alive again; with the start-up heap frozen, CPython then started a full collection every
    two chunks or so: 27 full collections took 3.9 s of a 50,000-row import's 13 s of CPU
    here. Reference counting still frees everything without a cycle meanwhile; cycles made
    in the meantime wait for the next collection."""
    global _pauses, _resume
    if _pauses == 0:
        _resume = gc.isenabled()
        gc.disable()
    _pauses += 1
    try:
        yield
    finally:
        _pauses -= 1
        if _pauses == 0 and _resume:
            gc.enable()


async def warn_if_pool_exceeds_server(database: Database, settings: Settings) -> None:
    """Warn when workers × max open could exceed PostgreSQL's max_connections."""
    if database.engine.dialect.name != "postgresql":
        return
    try:
        async with database.engine.connect() as conn:
            server_max = int((await conn.execute(text("SHOW max_connections"))).scalar_one())
    except Exception as error:  # readiness reports an unreachable database; start anyway
        log.error("cannot read max_connections: %s", error)
        return
    wanted = settings.workers * database.profile.max_open
    if wanted > server_max:
        log.warning(
            "pool may exhaust the database: %d workers x %d max open = %d > max_connections %d",
            settings.workers,
            database.profile.max_open,
            wanted,
            server_max,
            extra={"wanted_connections": wanted, "max_connections": server_max},
        )


async def check_database(database: Database) -> bool:
    try:
        await asyncio.wait_for(database.ping(), timeout=5)
    except Exception as error:
        if database.healthy:
            log.error("database health check failed: %s", error)
        database.healthy = False
    else:
        database.healthy = True
    DB_UP.set(1 if database.healthy else 0)
    return database.healthy


async def run_health_loop(database: Database, interval_s: float) -> None:
    """Periodic health check: feeds readiness, the db_up gauge and the pool gauges."""
    previous: dict[str, int] = {}
    while True:
        await check_database(database)
        record_pool(database.stats(), previous=previous)
        await asyncio.sleep(interval_s)
