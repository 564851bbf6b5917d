"""Application metrics, multi-process safe when PROMETHEUS_MULTIPROC_DIR is set.

Single process (no PROMETHEUS_MULTIPROC_DIR): the metrics live in prometheus-client's default
registry and `/metrics` renders it. Several workers (`openrisk serve --workers N`, which sets
PROMETHEUS_MULTIPROC_DIR before uvicorn spawns them): every worker writes its samples into
memory-mapped files of that directory and `/metrics`, whichever worker answers, merges the
files of all workers. Counters and histograms add up over workers (including workers that
have exited, so counters never go backwards); gauges combine as their `multiprocess_mode`
says (`livesum`: summed over running workers, `livemin`/`livemax`). The variable must be set
before prometheus_client is first imported, which is why the CLI sets it, not the app.
"""

from __future__ import annotations

import asyncio
import contextlib
import glob
import os
import re
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from sqlalchemy import event
from sqlalchemy.engine import Engine

from openrisk import __version__
from openrisk.core.db.pool import PoolStats

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
# In multi-worker mode every worker refreshes its pool gauges this often (a few attribute
# reads, no I/O); the worker answering a scrape refreshes its own right before rendering.
POOL_GAUGE_INTERVAL_S = 2.0
# Label values must stay bounded: any other request method is counted as "OTHER".
HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
OTHER_METHOD = "OTHER"

HTTP_REQUESTS = Counter(
    "openrisk_http_requests_total", "HTTP requests answered", ["method", "route", "status"]
)
HTTP_DURATION = Histogram(
    "openrisk_http_request_duration_seconds",
    "HTTP request duration by route template",
    ["method", "route"],
    buckets=LATENCY_BUCKETS,
)
HTTP_IN_PROGRESS = Gauge(
    "openrisk_http_requests_in_progress", "HTTP requests being served", multiprocess_mode="livesum"
)
DB_POOL_CONNECTIONS = Gauge(
    "openrisk_db_pool_connections",
    "Database pool connections by state",
    ["state"],
    multiprocess_mode="livesum",
)
DB_POOL_MAX = Gauge(
    "openrisk_db_pool_max_connections",
    "Maximum open connections of the pool",
    multiprocess_mode="livesum",
)
DB_POOL_WAITS = Counter("openrisk_db_pool_waits_total", "Checkouts that had to wait")
DB_POOL_TIMEOUTS = Counter("openrisk_db_pool_timeouts_total", "Checkouts that timed out")
DB_QUERY_DURATION = Histogram(
    "openrisk_db_query_duration_seconds", "Database statement duration", buckets=LATENCY_BUCKETS
)
DB_QUERIES = Counter("openrisk_db_queries_total", "Database statements executed")
DB_UP = Gauge(
    "openrisk_db_up", "1 when the last database health check passed", multiprocess_mode="livemin"
)
PERMISSION_CHECKS = Counter("openrisk_permission_checks_total", "Permission decisions", ["result"])
BUILD_INFO = Gauge(
    "openrisk_build_info", "Build information", ["version"], multiprocess_mode="livemax"
)
BUILD_INFO.labels(version=__version__).set(1)

PERMISSION_ALLOW = PERMISSION_CHECKS.labels(result="allow")
PERMISSION_DENY = PERMISSION_CHECKS.labels(result="deny")
POOL_STATES = ("in_use", "idle", "overflow")
for _state in POOL_STATES:
    DB_POOL_CONNECTIONS.labels(state=_state)


def method_label(method: str) -> str:
    return method if method in HTTP_METHODS else OTHER_METHOD


def preinitialise_series() -> None:
    """Export the cache layer's counters, with a zero hit and miss series per declared read.

    A labelled counter has no series until its first increment, and rate() needs a sample
    before the first increment to see it. Imported here rather than at module level so that
    the cache package may use openrisk.core modules without an import cycle.
    """
    from openrisk.core.cache.metrics import CACHE_REQUESTS, namespace_label
    from openrisk.core.cache.reads import REGISTRY

    for namespace in sorted({namespace_label(name) for name in REGISTRY}):
        for result in ("hit", "miss"):
            CACHE_REQUESTS.labels(namespace=namespace, result=result)


def record_pool_gauges(stats: PoolStats) -> None:
    DB_POOL_CONNECTIONS.labels(state="in_use").set(stats.in_use)
    DB_POOL_CONNECTIONS.labels(state="idle").set(stats.idle)
    DB_POOL_CONNECTIONS.labels(state="overflow").set(stats.overflow)
    DB_POOL_MAX.set(stats.max_open)


def record_pool(stats: PoolStats, *, previous: dict[str, int]) -> None:
    """Gauges, plus the waits/timeouts since the last call with the same ``previous``."""
    record_pool_gauges(stats)
    DB_POOL_WAITS.inc(max(stats.waits - previous.get("waits", 0), 0))
    DB_POOL_TIMEOUTS.inc(max(stats.timeouts - previous.get("timeouts", 0), 0))
    previous["waits"], previous["timeouts"] = stats.waits, stats.timeouts


def instrument_engine(engine: Engine) -> None:
    """Time every statement; the start time rides on the execution context."""

    @event.listens_for(engine, "before_cursor_execute")
    def _start(
        conn: Any, cursor: Any, statement: str, params: Any, context: Any, many: bool
    ) -> None:
        DB_QUERIES.inc()
        conn.info.setdefault("query_started", []).append(time.perf_counter())

    @event.listens_for(engine, "after_cursor_execute")
    def _stop(
        conn: Any, cursor: Any, statement: str, params: Any, context: Any, many: bool
    ) -> None:
        started = conn.info.get("query_started")
        if started:
            DB_QUERY_DURATION.observe(time.perf_counter() - started.pop())


def multiprocess_dir() -> str | None:
    return os.environ.get(MULTIPROC_ENV) or None


async def _refresh_pool_gauges(stats: Callable[[], PoolStats], interval_s: float) -> None:
    while True:
        record_pool_gauges(stats())
        await asyncio.sleep(interval_s)


@contextlib.asynccontextmanager
async def worker_metrics(
    pool_stats: Callable[[], PoolStats], *, interval_s: float = POOL_GAUGE_INTERVAL_S
) -> AsyncIterator[None]:
    """For the lifetime of a worker: keep its pool gauges fresh (multi-worker mode only, where
    a scrape cannot read the other workers' pools) and, on shutdown, drop its live gauges."""
    path = multiprocess_dir()
    if path is None:
        yield
        return
    refresher = asyncio.create_task(_refresh_pool_gauges(pool_stats, interval_s))
    try:
        yield
    finally:
        refresher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await refresher
        multiprocess.mark_process_dead(os.getpid(), path)  # type: ignore[no-untyped-call]


_LIVE_GAUGE_FILE = re.compile(r"gauge_live\w+?_(\d+)\.db")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _forget_dead_workers(path: str) -> None:
    """Drop the live gauges of workers that died without a clean shutdown (crash, OOM kill):
    uvicorn replaces them, and their in-progress or pool gauges must not count forever."""
    for file in glob.glob(os.path.join(path, "gauge_live*_*.db")):
        match = _LIVE_GAUGE_FILE.fullmatch(os.path.basename(file))
        if match and not _pid_alive(int(match.group(1))):
            with contextlib.suppress(FileNotFoundError):
                multiprocess.mark_process_dead(int(match.group(1)), path)  # type: ignore[no-untyped-call]


def render_latest() -> tuple[bytes, str]:
    path = multiprocess_dir()
    if path is not None:
        _forget_dead_workers(path)
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, path)  # type: ignore[no-untyped-call]
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
