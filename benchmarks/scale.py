"""``openrisk bench --scale N``: the register's budgets at N risks, on PostgreSQL.

For each size: a database of its own is created and migrated, a role without BYPASSRLS (what
production connects as) is granted the tables, and ``openrisk seed`` fills one measured tenant
with N risks plus two other tenants (noise every query must filter out), as that role. Then one
``openrisk serve`` (one worker, response cache off, default INFO logging) is measured through
its socket:

- every endpoint variant at concurrency 1, interleaved (one request of each in turn, so a
  burst of load on the host weighs on all alike): p50/p95, server CPU and statements per
  request (``/proc`` and ``/metrics`` around a separate run of each);
- each endpoint group at concurrency 10: p95;
- exports of the whole tenant in CSV, JSON and XLSX: first body byte, total time, rows that
  arrived, peak growth of the server's resident memory;
- imports of ``--import-rows`` new risks, then of the same rows as updates (with their ids),
  then new ones again: time and resident memory after each (into a noise tenant);
- the seeding time of the measured tenant.

Each row has its budget; the table is printed, written to ``reports/scale-<ts>.{md,json}``
and, with ``--write-docs``, into docs/performance.md between the markers of its section.
``--openrisk`` runs another checkout's ``openrisk`` (seed and server), to measure before/after.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
import json
import os
import re
import statistics
import subprocess
import threading
import time
import zipfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import asyncpg
import httpx
from rich.console import Console
from rich.table import Table

from openrisk.perf import metrics_scrape, report
from openrisk.perf.httpload import Connection, hammer
from openrisk.perf.server import openrisk_command, running_server

API = "/api/v1"
APP_ROLE = "openrisk_bench_app"
PASSWORD = "scale-bench-password"
DOCS_START = "<!-- scale-bench:start -->"
DOCS_END = "<!-- scale-bench:end -->"
P95_BUDGET_MS = 30.0
P95_CONCURRENT_BUDGET_MS = 100.0


@dataclass
class ScaleOptions:
    scales: list[int]
    database_url: str = "postgresql+asyncpg://postgres@127.0.0.1:5432/openrisk_scale"
    reuse: bool = False
    rounds: int = 100
    cpu_requests: int = 30
    concurrent_s: float = 4.0
    import_rows: int = 50_000
    app_role: bool = True
    openrisk: list[str] = field(default_factory=openrisk_command)
    output_dir: Path = Path("reports")
    write_docs: Path | None = None
    label: str = ""
    command: str = ""


@dataclass
class Row:
    """One measured line of the table and its budget."""

    name: str
    kind: str  # "read", "concurrent", "export", "import", "seed"
    values: dict[str, Any]
    budget: str
    passed: bool | None


# --------------------------------------------------------------------------- database


def _dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://")


def _with_user(url: str, user: str) -> str:
    scheme, rest = url.split("://", 1)
    host = rest.split("@", 1)[-1]
    return f"{scheme}://{user}@{host}"


async def _admin(url: str, *statements: str) -> None:
    conn = await asyncpg.connect(_dsn(url))
    try:
        for statement in statements:
            await conn.execute(statement)
    finally:
        await conn.close()


async def recreate(url: str) -> None:
    base, name = url.rsplit("/", 1)
    await _admin(
        f"{base}/postgres",
        f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)',
        f'CREATE DATABASE "{name}"',
    )


async def grant_app_role(url: str) -> None:
    """The role production connects as: no superuser, no BYPASSRLS, the tables granted."""
    base, name = url.rsplit("/", 1)
    await _admin(
        f"{base}/postgres",
        f"""DO $$ BEGIN
              IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{APP_ROLE}') THEN
                CREATE ROLE {APP_ROLE} LOGIN NOSUPERUSER NOBYPASSRLS;
              END IF;
            END $$""",
        f'GRANT CONNECT, TEMPORARY ON DATABASE "{name}" TO {APP_ROLE}',
    )
    await _admin(
        url,
        f"GRANT USAGE ON SCHEMA public TO {APP_ROLE}",
        f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {APP_ROLE}",
        f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {APP_ROLE}",
    )


def _run_openrisk(options: ScaleOptions, args: Sequence[str], env: dict[str, str]) -> str:
    completed = subprocess.run(
        [*options.openrisk, *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=False,
    )
    if completed.returncode != 0:
        raise RuntimeError(
            f"openrisk {' '.join(args)} failed:\n{completed.stdout[-3000:]}"
            f"\n{completed.stderr[-3000:]}"
        )
    return completed.stdout


def _server_env(url: str) -> dict[str, str]:
    return {
        "OPENRISK_DATABASE_URL": url,
        "OPENRISK_DEMO_PASSWORD": PASSWORD,
        "OPENRISK_CACHE_ENABLED": "false",
        "OPENRISK_CACHE_BACKEND": "memory",
        "OPENRISK_LOG_LEVEL": "INFO",
        "OPENRISK_POOL_MAX_IDLE": "10",
        "OPENRISK_POOL_MAX_OPEN": "10",
        "OPENRISK_DB_STATEMENT_TIMEOUT_S": "60",
    }


def prepare(options: ScaleOptions, url: str, risks: int, say: Callable[[str], None]) -> Row | None:
    """Create, migrate and seed the database (unless reused); the seeding row."""
    app_url = _with_user(url, APP_ROLE) if options.app_role else url
    if options.reuse:  # the earlier runs' imports left dead rows and an outdated visibility map
        asyncio.run(_admin(url, "VACUUM (ANALYZE)"))
        return None
    asyncio.run(recreate(url))
    _run_openrisk(options, ["db", "upgrade"], {"OPENRISK_DATABASE_URL": url})
    if options.app_role:
        asyncio.run(grant_app_role(url))
    env = _server_env(app_url)
    role = "the app role" if options.app_role else "the owner role"
    say(f"seeding {risks:,} risks into the measured tenant as {role}…")
    started = time.perf_counter()
    out = _run_openrisk(options, ["seed", "--risks", str(risks), "--tenants", "1"], env)
    wall = time.perf_counter() - started
    found = re.search(r"in ([0-9.]+) s", out)
    seconds = float(found.group(1)) if found else wall
    noise = max(100, min(10_000, risks // 10))
    say(f"seeding 2 other tenants × {noise:,} risks…")
    _run_openrisk(options, ["seed", "--risks", str(noise), "--tenants", "2"], env)
    # The app role may not VACUUM or ANALYZE tables it does not own (the seed's is skipped for
    # it), and autovacuum, which would after a bulk insert, may be off on a test server: the
    # owner does it here. ANALYZE alone left the visibility map empty, so every index-only
    # scan read the heap as well: the 90-day stats took 49 ms p95 at 100k, 24 ms once vacuumed.
    asyncio.run(_admin(url, "VACUUM (ANALYZE)"))
    limit = 20.0 * max(1.0, risks / 100_000)
    return Row(
        f"seed {risks:,} risks",
        "seed",
        {"seconds": round(seconds, 1), "wall_s": round(wall, 1)},
        f"< {limit:.0f} s",
        seconds < limit,
    )


@dataclass(frozen=True)
class Subject:
    """The measured tenant and what its requests name."""

    tenant_id: str
    email: str
    live: int
    owner_id: str
    asset_id: str
    risk_ids: list[str]
    noise_email: str


async def subject(url: str) -> Subject:
    """The measured tenant: the first one seeded (the big one). Not the largest: with
    ``--reuse`` the imports of earlier runs have grown a noise tenant past it."""
    conn = await asyncpg.connect(_dsn(url))
    try:
        tenant = await conn.fetchrow(
            "SELECT t.id AS tenant_id, (SELECT count(*) FROM risks r WHERE r.tenant_id = t.id "
            "AND r.deleted_at IS NULL) AS n FROM tenants t JOIN users u ON u.id = t.owner_id "
            "WHERE u.email LIKE 'seed-%' ORDER BY t.created_at LIMIT 1"
        )
        tenant_id = tenant["tenant_id"]
        owners = "SELECT tenant_id, owner_id FROM risks WHERE tenant_id = $1 AND deleted_at IS NULL"
        owner = await conn.fetchval(
            f"SELECT owner_id FROM ({owners}) o GROUP BY owner_id ORDER BY count(*) DESC LIMIT 1",
            tenant_id,
        )
        asset = await conn.fetchval(
            "SELECT asset_id FROM risk_assets WHERE tenant_id = $1 GROUP BY asset_id "
            "ORDER BY count(*) DESC LIMIT 1",
            tenant_id,
        )
        ids = await conn.fetch(
            "SELECT id FROM risks WHERE tenant_id = $1 AND deleted_at IS NULL ORDER BY id LIMIT 20",
            tenant_id,
        )
        admins = await conn.fetch(
            "SELECT t.id, u.email FROM tenants t JOIN users u ON u.id = t.owner_id "
            "WHERE u.email LIKE 'seed-%' ORDER BY t.created_at"
        )
        email = next(a["email"] for a in admins if a["id"] == tenant_id)
        noise = next(a["email"] for a in admins if a["id"] != tenant_id)
        return Subject(
            tenant_id=str(tenant_id),
            email=email,
            live=int(tenant["n"]),
            owner_id=str(owner),
            asset_id=str(asset),
            risk_ids=[str(r["id"]) for r in ids],
            noise_email=noise,
        )
    finally:
        await conn.close()


# --------------------------------------------------------------------------- requests


def _login(base_url: str, email: str) -> dict[str, str]:
    response = httpx.post(
        f"{base_url}{API}/auth/login", json={"email": email, "password": PASSWORD}, timeout=30
    )
    response.raise_for_status()
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def endpoints(base_url: str, headers: dict[str, str], who: Subject) -> list[tuple[str, str]]:
    """(row name, path) of every variant the budgets name."""
    deep = max(2, min(2_000, who.live // 40))
    deep_page = httpx.get(f"{base_url}{API}/risks?page={deep}", headers=headers, timeout=60).json()
    cursor = deep_page.get("next_cursor")
    risk = who.risk_ids[0]
    rows = [
        ("list page 1", "/risks"),
        *[(f"list sort={s}", f"/risks?sort={s}&order={o}") for s, o in _SORTS],
        (f"list page {deep} (offset)", f"/risks?page={deep}"),
        ("list q=ransomware", "/risks?q=ransomware"),
        ("list q=phishing finance, sort=score", "/risks?q=phishing%20finance&sort=score"),
        ("list tag=ransomware, sort=score", "/risks?tag=ransomware&sort=score&order=desc"),
        ("list owner_id=", f"/risks?owner_id={who.owner_id}"),
        ("list asset_id=", f"/risks?asset_id={who.asset_id}"),
        ("list status+severity", "/risks?status=ACTIVE&severity=HIGH&sort=score"),
        ("list framework=, sort=title", "/risks?framework=ISO27001&sort=title&order=asc"),
        ("list cf_business_unit=", "/risks?cf_business_unit=Retail&sort=score"),
        ("list min_score=15, page 3", "/risks?min_score=15&sort=impact&page=3"),
        # the risk model's filters and sorts
        ("list above_appetite=true", "/risks?above_appetite=true"),
        ("list review=overdue", "/risks?review=overdue"),
        ("list review=due_soon", "/risks?review=due_soon"),
        ("list sort=residual_score", "/risks?sort=residual_score&order=desc"),
        ("list sort=next_review_date", "/risks?sort=next_review_date&order=asc"),
        ("search q=ransomware", "/risks/search?q=ransomware"),
        ("search q=backup", "/risks/search?q=backup"),
        ("search q=vendor outage", "/risks/search?q=vendor%20outage"),
        ("matrix (dashboard)", "/dashboard/matrix"),
        ("matrix status=ACTIVE", "/risks/matrix?status=ACTIVE"),
        ("matrix tag=ransomware", "/risks/matrix?tag=ransomware"),
        *[
            (f"stats period={p}", f"/dashboard/stats?period={p}")
            for p in ("7d", "30d", "90d", "all")
        ],
        *[(f"timeline days={d}", f"/dashboard/timeline?days={d}") for d in (1, 30, 90, 365)],
        ("top-risks", "/dashboard/top-risks?limit=10"),
        ("risk detail", f"/risks/{risk}"),
        ("risk history", f"/risks/{risk}/history"),
    ]
    if cursor:
        rows.insert(10, (f"list cursor page {deep + 1}", f"/risks?cursor={quote(cursor)}"))
    return [(name, API + path) for name, path in rows]


_SORTS = (
    ("score", "desc"),
    ("title", "asc"),
    ("updated_at", "desc"),
    ("impact", "desc"),
    ("probability", "asc"),
    ("status", "asc"),
    ("severity", "desc"),
)


def _percentile(values: Sequence[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, round(fraction * (len(ordered) - 1))))]


async def _interleaved(
    base_url: str, headers: dict[str, str], urls: Sequence[str], rounds: int
) -> list[list[float]]:
    host, port = base_url.split("//", 1)[1].split(":")
    connection = Connection(host, int(port), headers)
    samples: list[list[float]] = [[] for _ in urls]
    try:
        for url in urls:  # warm every code path and plan once
            await connection.get(url)
        for _ in range(rounds):
            for index, url in enumerate(urls):
                started = time.perf_counter()
                answer = await connection.get(url)
                samples[index].append((time.perf_counter() - started) * 1000)
                if answer.status != 200:
                    raise RuntimeError(f"GET {url}: {answer.status} {answer.body[:300]!r}")
    finally:
        await connection.close()
    return samples


async def _costs(
    base_url: str, headers: dict[str, str], url: str, requests: int, cpu: Callable[[], float | None]
) -> tuple[float | None, float | None]:
    """(server CPU ms, statements) per request of ``url``, from /proc and /metrics."""
    host, port = base_url.split("//", 1)[1].split(":")
    connection = Connection(host, int(port), headers)
    try:
        before, cpu_before = (
            metrics_scrape.parse((await connection.get("/metrics")).body.decode()),
            cpu(),
        )
        for _ in range(requests):
            await connection.get(url)
        cpu_after = cpu()
        after = metrics_scrape.parse((await connection.get("/metrics")).body.decode())
    finally:
        await connection.close()
    delta = metrics_scrape.delta(before, after)
    per_cpu = None
    if cpu_before is not None and cpu_after is not None:
        per_cpu = (cpu_after - cpu_before) / (requests + 1) * 1000
    return per_cpu, delta.db_queries_per_request


def measure_reads(
    options: ScaleOptions,
    base_url: str,
    headers: dict[str, str],
    rows: list[tuple[str, str]],
    cpu: Callable[[], float | None],
) -> list[Row]:
    samples = asyncio.run(_interleaved(base_url, headers, [u for _, u in rows], options.rounds))
    result = []
    for (name, url), values in zip(rows, samples, strict=True):
        cpu_ms, statements = asyncio.run(_costs(base_url, headers, url, options.cpu_requests, cpu))
        p95 = _percentile(values, 0.95)
        result.append(
            Row(
                name,
                "read",
                {
                    "p50_ms": round(statistics.median(values), 1),
                    "p95_ms": round(p95, 1),
                    "max_ms": round(max(values), 1),
                    "cpu_ms": round(cpu_ms, 2) if cpu_ms is not None else None,
                    "statements": round(statements, 2) if statements is not None else None,
                },
                f"p95 < {P95_BUDGET_MS:.0f} ms",
                p95 < P95_BUDGET_MS,
            )
        )
    return result


def measure_concurrent(
    options: ScaleOptions, base_url: str, headers: dict[str, str], rows: list[tuple[str, str]]
) -> list[Row]:
    groups: dict[str, list[str]] = {}
    for name, url in rows:
        groups.setdefault(name.split(" ", 1)[0], []).append(url)
    result = []
    for group, urls in groups.items():
        sample = asyncio.run(
            hammer(base_url, urls, headers=headers, duration_s=options.concurrent_s, concurrency=10)
        )
        latencies = [v * 1000 for v in sample.latencies]
        p95 = _percentile(latencies, 0.95) if latencies else float("inf")
        result.append(
            Row(
                f"{group} ({len(urls)} variants), 10 connections",
                "concurrent",
                {
                    "p50_ms": round(statistics.median(latencies), 1) if latencies else None,
                    "p95_ms": round(p95, 1),
                    "rps": round(len(latencies) / sample.elapsed_s, 1)
                    if sample.elapsed_s
                    else None,
                    "errors": sample.errors,
                },
                f"p95 < {P95_CONCURRENT_BUDGET_MS:.0f} ms",
                p95 < P95_CONCURRENT_BUDGET_MS and not sample.errors,
            )
        )
    return result


# --------------------------------------------------------------------------- exports, imports


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


@contextlib.contextmanager
def _peak_rss(pid: int) -> Iterator[dict[str, float]]:
    """Sample the server's resident memory every 20 ms: {'before', 'peak', 'after'} in MB."""
    found = {"before": _rss_mb(pid), "peak": 0.0, "after": 0.0}
    found["peak"] = found["before"]
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(0.02):
            found["peak"] = max(found["peak"], _rss_mb(pid))

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        yield found
    finally:
        stop.set()
        thread.join()
        found["after"] = _rss_mb(pid)


def _rows_in(fmt: str, body: bytes) -> int:
    if fmt == "csv":
        return sum(1 for _ in csv.reader(io.StringIO(body.decode("utf-8")))) - 1
    if fmt == "json":
        return len(json.loads(body))
    with zipfile.ZipFile(io.BytesIO(body)) as archive:
        return archive.read("xl/worksheets/sheet1.xml").count(b"<row ") - 1


def measure_exports(base_url: str, headers: dict[str, str], pid: int, live: int) -> list[Row]:
    rows = []
    for fmt, limit in (("csv", 5.0), ("json", 5.0), ("xlsx", 20.0)):
        scaled = limit * max(1.0, live / 100_000)
        chunks: list[bytes] = []
        first: float | None = None
        with _peak_rss(pid) as rss, httpx.Client(timeout=600) as client:
            started = time.perf_counter()
            with client.stream(
                "GET", f"{base_url}{API}/risks/export?format={fmt}", headers=headers
            ) as response:
                for chunk in response.iter_raw():
                    if first is None and chunk:
                        first = time.perf_counter() - started
                    chunks.append(chunk)
            total = time.perf_counter() - started
        body = b"".join(chunks)
        arrived = _rows_in(fmt, body) if response.status_code == 200 else 0
        growth = rss["peak"] - rss["before"]
        passed = arrived == live and total < scaled and growth < 50 and (first or 99) < 1.0
        rows.append(
            Row(
                f"export {fmt} (all {live:,} risks)",
                "export",
                {
                    "first_byte_s": round(first, 2) if first is not None else None,
                    "seconds": round(total, 1),
                    "rows": arrived,
                    "mb": round(len(body) / 1e6, 1),
                    "rss_growth_mb": round(growth, 1),
                },
                f"all rows, < {scaled:.0f} s, first byte < 1 s, RSS +< 50 MB",
                passed,
            )
        )
    return rows


def _import_csv(count: int, *, ids: Sequence[str] = (), stamp: str) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["id", "title", "description", "impact", "probability", "tags", "status"])
    for n in range(count):
        writer.writerow(
            [
                ids[n] if ids else "",
                f"Imported risk {stamp} {n}",
                "Loaded from a file by the scale benchmark.",
                1 + n % 5,
                1 + (n // 5) % 5,
                f"imported;batch-{stamp}",
                ("DRAFT", "ACTIVE")[n % 2],
            ]
        )
    return buffer.getvalue().encode()


def measure_imports(base_url: str, email: str, pid: int, count: int) -> list[Row]:
    headers = _login(base_url, email)
    rows = []
    ids: list[str] = []
    for step, label in ((1, "new"), (2, "updates"), (3, "new")):
        content = _import_csv(count, ids=ids if label == "updates" else (), stamp=f"s{step}")
        with _peak_rss(pid) as rss, httpx.Client(timeout=900) as client:
            started = time.perf_counter()
            response = client.post(
                f"{base_url}{API}/risks/import",
                files={"file": ("bench.csv", content, "text/csv")},
                headers=headers,
            )
            seconds = time.perf_counter() - started
        ok = response.status_code == 200
        body = response.json() if ok else {}
        if label == "new" and not ids:
            ids = [str(i) for i in body.get("ids", [])]
        done = body.get("created", 0) + body.get("updated", 0)
        limit = 10.0 * max(1.0, count / 50_000)
        rows.append(
            Row(
                f"import {count:,} rows ({label}), #{step}",
                "import",
                {
                    "seconds": round(seconds, 1),
                    "rows": done,
                    "status": response.status_code,
                    "rss_after_mb": round(rss["after"], 1),
                    "rss_peak_mb": round(rss["peak"], 1),
                },
                f"all rows, < {limit:.0f} s",
                ok and done == count and seconds < limit,
            )
        )
    first, last = rows[0].values["rss_after_mb"], rows[-1].values["rss_after_mb"]
    rows.append(
        Row(
            "import: resident memory after 3 imports",
            "import",
            {"rss_growth_mb": round(last - first, 1)},
            "flat (+< 50 MB after the first)",
            last - first < 50,
        )
    )
    return rows


# --------------------------------------------------------------------------- one size, all sizes


def measure_scale(options: ScaleOptions, risks: int, say: Callable[[str], None]) -> dict[str, Any]:
    base, name = options.database_url.rsplit("/", 1)
    url = f"{base}/{name}_{risks}"
    app_url = _with_user(url, APP_ROLE) if options.app_role else url
    seed_row = prepare(options, url, risks, say)
    who = asyncio.run(subject(url))
    say(f"measuring {who.live:,} live risks of tenant {who.tenant_id}")
    workdir = options.output_dir / ".work"
    with running_server(
        env=_server_env(app_url),
        workers=1,
        log=workdir / f"scale-{risks}.log",
        command=options.openrisk,
    ) as server:
        headers = {**_login(server.base_url, who.email), "X-Tenant-ID": who.tenant_id}
        rows = endpoints(server.base_url, headers, who)
        say(f"{len(rows)} endpoint variants × {options.rounds} rounds at concurrency 1…")
        measured = measure_reads(options, server.base_url, headers, rows, server.cpu_seconds)
        say("each group at concurrency 10…")
        measured += measure_concurrent(options, server.base_url, headers, rows)
        say("exports…")
        measured += measure_exports(server.base_url, headers, server.proc.pid, who.live)
        say(f"imports of {options.import_rows:,} rows…")
        measured += measure_imports(
            server.base_url, who.noise_email, server.proc.pid, options.import_rows
        )
    if seed_row is not None:
        measured.append(seed_row)
    return {"risks": risks, "live": who.live, "rows": [r.__dict__ for r in measured]}


def run(options: ScaleOptions, *, console: Console | None = None) -> dict[str, Any]:
    def say(message: str) -> None:
        if console is not None:
            console.print(message)

    started = datetime.now(UTC)
    machine = report.machine()
    machine["postgresql"] = asyncio.run(_server_version(options.database_url))
    results = [measure_scale(options, n, say) for n in options.scales]
    machine["load_average_end"] = report.load_average()
    data = {
        "kind": "scale",
        "label": options.label,
        "started_at": started.isoformat(timespec="seconds"),
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine,
        "command": options.command,
        "app_role": options.app_role,
        "results": results,
    }
    text = markdown(data)
    stem = options.output_dir / f"scale-{report.timestamp(started)}"
    report.write_json(stem.with_suffix(".json"), data)
    stem.with_suffix(".md").write_text(text)
    data["files"] = {"md": str(stem.with_suffix(".md")), "json": str(stem.with_suffix(".json"))}
    if options.write_docs is not None:
        write_docs(options.write_docs, text)
    if console is not None:
        print_tables(console, data)
    return data


async def _server_version(url: str) -> str:
    base = url.rsplit("/", 1)[0]
    conn = await asyncpg.connect(_dsn(f"{base}/postgres"))
    try:
        return str(await conn.fetchval("SHOW server_version"))
    finally:
        await conn.close()


def failed(data: dict[str, Any]) -> list[str]:
    return [
        f"{result['risks']:,}: {row['name']}"
        for result in data["results"]
        for row in result["rows"]
        if row["passed"] is False
    ]


# --------------------------------------------------------------------------- output

_COLUMNS = {
    "read": ("p50_ms", "p95_ms", "max_ms", "cpu_ms", "statements"),
    "concurrent": ("p50_ms", "p95_ms", "rps", "errors"),
    "export": ("first_byte_s", "seconds", "rows", "mb", "rss_growth_mb"),
    "import": ("seconds", "rows", "status", "rss_after_mb", "rss_peak_mb", "rss_growth_mb"),
    "seed": ("seconds", "wall_s"),
}
_TITLES = {
    "read": "Reads, concurrency 1 (cache off, one worker)",
    "concurrent": "Reads, concurrency 10",
    "export": "Exports",
    "import": "Imports",
    "seed": "Seeding",
}


def _verdict(row: dict[str, Any]) -> str:
    return {True: "yes", False: "**NO**", None: "–"}[row["passed"]]


def markdown(data: dict[str, Any]) -> str:
    machine = data["machine"]
    lines = [
        f"Measured {data['started_at']} by `{data['command'] or 'openrisk bench --scale'}`"
        + (f" ({data['label']})" if data["label"] else "")
        + f": {report.machine_line(machine)}; PostgreSQL {machine.get('postgresql')}; "
        + (
            "server and seed as a role without BYPASSRLS."
            if data["app_role"]
            else "as the owner role."
        ),
        "",
    ]
    for result in data["results"]:
        lines.append(
            f"#### {result['risks']:,} risks ({result['live']:,} live in the measured tenant)"
        )
        lines.append("")
        for kind, title in _TITLES.items():
            rows = [r for r in result["rows"] if r["kind"] == kind]
            if not rows:
                continue
            columns = [c for c in _COLUMNS[kind] if any(c in r["values"] for r in rows)]
            lines.append(f"{title}:")
            lines.append("")
            lines.append("| " + " | ".join(["what", *columns, "budget", "met"]) + " |")
            lines.append("|---" + "|---:" * len(columns) + "|---|---|")
            for r in rows:
                cells = [report.fmt(r["values"].get(c)) for c in columns]
                lines.append(
                    "| " + " | ".join([r["name"], *cells, r["budget"], _verdict(r)]) + " |"
                )
            lines.append("")
    if len(data["results"]) > 1:
        lines += side_by_side(data["results"])
    return "\n".join(lines)


def side_by_side(results: list[dict[str, Any]]) -> list[str]:
    """p95 and server CPU of the same reads at every size."""
    sizes = [r["risks"] for r in results]
    by_name = [{row["name"]: row for row in r["rows"] if row["kind"] == "read"} for r in results]
    header = ["read", *(f"p95 ms @ {n:,}" for n in sizes), *(f"CPU ms @ {n:,}" for n in sizes)]
    lines = ["Side by side (p95 and server CPU per request):", ""]
    lines.append("| " + " | ".join(header) + " |")
    lines.append("|---" + "|---:" * (len(header) - 1) + "|")
    for name in by_name[-1]:
        key = re.sub(r"page \d+", "page N", name)
        cells = []
        for metric in ("p95_ms", "cpu_ms"):
            for rows in by_name:
                match = next(
                    (r for n, r in rows.items() if re.sub(r"page \d+", "page N", n) == key), None
                )
                cells.append(report.fmt(match["values"].get(metric)) if match else "–")
        lines.append("| " + " | ".join([key, *cells]) + " |")
    lines.append("")
    return lines


def write_docs(path: Path, text: str) -> None:
    """Replace the generated section of ``path`` (between its markers) with ``text``."""
    current = path.read_text()
    start, end = current.index(DOCS_START) + len(DOCS_START), current.index(DOCS_END)
    path.write_text(current[:start] + "\n" + text.strip() + "\n" + current[end:])


def print_tables(console: Console, data: dict[str, Any]) -> None:
    for result in data["results"]:
        for kind, title in _TITLES.items():
            rows = [r for r in result["rows"] if r["kind"] == kind]
            if not rows:
                continue
            columns = [c for c in _COLUMNS[kind] if any(c in r["values"] for r in rows)]
            table = Table(
                "what", *columns, "budget", "met", title=f"{result['risks']:,} risks · {title}"
            )
            for r in rows:
                verdict = {True: "yes", False: "[red]NO[/red]", None: "–"}[r["passed"]]
                table.add_row(
                    r["name"],
                    *(report.fmt(r["values"].get(c)) for c in columns),
                    r["budget"],
                    verdict,
                )
            console.print(table)
    console.print(report.machine_line(data["machine"]))
