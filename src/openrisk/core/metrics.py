"""Application metrics of SPEC §7, multi-process safe when PROMETHEUS_MULTIPROC_DIR is set."""

from __future__ import annotations

import os
import time
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

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)

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


def record_pool(stats: PoolStats, *, previous: dict[str, int]) -> None:
    DB_POOL_CONNECTIONS.labels(state="in_use").set(stats.in_use)
    DB_POOL_CONNECTIONS.labels(state="idle").set(stats.idle)
    DB_POOL_CONNECTIONS.labels(state="overflow").set(stats.overflow)
    DB_POOL_MAX.set(stats.max_open)
    DB_POOL_WAITS.inc(max(stats.waits - previous.get("waits", 0), 0))
    DB_POOL_TIMEOUTS.inc(max(stats.timeouts - previous.get("timeouts", 0), 0))
    previous["waits"], previous["timeouts"] = stats.waits, stats.timeouts


def instrument_engine(engine: Engine) -> None:
    """Time every statement; the start time rides on the execution context."""

    @event.listens_for(engine, "before_cursor_execute")
    def _start(
        conn: Any, cursor: Any, statement: str, params: Any, context: Any, many: bool
    ) -> None:
        conn.info.setdefault("query_started", []).append(time.perf_counter())

    @event.listens_for(engine, "after_cursor_execute")
    def _stop(
        conn: Any, cursor: Any, statement: str, params: Any, context: Any, many: bool
    ) -> None:
        started = conn.info.get("query_started")
        if started:
            DB_QUERY_DURATION.observe(time.perf_counter() - started.pop())


def render_latest() -> tuple[bytes, str]:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
