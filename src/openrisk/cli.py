"""``openrisk`` command line (Typer): serve, worker, db, seed, create-admin, check-config."""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from openrisk.config import Settings

app = typer.Typer(help="OpenRisk: a multi-tenant risk register.", no_args_is_help=True)
db_app = typer.Typer(help="Database migrations.", no_args_is_help=True)
app.add_typer(db_app, name="db")
cache_app = typer.Typer(help="The shared cache (OPENRISK_CACHE_BACKEND).", no_args_is_help=True)
app.add_typer(cache_app, name="cache")
jobs_app = typer.Typer(help="The background job queue (docs/monitoring.md).", no_args_is_help=True)
app.add_typer(jobs_app, name="jobs")
console = Console()
err = Console(stderr=True)

DEMO_PASSWORD_FILE = Path(".openrisk-demo-password")


def load_settings() -> Settings:
    try:
        return Settings()
    except ValidationError as error:
        for problem in error.errors():
            err.print(f"[red]invalid configuration[/red] {escape(problem_text(problem))}")
        raise typer.Exit(2) from error


def problem_text(problem: Mapping[str, Any]) -> str:
    """``OPENRISK_PORT: Input should be a valid integer (got 'abc')``: the variable first."""
    loc = [str(p) for p in problem.get("loc", ())]
    name = "OPENRISK_" + "_".join(loc).upper() if loc else "configuration"
    message = str(problem.get("msg", "invalid")).removeprefix("Value error, ")
    message = message.removeprefix(name + " ")
    shown = problem.get("input")
    secret = any(word in name.lower() for word in ("secret", "password", "key"))
    if isinstance(shown, str | int | float) and not secret and loc:
        message += f" (got {shown!r})"
    return f"{name}: {message}"


async def _schema_behind_message(settings: Settings) -> str | None:
    from openrisk.core.db.engine import create_database
    from openrisk.core.db.migrate import SchemaBehind, ensure_schema_current

    database = create_database(settings, pooled=False)
    try:
        await ensure_schema_current(database.engine)
        return None
    except SchemaBehind as error:
        return str(error)
    finally:
        await database.dispose()


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Interface to bind.")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default OPENRISK_PORT or 8000).")] = None,
    workers: Annotated[int | None, typer.Option(help="Number of worker processes.")] = None,
) -> None:
    """Serve the API and the web UI with uvicorn."""
    import uvicorn

    for name, value in (("HOST", host), ("PORT", port), ("WORKERS", workers)):
        if value is not None:
            os.environ[f"OPENRISK_{name}"] = str(value)
    settings = load_settings()
    problem = asyncio.run(_schema_behind_message(settings))
    if problem:
        err.print(f"[red]{escape(problem)}[/red]")
        raise typer.Exit(1)
    created_metrics_dir = prepare_metrics_dir(settings.workers)
    try:
        uvicorn.run(
            "openrisk.app:create_app",
            factory=True,
            host=settings.host,
            port=settings.port,
            workers=settings.workers,
            access_log=False,
            log_config=None,
            timeout_graceful_shutdown=10,
            # X-Forwarded-For is believed only from the configured proxies (none by default)
            proxy_headers=bool(settings.trusted_proxies.strip()),
            forwarded_allow_ips=settings.trusted_proxies.strip() or None,
        )
    finally:
        if created_metrics_dir:
            shutil.rmtree(created_metrics_dir, ignore_errors=True)


@app.command()
def worker(
    concurrency: Annotated[
        int | None,
        typer.Option(
            min=1, max=500, help="Jobs run at once (default OPENRISK_JOBS_CONCURRENCY or 10)."
        ),
    ] = None,
) -> None:
    """Run background jobs (webhook deliveries, ...) with PostgreSQL: start as many as needed,
    on any hosts. SIGTERM stops gracefully (running jobs finish or go back to the queue)."""
    from openrisk.worker import run_worker

    settings = load_settings()
    if settings.is_sqlite:
        err.print(
            "[red]openrisk worker needs PostgreSQL (OPENRISK_DATABASE_URL); with SQLite, "
            "openrisk serve runs the jobs itself[/red]"
        )
        raise typer.Exit(2)
    problem = asyncio.run(_schema_behind_message(settings))
    if problem:
        err.print(f"[red]{escape(problem)}[/red]")
        raise typer.Exit(1)
    asyncio.run(run_worker(settings, concurrency=concurrency))


def _age_text(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


@jobs_app.command("status")
def jobs_status() -> None:
    """Jobs per task and status, the oldest job waiting for a worker, and the outbox."""
    from openrisk.core.queue_admin import STATUSES, status

    settings = load_settings()
    found = asyncio.run(status(settings))
    console.print(
        f"outbox: {found.outbox_pending} event(s) not yet handed to jobs"
        + (f", oldest {_age_text(found.outbox_oldest_s)}" if found.outbox_pending else "")
    )
    if found.embedded:
        console.print(
            "SQLite: jobs run inside openrisk serve (their queue is in its memory); "
            "every event stays in the outbox until its jobs have finished."
        )
        return
    table = Table("task", *STATUSES, title="jobs")
    totals = dict.fromkeys(STATUSES, 0)
    for task, counts in sorted(found.counts.items()):
        table.add_row(escape(task), *(str(counts.get(state, 0)) for state in STATUSES))
        for state in STATUSES:
            totals[state] += counts.get(state, 0)
    table.add_row("[b]all[/b]", *(f"[b]{totals[state]}[/b]" for state in STATUSES))
    console.print(table)
    waiting = _age_text(found.oldest_pending_s) if totals["todo"] else "none waiting"
    console.print(f"oldest job due and not started: {waiting}")
    if totals["failed"]:
        console.print(
            f"{totals['failed']} failed job(s): fix the cause, then `openrisk jobs retry`"
            " (or `openrisk jobs purge --failed`)"
        )


def _queue_settings(on_sqlite: str) -> Settings:
    """Settings whose job queue is kept in the database (PostgreSQL), or exit 2 saying why."""
    settings = load_settings()
    if settings.is_sqlite:
        err.print(f"[red]with SQLite, {on_sqlite}[/red]")
        raise typer.Exit(2)
    return settings


@jobs_app.command("retry")
def jobs_retry(
    task: Annotated[str | None, typer.Option(help="Only this task, e.g. webhooks:deliver.")] = None,
    job_id: Annotated[int | None, typer.Option("--id", help="Only this job.")] = None,
) -> None:
    """Put failed (dead) jobs back in the queue, to run now."""
    from openrisk.core.queue_admin import retry

    settings = _queue_settings("failed jobs are not kept: nothing to retry")
    count = asyncio.run(retry(settings, task=task, job_id=job_id))
    console.print(f"{count} failed job(s) queued again")


@jobs_app.command("purge")
def jobs_purge(
    older_than: Annotated[
        int, typer.Option(min=0, help="Days since the job finished (default 7).")
    ] = 7,
    failed: Annotated[bool, typer.Option(help="Also delete failed (dead) jobs.")] = False,
) -> None:
    """Delete finished jobs (succeeded, cancelled, aborted; --failed: failed too) that finished
    more than --older-than days ago."""
    from openrisk.core.queue_admin import purge

    settings = _queue_settings("finished jobs are not kept: nothing to purge")
    count = asyncio.run(purge(settings, days=older_than, failed=failed))
    console.print(f"{count} finished job(s) deleted")


def prepare_metrics_dir(workers: int) -> str | None:
    """Set up PROMETHEUS_MULTIPROC_DIR before any worker imports prometheus_client.

    A directory given in the environment is created if missing and cleared of a previous run's
    sample files (stale counts would be added to the new ones). Without one, several workers
    get a fresh temporary directory, returned so that ``serve`` removes it on exit; a single
    worker then keeps the in-process default registry.
    """
    given = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if given:
        path = Path(given)
        path.mkdir(parents=True, exist_ok=True)
        for stale in path.glob("*.db"):
            stale.unlink(missing_ok=True)
        return None
    if workers > 1:
        created = tempfile.mkdtemp(prefix="openrisk-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = created
        return created
    return None


@db_app.command("upgrade")
def db_upgrade(revision: Annotated[str, typer.Argument()] = "heads") -> None:
    """Apply migrations up to REVISION (default: the latest)."""
    from openrisk.core.db.migrate import upgrade

    upgrade(load_settings().database_url, revision)
    console.print(f"database upgraded to {revision}")


@db_app.command("downgrade")
def db_downgrade(revision: Annotated[str, typer.Argument()] = "-1") -> None:
    """Revert migrations down to REVISION (default: one step)."""
    from openrisk.core.db.migrate import downgrade

    downgrade(load_settings().database_url, revision)
    console.print(f"database downgraded to {revision}")


def _demo_password(settings: Settings) -> str:
    if settings.demo_password:
        return settings.demo_password
    if DEMO_PASSWORD_FILE.exists():
        return DEMO_PASSWORD_FILE.read_text().strip()
    password = secrets.token_urlsafe(12)
    DEMO_PASSWORD_FILE.write_text(password + "\n")
    DEMO_PASSWORD_FILE.chmod(0o600)
    return password


async def _seed_demo(settings: Settings, password: str) -> bool:
    from openrisk.core.db.engine import create_database
    from openrisk.seed.demo import ensure_demo

    database = create_database(settings, pooled=False)
    try:
        async with database.session() as session:
            return (await ensure_demo(session, password=password)).created
    finally:
        await database.dispose()


async def _seed_bulk(settings: Settings, password: str, risks: int, tenants: int) -> list[str]:
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    from openrisk.core.db.engine import create_database
    from openrisk.seed.bulk import seed_bulk

    database = create_database(settings, pooled=False, bounded_statements=False)
    columns = (
        TextColumn("[bold]seeding risks"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    try:
        with Progress(*columns, console=console) as progress:
            task = progress.add_task("risks", total=risks * tenants)
            seeded = await seed_bulk(
                database,
                risks=risks,
                tenants=tenants,
                password=password,
                on_progress=lambda n: progress.advance(task, n),
            )
        return [f"{s.admin_email} (tenant {s.slug}, {s.risks} risks)" for s in seeded]
    finally:
        await database.dispose()


@app.command("seed")
def seed(
    risks: Annotated[
        int | None,
        typer.Option(min=1, max=10_000_000, help="Risks per tenant (bulk data set)."),
    ] = None,
    tenants: Annotated[
        int | None, typer.Option(min=1, max=1_000, help="Tenants to create (bulk data set).")
    ] = None,
) -> None:
    """Without options: create the demo tenant and login (demo@openrisk.local) unless it
    exists. With --risks/--tenants: generate a large data set (bulk inserts, progress bar)."""
    import time

    from openrisk.seed.demo import DEMO_EMAIL

    settings = load_settings()
    password = _demo_password(settings)
    if risks is None and tenants is None:
        created = asyncio.run(_seed_demo(settings, password))
        console.print(("created" if created else "found") + " the demo tenant")
        console.print(f"demo login: [bold]{DEMO_EMAIL}[/bold] / password: [bold]{password}[/bold]")
        return
    started = time.perf_counter()
    logins = asyncio.run(_seed_bulk(settings, password, risks or 1_000, tenants or 1))
    elapsed = time.perf_counter() - started
    total = (risks or 1_000) * (tenants or 1)
    console.print(f"seeded {total} risks in {len(logins)} tenant(s) in {elapsed:.1f} s")
    for login in logins:
        console.print(f"login: [bold]{login}[/bold] / password: [bold]{password}[/bold]")


async def _create_admin(settings: Settings, email: str, password: str, tenant: str | None) -> str:
    from openrisk.auth.service import create_user, find_user_by_email
    from openrisk.core.db.engine import create_database
    from openrisk.core.security import hash_password
    from openrisk.rbac.catalogue import ADMIN
    from openrisk.tenants.service import add_member, create_tenant, find_tenant

    database = create_database(settings, pooled=False)
    try:
        async with database.session() as session:
            user = await find_user_by_email(session, email=email)
            if user is None:
                user = await create_user(session, email=email, password=password, is_superuser=True)
                outcome = "created"
            else:
                user.password_hash, user.is_superuser = hash_password(password), True
                outcome = "updated"
            if tenant:
                existing = await find_tenant(session, name=tenant)
                if existing is None:
                    await create_tenant(session, name=tenant, owner_id=user.id, role_id=ADMIN.id)
                else:
                    await add_member(
                        session, tenant_id=existing.id, user_id=user.id, role_id=ADMIN.id
                    )
            await session.commit()
            return outcome
    finally:
        await database.dispose()


@app.command("create-admin")
def create_admin(
    email: Annotated[str, typer.Option(help="Email of the platform operator.")],
    password: Annotated[str, typer.Option(help="Password (no prompt, for scripts).")],
    tenant: Annotated[str | None, typer.Option(help="Also make them Admin of this tenant.")] = None,
) -> None:
    """Create (or update) a platform operator, optionally Admin of a tenant."""
    from openrisk.auth.emails import InvalidEmail, normalise_email

    try:
        email = normalise_email(email)
    except InvalidEmail as error:
        err.print(f"[red]--email: {error}[/red]")
        raise typer.Exit(2) from error
    if len(password) < 10:
        err.print("[red]--password must be at least 10 characters[/red]")
        raise typer.Exit(2)
    outcome = asyncio.run(_create_admin(load_settings(), email, password, tenant))
    console.print(f"{outcome} superuser {email}" + (f" (Admin of {tenant})" if tenant else ""))


async def _cache_command(settings: Settings, action: str) -> dict[str, object]:
    from openrisk.core.cache.factory import build_app_caches

    caches = build_app_caches(settings)
    try:
        if action == "clear":
            await caches.shared.clear()
        return await caches.shared.stats()
    finally:
        await caches.shared.close()


def _flat(stats: Mapping[str, object], prefix: str = "") -> list[tuple[str, str]]:
    rows: list[tuple[str, str]] = []
    for name, value in stats.items():
        if isinstance(value, Mapping):
            rows += _flat(value, f"{prefix}{name}.")
        else:
            rows.append((prefix + name, str(value)))
    return rows


def _server_cache_stats(server: str, email: str, password: str) -> dict[str, object]:
    """``GET /api/v1/system/cache`` of the running server, signed in as a superuser."""
    import httpx

    with httpx.Client(base_url=server.rstrip("/"), timeout=10, trust_env=False) as http:
        login = http.post("/api/v1/auth/login", json={"email": email, "password": password})
        if login.status_code != 200:
            raise RuntimeError(f"sign-in refused ({login.status_code}): {login.text[:200]}")
        token = login.json()["access_token"]
        answer = http.get("/api/v1/system/cache", headers={"Authorization": f"Bearer {token}"})
        if answer.status_code != 200:
            raise RuntimeError(f"/system/cache answered {answer.status_code}: {answer.text[:200]}")
        stats: dict[str, object] = answer.json()["stats"]
        return stats


@cache_app.command("stats")
def cache_stats(
    server: Annotated[
        str | None,
        typer.Option(
            help="URL of the running server (default http://OPENRISK_HOST:OPENRISK_PORT)."
        ),
    ] = None,
    email: Annotated[
        str | None, typer.Option(help="A superuser's email: read the server's /system/cache.")
    ] = None,
    password: Annotated[
        str | None, typer.Option(help="That superuser's password (prompted when missing).")
    ] = None,
) -> None:
    """The cache's statistics as the running server sees them (with --email), or, without,
    what can be read from the shared backend itself (Redis: keys and memory)."""
    settings = load_settings()
    url = server or f"http://{settings.host}:{settings.port}"
    if email:
        secret = password or typer.prompt("Password", hide_input=True)
        try:
            stats = _server_cache_stats(url, email, secret)
        except Exception as error:
            err.print(
                f"[red]cannot read {escape(url)}/api/v1/system/cache: {escape(str(error))}[/red]"
            )
            raise typer.Exit(1) from error
        title = f"cache of the server at {url} (the worker that answered)"
    elif settings.cache_backend == "memory":
        err.print(
            "The memory cache lives inside each server process: this command cannot see it. "
            "Pass --email (and --password) of a superuser to read the running server's "
            f"/api/v1/system/cache at {escape(url)} (or use --server URL)."
        )
        raise typer.Exit(1)
    else:
        try:
            stats = asyncio.run(_cache_command(settings, "stats"))
        except Exception as error:
            err.print(f"[red]cache unavailable: {escape(str(error))}[/red]")
            raise typer.Exit(1) from error
        stats = {k: v for k, v in stats.items() if k not in ("hits", "misses")}
        title = f"{settings.cache_backend} backend (hit counts: --email, from the server)"
    table = Table("statistic", "value", title=title)
    for name, value in _flat(stats):
        table.add_row(name, value)
    console.print(table)


@cache_app.command("clear")
def cache_clear() -> None:
    """Delete every OpenRisk key from the cache (other data in the same Redis is kept)."""
    from openrisk.core.cache import CacheError

    try:
        stats = asyncio.run(_cache_command(load_settings(), "clear"))
    except CacheError as error:
        err.print(f"[red]cache unavailable: {escape(str(error))}[/red]")
        raise typer.Exit(1) from error
    console.print(f"cleared the {stats.get('backend', 'cache')} cache")


LOADTEST_DB_URL = "sqlite+aiosqlite:///./reports/.loadtest/openrisk.db"


def _perf_database_url(database_url: str | None, settings: Settings) -> str:
    """--database-url, else OPENRISK_DATABASE_URL, else a SQLite file of its own (the load
    tests add accounts and risks: they should not land in the development database)."""
    if database_url:
        return database_url
    return settings.database_url if "database_url" in settings.model_fields_set else LOADTEST_DB_URL


PerfDatabase = Annotated[
    str | None,
    typer.Option(
        "--database-url",
        help="Database to seed and serve (default OPENRISK_DATABASE_URL, else "
        "./reports/.loadtest/openrisk.db). A missing PostgreSQL database is created.",
    ),
]
PerfCache = Annotated[str, typer.Option("--cache", help="Cache backend: memory or redis.")]
PerfWorkers = Annotated[int, typer.Option("--workers", min=1, max=64, help="Server workers.")]
PerfRedis = Annotated[
    str | None, typer.Option("--redis-url", help="Redis URL (default OPENRISK_REDIS_URL).")
]
PerfOutput = Annotated[Path, typer.Option("--output", help="Directory of the reports.")]
PerfServerEnv = Annotated[
    list[str] | None,
    typer.Option(
        "--server-env",
        help="Extra OPENRISK_*=value for the server (repeatable), e.g. OPENRISK_POOL_MAX_IDLE=10.",
    ),
]


def _server_env(pairs: list[str] | None) -> dict[str, str]:
    env: dict[str, str] = {}
    for pair in pairs or []:
        name, sep, value = pair.partition("=")
        if not sep or not name.startswith("OPENRISK_"):
            err.print(f"[red]--server-env takes OPENRISK_NAME=value, got {pair!r}[/red]")
            raise typer.Exit(2)
        env[name] = value
    return env


@app.command("loadtest")
def loadtest(
    scenario: Annotated[
        str, typer.Option("--scenario", help="baseline, warm or peak (docs/performance.md).")
    ] = "warm",
    quick: Annotated[bool, typer.Option("--quick", help="30-second version.")] = False,
    duration: Annotated[
        str | None, typer.Option("--duration", help="Override the length, e.g. 10s, 2m.")
    ] = None,
    database_url: PerfDatabase = None,
    cache: PerfCache = "memory",
    workers: PerfWorkers = 1,
    redis_url: PerfRedis = None,
    output: PerfOutput = Path("reports"),
    max_p95_ms: Annotated[
        float | None, typer.Option("--max-p95-ms", help="p95 threshold (default 100).")
    ] = None,
    min_hit_rate: Annotated[
        float | None,
        typer.Option("--min-hit-rate", help="Cache hit rate threshold, 0..1 (warm: 0.75)."),
    ] = None,
    server_env: PerfServerEnv = None,
) -> None:
    """Run a Locust scenario against a fresh `openrisk serve` and write
    reports/loadtest-<scenario>-<timestamp>.{md,json,png}. Exits 1 when a threshold is missed."""
    from openrisk.perf import LOADTEST_TOOLS, PERF_EXTRA_HINT, missing_tools

    if missing := missing_tools(LOADTEST_TOOLS):
        err.print(
            f"[red]openrisk loadtest needs {', '.join(missing)}, the optional perf tools: "
            f"{escape(PERF_EXTRA_HINT)}[/red]"
        )
        raise typer.Exit(2)
    from openrisk.perf import loadtest as lt
    from openrisk.perf.scenarios import SCENARIOS, parse_duration, resolve

    if scenario not in SCENARIOS or cache not in ("memory", "redis"):
        err.print(f"[red]--scenario is one of {', '.join(SCENARIOS)}; --cache memory|redis[/red]")
        raise typer.Exit(2)
    try:
        seconds = parse_duration(duration) if duration else None
    except ValueError as error:
        err.print(f"[red]--duration: {error}[/red]")
        raise typer.Exit(2) from error
    settings = load_settings()
    options = lt.LoadtestOptions(
        scenario=resolve(
            scenario,
            quick=quick,
            duration_s=seconds,
            max_p95_ms=max_p95_ms,
            min_hit_rate=min_hit_rate,
        ),
        database_url=_perf_database_url(database_url, settings),
        cache_backend=cache,
        redis_url=redis_url or settings.redis_url,
        workers=workers,
        output_dir=output,
        demo_password=_demo_password(settings),
        command=lt.command_line(sys.argv[1:]),
        server_env=_server_env(server_env),
    )
    try:
        data = lt.run_loadtest(options, log=console.print, progress=True)
    except Exception as error:  # the harness failed: not a threshold verdict
        err.print(f"[red]load test failed to run: {escape(str(error))}[/red]")
        raise typer.Exit(3) from error
    table = Table("metric", "value", title=f"loadtest {scenario}")
    for name, value in lt.summary_rows(data):
        table.add_row(name, value)
    for check in data["thresholds"]:
        verdict = "[green]pass[/green]" if check["passed"] else "[red]FAIL[/red]"
        table.add_row(f"threshold {check['name']} {check['limit']}", f"{check['shown']} {verdict}")
    console.print(table)
    for kind, path in data["files"].items():
        console.print(f"report ({kind}): {path}")
    if not data["passed"]:
        raise typer.Exit(1)


@app.command("bench")
def bench(
    database_url: PerfDatabase = None,
    cache: PerfCache = "memory",
    workers: PerfWorkers = 1,
    redis_url: PerfRedis = None,
    output: PerfOutput = Path("reports"),
    duration: Annotated[
        str, typer.Option("--duration", help="Load per endpoint and mode, e.g. 10s.")
    ] = "10s",
    concurrency: Annotated[
        int, typer.Option("--concurrency", min=1, max=256, help="Concurrent connections.")
    ] = 8,
    server_env: PerfServerEnv = None,
    scale: Annotated[
        int | None,
        typer.Option(
            "--scale",
            min=100,
            max=10_000_000,
            help="Measure the register's budgets at this many risks (benchmarks/scale.py, "
            "PostgreSQL) instead of cache off vs on.",
        ),
    ] = None,
    sizes: Annotated[
        str | None,
        typer.Option("--sizes", help="With --scale: several sizes side by side, e.g. 1000,10000"),
    ] = None,
    reuse: Annotated[
        bool, typer.Option("--reuse", help="With --scale: measure the seeded databases again.")
    ] = False,
    write_docs: Annotated[
        bool,
        typer.Option("--write-docs", help="With --scale: write the tables into the docs."),
    ] = False,
    rounds: Annotated[
        int, typer.Option("--rounds", min=5, help="With --scale: requests per endpoint.")
    ] = 100,
    import_rows: Annotated[
        int, typer.Option("--import-rows", min=10, help="With --scale: rows per import.")
    ] = 50_000,
    owner_role: Annotated[
        bool,
        typer.Option("--owner-role", help="With --scale: connect as the owner, not an app role."),
    ] = False,
    against: Annotated[
        str | None,
        typer.Option("--openrisk", help="With --scale: the openrisk executable to measure."),
    ] = None,
    label: Annotated[str, typer.Option("--label", help="With --scale: named in the report.")] = "",
) -> None:
    """Cache off vs on on the same data: list, detail, dashboard (and health as reference);
    prints the table and writes reports/bench-<timestamp>.{md,json}. With ``--scale N``: the
    register's latency, export, import and seeding budgets at N risks (see docs)."""
    if scale is not None:
        _scale_bench(
            scale=scale,
            sizes=sizes,
            database_url=database_url,
            output=output,
            reuse=reuse,
            write_docs=write_docs,
            rounds=rounds,
            import_rows=import_rows,
            app_role=not owner_role,
            against=against,
            label=label,
        )
        return
    from openrisk.perf import bench as bn
    from openrisk.perf.scenarios import parse_duration

    if cache not in ("memory", "redis"):
        err.print("[red]--cache is memory or redis[/red]")
        raise typer.Exit(2)
    try:
        seconds = parse_duration(duration)
    except ValueError as error:
        err.print(f"[red]--duration: {error}[/red]")
        raise typer.Exit(2) from error
    settings = load_settings()
    options = bn.BenchOptions(
        database_url=_perf_database_url(database_url, settings),
        cache_backend=cache,
        redis_url=redis_url or settings.redis_url,
        workers=workers,
        output_dir=output,
        duration_s=seconds,
        concurrency=concurrency,
        demo_password=_demo_password(settings),
        command=bn.command_line(sys.argv[1:]),
        server_env=_server_env(server_env),
    )
    try:
        data = bn.run_bench(options, console=console)
    except Exception as error:
        err.print(f"[red]bench failed to run: {escape(str(error))}[/red]")
        raise typer.Exit(3) from error
    for kind, path in data["files"].items():
        console.print(f"report ({kind}): {path}")


def _scale_bench(
    *,
    scale: int,
    sizes: str | None,
    database_url: str | None,
    output: Path,
    reuse: bool,
    write_docs: bool,
    rounds: int,
    import_rows: int,
    app_role: bool,
    against: str | None,
    label: str,
) -> None:
    """benchmarks/scale.py lives beside the package in a checkout (it is not installed)."""
    import importlib

    root = Path(__file__).resolve().parents[2]
    if not (root / "benchmarks" / "scale.py").is_file():
        err.print("[red]--scale runs benchmarks/scale.py from a checkout of the repository[/red]")
        raise typer.Exit(2)
    sys.path.insert(0, str(root))
    scale_bench = importlib.import_module("benchmarks.scale")
    try:
        scales = [int(n) for n in sizes.split(",")] if sizes else [scale]
    except ValueError as error:
        err.print("[red]--sizes is a comma-separated list of numbers[/red]")
        raise typer.Exit(2) from error
    url = database_url or "postgresql+asyncpg://postgres@127.0.0.1:5432/openrisk_scale"
    if not url.startswith("postgresql+asyncpg://"):
        err.print("[red]--scale needs a postgresql+asyncpg:// --database-url[/red]")
        raise typer.Exit(2)
    options = scale_bench.ScaleOptions(
        scales=scales,
        database_url=url,
        reuse=reuse,
        rounds=rounds,
        import_rows=import_rows,
        app_role=app_role,
        output_dir=output,
        write_docs=root / "docs" / "performance.md" if write_docs else None,
        label=label,
        command="openrisk " + " ".join(sys.argv[1:]),
    )
    if against:
        options.openrisk = [against]
    data = scale_bench.run(options, console=console)
    for kind, path in data["files"].items():
        console.print(f"report ({kind}): {path}")
    missed = scale_bench.failed(data)
    if missed:
        err.print("[red]budgets missed:[/red] " + "; ".join(missed))
        raise typer.Exit(1)


@app.command("check-config")
def check_config() -> None:
    """Validate the OPENRISK_* configuration, print it (secrets masked) and check that the
    database, the cache and the SMTP relay it names can be reached. Exits 1 if one cannot."""
    from openrisk.diagnostics import check_smtp, redact, run_checks

    settings = load_settings()
    table = Table("setting", "value")
    for name, value in settings.model_dump().items():
        shown = "********" if "secret" in name or "password" in name else redact(str(value))
        table.add_row(f"OPENRISK_{name.upper()}", escape(shown))
    pool = settings.pool
    table.add_row("pool (effective)", f"{pool}")
    console.print(table)
    smtp_url: str | None = getattr(settings, "smtp_url", None)  # set once e-mail is configured
    checks = asyncio.run(run_checks(settings, extra=(lambda: check_smtp(smtp_url),)))
    reachable = Table("service", "reachable", "detail", title="reachability")
    for check in checks:
        verdict = "[green]yes[/green]" if check.ok else "[red]NO[/red]"
        reachable.add_row(check.name, verdict, escape(check.detail))
    console.print(reachable)
    if not all(check.ok for check in checks):
        err.print("[red]configuration is valid, but a service it names cannot be used[/red]")
        raise typer.Exit(1)
    console.print("[green]configuration is valid and every service answers[/green]")


def main() -> None:  # pragma: no cover
    sys.exit(app())
