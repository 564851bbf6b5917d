"""Register latency at scale: seed N risks into one PostgreSQL tenant (plus other tenants' noise),
then measure uncached p50/p95 of list, search, matrix, stats and timeline.

    python -m benchmarks.register_bench \\
        --database-url postgresql+asyncpg://postgres@127.0.0.1:5432/openrisk_bench --risks 100000

The database is created (dropped first if it exists) and migrated, then seeded with
``openrisk.seed.bulk`` (the code behind ``openrisk seed --risks N``). Requests go through the
whole application (``create_app``, via httpx's ASGI transport): authentication, tenant context,
permission checks, SQL, serialisation. The response cache is disabled, so every request runs
its queries against PostgreSQL. The rows are measured interleaved (one request of each in turn),
so that a burst of load on the host weighs on all of them alike. ``--reuse`` measures an
already-seeded database again; ``--drop`` drops it at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import platform
import statistics
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg
import httpx
from rich.console import Console
from rich.table import Table
from sqlalchemy import func, select

from openrisk.app import create_app
from openrisk.auth.models import User
from openrisk.config import Settings
from openrisk.core.db.engine import create_database
from openrisk.core.db.migrate import upgrade
from openrisk.risks.models import Risk
from openrisk.seed.bulk import seed_bulk
from openrisk.tenants.models import Tenant

console = Console()
PASSWORD = "benchmark-password"
TARGET_P95_MS = 50.0

# Each scenario rotates through these requests (different filters, words, periods).
SCENARIOS: dict[str, tuple[str, ...]] = {
    "list (filtered + sorted)": (
        "/api/v1/risks?status=ACTIVE&sort=score&order=desc",
        "/api/v1/risks?severity=HIGH&sort=created_at&order=desc",
        "/api/v1/risks?status=ACTIVE&status=ACCEPTED&sort=updated_at&order=desc&page_size=50",
        "/api/v1/risks?tag=ransomware&sort=score&order=desc",
        "/api/v1/risks?framework=ISO27001&sort=title&order=asc",
        "/api/v1/risks?min_score=15&sort=impact&order=desc&page=3",
        "/api/v1/risks?cf_business_unit=Retail&sort=score&order=desc",
    ),
    "search (ranked full-text)": (
        "/api/v1/risks/search?q=ransomware",
        "/api/v1/risks/search?q=phishing%20finance",
        "/api/v1/risks/search?q=vendor%20outage",
        "/api/v1/risks/search?q=backup",
        "/api/v1/risks/search?q=cloud%20misconfig",
        "/api/v1/risks/search?q=payroll",
    ),
    "matrix (5x5)": ("/api/v1/dashboard/matrix", "/api/v1/risks/matrix?status=ACTIVE"),
    "stats": (
        "/api/v1/dashboard/stats?period=all",
        "/api/v1/dashboard/stats?period=30d",
        "/api/v1/dashboard/stats?period=90d",
    ),
    "timeline": (
        "/api/v1/dashboard/timeline?days=90",
        "/api/v1/dashboard/timeline?days=365",
        "/api/v1/dashboard/timeline?days=30",
    ),
}


@dataclass
class Result:
    name: str
    samples_ms: list[float]

    def percentile(self, q: float) -> float:
        ordered = sorted(self.samples_ms)
        index = max(0, min(len(ordered) - 1, round(q * (len(ordered) - 1))))
        return ordered[index]

    @property
    def p50(self) -> float:
        return statistics.median(self.samples_ms)

    @property
    def p95(self) -> float:
        return self.percentile(0.95)


def _admin_dsn(url: str) -> tuple[str, str]:
    base, name = url.rsplit("/", 1)
    dsn = base.replace("postgresql+asyncpg://", "postgresql://") + "/postgres"
    return dsn, name


async def recreate_database(url: str) -> None:
    dsn, name = _admin_dsn(url)
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


async def drop_database(url: str) -> None:
    dsn, name = _admin_dsn(url)
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


async def seed(
    settings: Settings, *, risks: int, noise_tenants: int, noise_risks: int, password: str
) -> None:
    database = create_database(settings, pooled=False, bounded_statements=False)
    try:
        started = time.perf_counter()
        with console.status(f"seeding {risks} risks into the measured tenant"):
            await seed_bulk(database, risks=risks, tenants=1, password=password, seed=1)
        console.print(f"seeded the measured tenant in {time.perf_counter() - started:.1f} s")
        if noise_tenants:
            started = time.perf_counter()
            with console.status(f"seeding {noise_tenants} other tenants x {noise_risks} risks"):
                await seed_bulk(
                    database, risks=noise_risks, tenants=noise_tenants, password=password, seed=2
                )
            console.print(f"seeded the other tenants in {time.perf_counter() - started:.1f} s")
    finally:
        await database.dispose()


async def largest_tenant(settings: Settings) -> tuple[uuid.UUID, str, int]:
    """(tenant id, its Admin's email, live risks) of the tenant with the most risks."""
    database = create_database(settings, pooled=False)
    try:
        async with database.session() as session:
            live = func.count(Risk.id)
            row = (
                await session.execute(
                    select(Risk.tenant_id, live)
                    .where(Risk.deleted_at.is_(None))
                    .group_by(Risk.tenant_id)
                    .order_by(live.desc())
                    .limit(1)
                )
            ).one()
            email = await session.scalar(
                select(User.email)
                .join(Tenant, Tenant.owner_id == User.id)
                .where(Tenant.id == row[0])
            )
            assert email is not None
            return row[0], email, int(row[1])
    finally:
        await database.dispose()


async def measure(
    settings: Settings,
    *,
    tenant_id: uuid.UUID,
    email: str,
    password: str,
    iterations: int,
    warmup: int,
) -> list[Result]:
    app = create_app(settings)
    results: list[Result] = []
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
            login = await client.post(
                "/api/v1/auth/login", json={"email": email, "password": password}
            )
            login.raise_for_status()
            token = login.json()["access_token"]
            headers = {"Authorization": f"Bearer {token}", "X-Tenant-ID": str(tenant_id)}
            cycles = {name: itertools.cycle(urls) for name, urls in SCENARIOS.items()}
            for _ in range(warmup):
                for name in SCENARIOS:
                    await _get(client, next(cycles[name]), headers)
            samples: dict[str, list[float]] = {name: [] for name in SCENARIOS}
            # interleaved: a burst of load on the host hits every row alike
            for _ in range(iterations):
                for name in SCENARIOS:
                    url = next(cycles[name])
                    started = time.perf_counter()
                    await _get(client, url, headers)
                    samples[name].append((time.perf_counter() - started) * 1000)
            results = [Result(name, samples[name]) for name in SCENARIOS]
    return results


async def _get(client: httpx.AsyncClient, url: str, headers: dict[str, str]) -> None:
    response = await client.get(url, headers=headers)
    if response.status_code != 200:
        raise RuntimeError(f"GET {url} answered {response.status_code}: {response.text[:300]}")


def report(results: Sequence[Result], *, risks: int, iterations: int) -> bool:
    table = Table(title=f"Register at {risks:,} risks ({iterations} requests per row, uncached)")
    for column in ("query", "p50 ms", "p95 ms", "max ms", f"p95 < {TARGET_P95_MS:.0f} ms"):
        table.add_column(column, justify="left" if column == "query" else "right")
    ok = True
    for result in results:
        passed = result.p95 < TARGET_P95_MS
        ok &= passed
        table.add_row(
            result.name,
            f"{result.p50:.1f}",
            f"{result.p95:.1f}",
            f"{max(result.samples_ms):.1f}",
            "yes" if passed else "[red]NO[/red]",
        )
    console.print(table)
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    console.print(
        f"machine: {os.cpu_count()} cores, {platform.machine()}, Python {platform.python_version()}"
        f"; load average now {load}"
    )
    console.print("markdown:")
    console.print("| query | p50 (ms) | p95 (ms) | max (ms) |", markup=False)
    console.print("|---|---:|---:|---:|", markup=False)
    for result in results:
        console.print(
            f"| {result.name} | {result.p50:.1f} | {result.p95:.1f} | "
            f"{max(result.samples_ms):.1f} |",
            markup=False,
        )
    return ok


def uncached_settings(database_url: str, **overrides: Any) -> Settings:
    """Settings of an app whose answers are never served from the cache (every request runs
    its SQL); the in-process memory backend still caches resolved memberships, as in
    production."""
    return Settings(
        database_url=database_url,
        cache_enabled=False,
        cache_backend="memory",
        log_level="WARNING",
        pool_max_open=4,
        pool_max_idle=2,
        **overrides,
    )


async def main(args: argparse.Namespace) -> int:
    settings = uncached_settings(args.database_url)
    if not args.reuse:
        await recreate_database(args.database_url)
        await asyncio.to_thread(upgrade, args.database_url)
        await seed(
            settings,
            risks=args.risks,
            noise_tenants=args.noise_tenants,
            noise_risks=args.noise_risks,
            password=args.password,
        )
    tenant_id, email, live = await largest_tenant(settings)
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    console.print(f"measuring tenant {tenant_id} ({live:,} live risks); load average {load}")
    results = await measure(
        settings,
        tenant_id=tenant_id,
        email=email,
        password=args.password,
        iterations=args.iterations,
        warmup=args.warmup,
    )
    ok = report(results, risks=args.risks, iterations=args.iterations)
    if args.drop:
        await drop_database(args.database_url)
    return 0 if ok else 1


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--database-url",
        default="postgresql+asyncpg://postgres@127.0.0.1:5432/openrisk_bench",
        help="PostgreSQL database to (re)create and measure",
    )
    parser.add_argument("--risks", type=int, default=100_000, help="risks in the measured tenant")
    parser.add_argument("--noise-tenants", type=int, default=2, help="other tenants")
    parser.add_argument("--noise-risks", type=int, default=10_000, help="risks per other tenant")
    parser.add_argument("--iterations", type=int, default=200, help="requests per query")
    parser.add_argument("--warmup", type=int, default=10, help="unmeasured requests per query")
    parser.add_argument("--reuse", action="store_true", help="measure the existing database")
    parser.add_argument("--password", default=PASSWORD, help="password of the seeded Admins")
    parser.add_argument("--drop", action="store_true", help="drop the database at the end")
    args = parser.parse_args(argv)
    if not args.database_url.startswith("postgresql+asyncpg://"):
        parser.error("--database-url must be a postgresql+asyncpg:// URL")
    return args


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main(parse_args())))
