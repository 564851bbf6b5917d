"""Python CPU per uncached request, in process: what one worker spends on a request besides
waiting for the database.

```
python -m benchmarks.cpu_bench \
    --database-url postgresql+asyncpg://postgres@127.0.0.1:5432/openrisk_method_bench
```

It reads an already-seeded database (``openrisk seed`` or another benchmark's; nothing is
written but a sign-in) and calls the ASGI application directly — no HTTP client, no server,
no socket: the figure is the application's own work (routing, dependencies, authentication
from the warm per-process caches, the SQL's round trips through SQLAlchemy and asyncpg,
serialisation). The response cache is off, so every request runs its statements. Requests
are interleaved (one of each in turn) for ``--rounds`` rounds after ``--warmup`` ones; for
each it prints the median and mean CPU time of the process per request (``time.process_time``:
the PostgreSQL server's CPU is not in it), the median wall time, and the Python function
calls of one more request (counted by cProfile: the same on a loaded host as on an idle one).
``--profile FILE`` also writes a cProfile of the measured rounds.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import pstats
import statistics
import time
import uuid
from collections.abc import Sequence
from typing import Any

import orjson
from rich.console import Console
from rich.table import Table
from sqlalchemy import select

from benchmarks.register_bench import PASSWORD, largest_tenant, uncached_settings
from openrisk.app import create_app
from openrisk.core.db.engine import create_database
from openrisk.risks.models import Risk

console = Console()


def requests(risk_id: uuid.UUID) -> dict[str, str]:
    return {
        "health": "/api/v1/health",
        "list page 1": "/api/v1/risks",
        "list sort=score": "/api/v1/risks?sort=score&order=desc",
        "matrix": "/api/v1/dashboard/matrix",
        "stats 7d": "/api/v1/dashboard/stats?period=7d",
        "stats 30d": "/api/v1/dashboard/stats?period=30d",
        "stats 90d": "/api/v1/dashboard/stats?period=90d",
        "stats all": "/api/v1/dashboard/stats?period=all",
        "timeline 30d": "/api/v1/dashboard/timeline?days=30",
        "top-risks": "/api/v1/dashboard/top-risks",
        "risk detail": f"/api/v1/risks/{risk_id}",
    }


class Caller:
    """One request straight into the ASGI app: (status, body)."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.headers: list[tuple[bytes, bytes]] = []

    async def __call__(
        self, method: str, url: str, body: bytes = b"", content_type: str | None = None
    ) -> tuple[int, bytes]:
        path, _, query = url.partition("?")
        headers = [(b"host", b"bench"), *self.headers]
        if content_type:
            headers.append((b"content-type", content_type.encode()))
            headers.append((b"content-length", str(len(body)).encode()))
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": method,
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "query_string": query.encode(),
            "root_path": "",
            "headers": headers,
            "client": ("127.0.0.1", 50000),
            "server": ("bench", 80),
            "state": {},
        }
        sent = False
        status = 0
        chunks: list[bytes] = []

        async def receive() -> dict[str, Any]:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            await asyncio.sleep(3600)
            return {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        await self.app(scope, receive, send)
        return status, b"".join(chunks)


async def some_risk(settings: Any, tenant_id: uuid.UUID) -> uuid.UUID:
    database = create_database(settings, pooled=False)
    try:
        async with database.session() as session:
            found = await session.scalar(
                select(Risk.id)
                .where(Risk.tenant_id == tenant_id, Risk.deleted_at.is_(None))
                .order_by(Risk.created_at.desc())
                .limit(1)
            )
            assert found is not None
            return found
    finally:
        await database.dispose()


async def measure(args: argparse.Namespace) -> dict[str, dict[str, float]]:
    settings = uncached_settings(
        args.database_url, outbox_interval_s=300, pool_health_interval_s=300
    )
    tenant_id, email, live = await largest_tenant(settings)
    risk_id = await some_risk(settings, tenant_id)
    urls = requests(risk_id)
    if args.only:
        urls = {name: url for name, url in urls.items() if name in args.only}
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    console.print(f"tenant {tenant_id} ({live:,} live risks); load average {load}")
    app = create_app(settings)
    cpu: dict[str, list[float]] = {name: [] for name in urls}
    wall: dict[str, list[float]] = {name: [] for name in urls}
    calls: dict[str, int] = {}
    async with app.router.lifespan_context(app):
        call = Caller(app)
        status, body = await call(
            "POST",
            "/api/v1/auth/login",
            orjson.dumps({"email": email, "password": PASSWORD}),
            "application/json",
        )
        if status != 200:
            raise RuntimeError(f"sign-in answered {status}: {body[:200]!r}")
        token = orjson.loads(body)["access_token"]
        call.headers = [
            (b"authorization", f"Bearer {token}".encode()),
            (b"x-tenant-id", str(tenant_id).encode()),
        ]
        # the profile's clock is the process's CPU time: waits for the database are not in it
        profiler = cProfile.Profile(time.process_time) if args.profile else None
        for round_ in range(args.warmup + args.rounds):
            measured = round_ >= args.warmup
            for name, url in urls.items():
                if measured and profiler:
                    profiler.enable()
                started_cpu, started = time.process_time(), time.perf_counter()
                status, body = await call("GET", url)
                elapsed_cpu, elapsed = (
                    time.process_time() - started_cpu,
                    time.perf_counter() - started,
                )
                if measured and profiler:
                    profiler.disable()
                if status != 200:
                    raise RuntimeError(f"GET {url} answered {status}: {body[:300]!r}")
                if measured:
                    cpu[name].append(elapsed_cpu * 1000)
                    wall[name].append(elapsed * 1000)
        if profiler:
            profiler.dump_stats(args.profile)
        # Python function calls per request: deterministic, unlike times on a shared host
        for name, url in urls.items():
            counter = cProfile.Profile()
            counter.enable()
            await call("GET", url)
            counter.disable()
            calls[name] = pstats.Stats(counter).total_calls  # type: ignore[attr-defined,unused-ignore]
    return {
        name: {
            "cpu_median_ms": statistics.median(cpu[name]),
            "cpu_mean_ms": statistics.fmean(cpu[name]),
            "wall_median_ms": statistics.median(wall[name]),
            "calls": calls[name],
        }
        for name in urls
    }


def report(results: dict[str, dict[str, float]], rounds: int) -> None:
    table = Table(title=f"Python CPU per uncached request, in process ({rounds} rounds)")
    for column in ("request", "CPU median ms", "CPU mean ms", "wall median ms", "Python calls"):
        table.add_column(column, justify="left" if column == "request" else "right")
    for name, figures in results.items():
        table.add_row(
            name,
            f"{figures['cpu_median_ms']:.2f}",
            f"{figures['cpu_mean_ms']:.2f}",
            f"{figures['wall_median_ms']:.2f}",
            f"{figures['calls']:,.0f}",
        )
    console.print(table)
    console.print(
        "| request | CPU median ms | CPU mean ms | wall median ms | Python calls |", markup=False
    )
    console.print("|---|---:|---:|---:|---:|", markup=False)
    for name, figures in results.items():
        console.print(
            f"| {name} | {figures['cpu_median_ms']:.2f} | {figures['cpu_mean_ms']:.2f} | "
            f"{figures['wall_median_ms']:.2f} | {figures['calls']:,.0f} |",
            markup=False,
        )
    console.print(f"load average after: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--database-url",
        default="postgresql+asyncpg://postgres@127.0.0.1:5432/openrisk_method_bench",
    )
    parser.add_argument("--rounds", type=int, default=100)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--profile", help="write a cProfile of the measured rounds here")
    parser.add_argument("--only", action="append", help="measure only this request (by name)")
    return parser.parse_args(argv)


async def main(args: argparse.Namespace) -> int:
    report(await measure(args), args.rounds)
    return 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main(parse_args())))
