"""``openrisk bench``: the same endpoints with the response cache off, then on, on the same data.

The server is a real ``openrisk serve`` subprocess on loopback (started twice: with
``OPENRISK_CACHE_ENABLED=false``, then ``true``); the load comes from N concurrent keep-alive
HTTP/1.1 connections (``perf.httpload``: httpx itself cost more CPU per request than the server
did, see that module), for a fixed time per endpoint group. Each group cycles over
a few URLs (list: filters, sorts, pages; detail: 30 risks; dashboard: stats, matrix, timeline,
top risks; health: the reference with no database or cache work). ``/metrics`` is read around
every group for the database queries per request and the cache hit rate.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import shlex
from collections.abc import Callable, Coroutine, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import httpx
from rich.console import Console
from rich.table import Table

from openrisk.config import Settings
from openrisk.perf import metrics_scrape, report
from openrisk.perf.dataset import Dataset, prepare
from openrisk.perf.httpload import Sample, hammer
from openrisk.perf.server import harness_env, running_server

API = "/api/v1"
T = TypeVar("T")


@dataclass
class BenchOptions:
    database_url: str
    cache_backend: str = "memory"
    redis_url: str = "redis://127.0.0.1:6379/0"
    workers: int = 1
    output_dir: Path = Path("reports")
    duration_s: float = 10.0
    concurrency: int = 8
    demo_password: str = ""
    command: str = ""
    server_env: dict[str, str] = field(default_factory=dict)


def endpoint_groups(dataset: Dataset) -> list[tuple[str, list[str]]]:
    return [
        ("health", [f"{API}/health"]),
        (
            "list",
            [
                f"{API}/risks",
                f"{API}/risks?sort=score&order=desc",
                f"{API}/risks?page=2",
                f"{API}/risks?status=ACTIVE",
                f"{API}/risks?severity=CRITICAL&severity=HIGH",
                f"{API}/risks?sort=updated_at&order=desc&page_size=50",
            ],
        ),
        ("detail", [f"{API}/risks/{risk_id}" for risk_id in dataset.risk_ids[:30]]),
        (
            "dashboard",
            [
                f"{API}/dashboard/stats",
                f"{API}/dashboard/matrix",
                f"{API}/dashboard/timeline?days=30",
                f"{API}/dashboard/top-risks?limit=10",
            ],
        ),
    ]


def percentile(sorted_values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile of already sorted values."""
    if not sorted_values:
        return 0.0
    rank = max(1, min(len(sorted_values), math.ceil(fraction * len(sorted_values))))
    return sorted_values[rank - 1]


def summarise(
    endpoint: str, cache: str, sample: Sample, server: metrics_scrape.Delta
) -> dict[str, Any]:
    values = sorted(sample.latencies)
    count = len(values)
    return {
        "endpoint": endpoint,
        "cache": cache,
        "requests": count,
        "errors": sample.errors,
        "avg_ms": round(sum(values) / count * 1000, 3) if count else None,
        "p50_ms": round(percentile(values, 0.50) * 1000, 3),
        "p95_ms": round(percentile(values, 0.95) * 1000, 3),
        "p99_ms": round(percentile(values, 0.99) * 1000, 3),
        "rps": round(count / sample.elapsed_s, 1) if sample.elapsed_s else None,
        "db_queries_per_request": (
            round(server.db_queries_per_request, 3)
            if server.db_queries_per_request is not None
            else None
        ),
        "cache_hit_rate": (
            round(server.cache_hit_rate, 4) if server.cache_hit_rate is not None else None
        ),
        "x_cache": dict(sample.x_cache),
        "server_mean_ms": server.server_mean_ms,
    }


async def _login(client: httpx.AsyncClient, dataset: Dataset) -> dict[str, str]:
    viewer = dataset.by_role("viewer")[0]
    response = await client.post(
        f"{API}/auth/login", json={"email": viewer.email, "password": viewer.password}
    )
    response.raise_for_status()
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


async def measure_mode(
    base_url: str,
    dataset: Dataset,
    *,
    cache: str,
    options: BenchOptions,
    on_group: Callable[[str, float], None] | None = None,
    cpu_seconds: Callable[[], float | None] = lambda: None,
) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    async with httpx.AsyncClient(base_url=base_url, timeout=30, trust_env=False) as client:
        headers = await _login(client, dataset)
        client.headers.update(headers)
        groups = endpoint_groups(dataset)
        # Warm the server (pool connections, code paths) on everything, unmeasured.
        await hammer(
            base_url,
            [url for _, urls in groups for url in urls],
            headers=headers,
            duration_s=min(2.0, options.duration_s),
            concurrency=options.concurrency,
        )
        for name, urls in groups:
            for url in urls:  # one pass: with the cache on, the answers are now stored
                (await client.get(url)).raise_for_status()
            before = await metrics_scrape.scrape_async(client)
            cpu_before = cpu_seconds()

            def progress(elapsed: float, group: str = name) -> None:
                if on_group:
                    on_group(group, elapsed)

            sample = await hammer(
                base_url,
                urls,
                headers=headers,
                duration_s=options.duration_s,
                concurrency=options.concurrency,
                on_progress=progress,
            )
            cpu_after = cpu_seconds()
            after = await metrics_scrape.scrape_async(client)
            endpoint = name if name != "health" else "health (reference)"
            row = summarise(endpoint, cache, sample, metrics_scrape.delta(before, after))
            if cpu_before is not None and cpu_after is not None and sample.latencies:
                per_request = (cpu_after - cpu_before) / len(sample.latencies)
                row["server_cpu_ms"] = round(per_request * 1e3, 3)
            rows.append(row)
            if on_group:
                on_group(name, options.duration_s)
    return rows


def _run(coroutine: Coroutine[Any, Any, T]) -> T:
    """On uvloop when available (as the server): the client must cost less than the server."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvicorn[standard] brings it
        return asyncio.run(coroutine)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(coroutine)


def combine(off: list[dict[str, Any]], on: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Off and on rows interleaved per endpoint; the "on" row carries the throughput ratio."""
    rows: list[dict[str, Any]] = []
    for before, after in zip(off, on, strict=True):
        if before["rps"] and after["rps"]:
            after["speedup"] = round(after["rps"] / before["rps"], 2)
        if before.get("server_cpu_ms") and after.get("server_cpu_ms"):
            after["cpu_ratio"] = round(before["server_cpu_ms"] / after["server_cpu_ms"], 2)
        rows += [before, after]
    return rows


def _settings(options: BenchOptions) -> Settings:
    return Settings(
        database_url=options.database_url,
        cache_backend=options.cache_backend,
        redis_url=options.redis_url,
        log_level="WARNING",
    )


def _server_env(options: BenchOptions, *, cache_enabled: bool) -> dict[str, str]:
    env = {
        "OPENRISK_DATABASE_URL": options.database_url,
        "OPENRISK_CACHE_BACKEND": options.cache_backend,
        "OPENRISK_CACHE_ENABLED": "true" if cache_enabled else "false",
        "OPENRISK_REDIS_URL": options.redis_url,
        "OPENRISK_LOG_LEVEL": "INFO",  # the default: one JSON access line per request
    }
    env.update(harness_env(options.server_env))
    return env


class BenchProgress:
    """One progress bar per (mode, endpoint group); silent without a console."""

    def __init__(self, progress: Any | None, total: float) -> None:
        self.progress, self.total, self.mode = progress, total, "off"
        self.tasks: dict[str, Any] = {}

    def __call__(self, group: str, elapsed: float) -> None:
        if self.progress is None:
            return
        key = f"{self.mode}:{group}"
        if key not in self.tasks:
            self.tasks[key] = self.progress.add_task(
                f"cache {self.mode:>3} · {group}", total=self.total
            )
        self.progress.update(self.tasks[key], completed=min(elapsed, self.total))


@contextlib.contextmanager
def _progress(console: Console | None, total: float) -> Iterator[BenchProgress]:
    if console is None:
        yield BenchProgress(None, total)
        return
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    columns = (TextColumn("[bold]{task.description}"), BarColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console) as progress:
        yield BenchProgress(progress, total)


def run_bench(options: BenchOptions, *, console: Console | None = None) -> dict[str, Any]:
    """Measure, print the table (when given a console) and write the reports."""

    def say(message: str) -> None:
        if console is not None:
            console.print(message)

    settings = _settings(options)
    say(f"preparing the data set ({report.redact_url(options.database_url)})…")
    dataset = prepare(settings, demo_password=options.demo_password or "bench-demo-password")
    started = datetime.now(UTC)
    load_at_start = report.load_average()
    results: dict[str, list[dict[str, Any]]] = {}
    workdir = options.output_dir / ".work" / f"bench-{report.timestamp(started)}"
    with _progress(console, options.duration_s) as on_group:
        for mode, enabled in (("off", False), ("on", True)):
            if options.cache_backend != "none":
                from openrisk.perf.loadtest import clear_shared_cache

                asyncio.run(clear_shared_cache(settings))
            on_group.mode = mode
            with running_server(
                env=_server_env(options, cache_enabled=enabled),
                workers=options.workers,
                log=workdir / f"server-cache-{mode}.log",
            ) as server:
                results[mode] = _run(
                    measure_mode(
                        server.base_url,
                        dataset,
                        cache=mode,
                        options=options,
                        on_group=on_group,
                        cpu_seconds=server.cpu_seconds,
                    )
                )
    rows = combine(results["off"], results["on"])
    machine = report.machine()
    machine["load_average"] = load_at_start
    machine["load_average_end"] = report.load_average()
    data: dict[str, Any] = {
        "kind": "bench",
        "started_at": started.isoformat(timespec="seconds"),
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine,
        "command": options.command,
        "setup": {
            "database": "sqlite" if options.database_url.startswith("sqlite") else "postgresql",
            "database_url": report.redact_url(options.database_url),
            "cache_backend": options.cache_backend,
            "workers": options.workers,
            "concurrency": options.concurrency,
            "server_env": {
                k: v for k, v in harness_env(options.server_env).items() if "SECRET" not in k
            },
            "duration_s": options.duration_s,
            "urls": {name: urls for name, urls in endpoint_groups(dataset)},
        },
        "dataset": dataset.summary(),
        "rows": rows,
        "speedups": {row["endpoint"]: row["speedup"] for row in rows if row.get("speedup")},
        "files": {},
    }
    stem = options.output_dir / f"bench-{report.timestamp(started)}"
    data["files"] = {"md": str(stem.with_suffix(".md")), "json": str(stem.with_suffix(".json"))}
    report.write_json(Path(data["files"]["json"]), data)
    Path(data["files"]["md"]).write_text(report.bench_markdown(data))
    if console is not None:
        table = Table(*report.BENCH_HEADERS, title="openrisk bench: cache off vs on")
        for row in report.bench_rows(rows):
            table.add_row(*row)
        wide = Console(width=max(console.width, 150), file=console.file)
        wide.print(table)
    return data


def command_line(argv: Sequence[str]) -> str:
    return "openrisk " + " ".join(shlex.quote(a) for a in argv)
