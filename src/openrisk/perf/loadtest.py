"""``openrisk loadtest``: seed, serve, run a Locust scenario headless, measure, report.

1. The data set (``dataset.prepare``): migrations, the demo tenant, Viewer/Analyst logins.
2. ``openrisk serve`` in a subprocess on a free 127.0.0.1 port (cache enabled or not per
   scenario, the chosen backend and number of workers).
3. For scenarios with the cache on, a warm-up: every dashboard period, the first page of every
   register view, the heatmap, the searches and every risk's detail, as a server that has been
   up for a while would have them cached; it happens before the first /metrics reading.
4. ``/metrics`` is read, Locust runs in its own process (gevent must not patch this one) with
   ``--csv --csv-full-history`` (per-second history for the chart and the progress line), then
   ``/metrics`` is read again.
5. The report: ``reports/loadtest-<scenario>-<timestamp>.{md,json,png}``.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from openrisk.config import Settings
from openrisk.perf import metrics_scrape, report, workload
from openrisk.perf.dataset import Dataset, prepare
from openrisk.perf.scenarios import Scenario
from openrisk.perf.server import ServerProcess, harness_env, log_tail, running_server

LOCUSTFILE = Path("loadtests") / "locustfile.py"
SHAPEFILE = Path("loadtests") / "shapes.py"
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
LOGIN_NAME = "POST /auth/login"
DEFAULT_VIEWER_WAIT = (0.5, 2.0)
DEFAULT_ANALYST_WAIT = (3.0, 8.0)


class HarnessError(RuntimeError):
    """The harness itself failed (server, Locust, files) — not a missed threshold."""


@dataclass
class LoadtestOptions:
    scenario: Scenario
    database_url: str
    cache_backend: str = "memory"
    redis_url: str = "redis://127.0.0.1:6379/0"
    workers: int = 1
    output_dir: Path = Path("reports")
    demo_password: str = ""
    locustfile: Path | None = None
    viewer_wait: tuple[float, float] = DEFAULT_VIEWER_WAIT
    analyst_wait: tuple[float, float] = DEFAULT_ANALYST_WAIT
    server_env: dict[str, str] = field(default_factory=dict)
    command: str = ""
    warm_up: bool = True


def repo_root() -> Path:
    return Path(__file__).resolve().parents[3]


def find_locustfile(given: Path | None) -> Path:
    candidates = [given] if given else [Path.cwd() / LOCUSTFILE, repo_root() / LOCUSTFILE]
    for candidate in candidates:
        if candidate and candidate.is_file():
            return candidate.resolve()
    raise HarnessError(
        "no Locust scenarios found (looked for "
        + ", ".join(str(c) for c in candidates if c)
        + "); run from the repository root (loadtests/ is not part of the installed package)"
    )


def locust_command() -> list[str]:
    script = Path(sys.executable).with_name("locust")
    if script.exists():
        return [str(script)]
    found = shutil.which("locust")
    if found:
        return [found]
    raise HarnessError("Locust is not installed: pip install 'openrisk[perf]'")


def server_environment(options: LoadtestOptions) -> dict[str, str]:
    env = {
        "OPENRISK_DATABASE_URL": options.database_url,
        "OPENRISK_CACHE_BACKEND": options.cache_backend,
        "OPENRISK_CACHE_ENABLED": "true" if options.scenario.cache_enabled else "false",
        "OPENRISK_REDIS_URL": options.redis_url,
        "OPENRISK_LOG_LEVEL": "INFO",  # the default: one JSON access line per request
    }
    env.update(harness_env(options.server_env))
    return env


def settings_for(options: LoadtestOptions) -> Settings:
    return Settings(
        database_url=options.database_url,
        cache_backend=options.cache_backend,
        redis_url=options.redis_url,
        log_level="WARNING",
    )


async def clear_shared_cache(settings: Settings) -> None:
    """Start from an empty cache: earlier runs' answers would inflate the hit rate."""
    from openrisk.core.cache.factory import build_app_caches

    caches = build_app_caches(settings)
    try:
        await caches.shared.clear()
    finally:
        await caches.shared.close()


@dataclass
class WarmUp:
    requests: int = 0
    errors: list[str] = field(default_factory=list)  # "GET path: HTTP 500" (the run shows them)


def warm_up(base_url: str, dataset: Dataset) -> WarmUp:
    """Fill the cache as a server that has been up for a while has it: every dashboard period,
    the first page of every register view, the heatmap, the searches and every risk's detail.
    It happens before the first /metrics reading. A failing request is noted, not fatal: the
    run itself will count that endpoint's errors."""
    viewer = dataset.by_role("viewer")[0]
    done = WarmUp()
    with httpx.Client(base_url=base_url + workload.API, timeout=30, trust_env=False) as client:

        def get(path: str, params: dict[str, Any] | None = None) -> httpx.Response:
            response = client.get(path, params=params)
            done.requests += 1
            if response.status_code >= 400:
                done.errors.append(f"GET {path}: HTTP {response.status_code}")
            return response

        credentials = {"email": viewer.email, "password": viewer.password}
        login = client.post("/auth/login", json=credentials)
        done.requests += 1
        if login.status_code != 200:
            raise HarnessError(f"warm-up login failed: HTTP {login.status_code} {login.text}")
        client.headers["Authorization"] = f"Bearer {login.json()['access_token']}"
        for path, params in workload.warm_up_requests():
            get(path, params)
        page, risk_ids = 1, []
        while True:
            listing = get("/risks", {"page": page, "page_size": 100})
            if listing.status_code != 200:
                break
            body = listing.json()
            risk_ids += [item["id"] for item in body["items"]]
            if page * 100 >= body["total"] or not body["items"]:
                break
            page += 1
        for risk_id in risk_ids:
            get(f"/risks/{risk_id}")
    return done


@dataclass(frozen=True)
class LocustRun:
    exit_code: int
    prefix: Path
    results: dict[str, Any]
    log: Path
    started_at: datetime
    finished_at: datetime
    load_at_start: list[float] | None = None


def _progress_columns() -> tuple[Any, ...]:
    from rich.progress import BarColumn, TextColumn, TimeElapsedColumn

    return (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[status]}"),
    )


def _live_status(history: Path) -> str:
    points = report.read_locust_history(history)
    if not points:
        return "starting…"
    last = points[-1]
    p95 = f"{last.p95_ms:.0f} ms" if last.p95_ms is not None else "–"
    return (
        f"users {last.users:>3}  req/s {last.rps:6.1f}  p95 {p95:>7}  "
        f"requests {last.requests}  failures {last.failures}"
    )


def run_locust(
    *,
    scenario: Scenario,
    base_url: str,
    locustfile: Path,
    config_path: Path,
    workdir: Path,
    on_tick: Callable[[float, str], None] | None = None,
) -> LocustRun:
    prefix = workdir / "locust"
    files = str(locustfile)
    command = [*locust_command()]
    if scenario.stages is not None:
        files += "," + str(locustfile.with_name(SHAPEFILE.name))
    command += [
        "-f",
        files,
        "--headless",
        "--host",
        base_url,
        "--csv",
        str(prefix),
        "--csv-full-history",  # history percentiles over the last 10 s (else: since the start)
        "--only-summary",
        "--loglevel",
        "WARNING",
        "--exit-code-on-error",
        "0",  # failures are judged against the error-rate threshold, not "any failure"
    ]
    if scenario.stages is None:
        command += [
            "-u",
            str(scenario.users),
            "-r",
            str(scenario.spawn_rate),
            "-t",
            f"{scenario.duration_s:g}s",
        ]
    env = {**_clean_env(), "OPENRISK_LOADTEST_CONFIG": str(config_path)}
    log = workdir / "locust.log"
    started = datetime.now(UTC)
    load_at_start = report.load_average()
    deadline = time.monotonic() + scenario.duration_s + 90
    with log.open("wb") as out:
        proc = subprocess.Popen(
            command, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
        begun = time.monotonic()
        try:
            while proc.poll() is None:
                if time.monotonic() > deadline:
                    proc.kill()
                    raise HarnessError(f"Locust did not finish in time:\n{log_tail(log)}")
                if on_tick:
                    on_tick(
                        time.monotonic() - begun, _live_status(Path(f"{prefix}_stats_history.csv"))
                    )
                time.sleep(1.0)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)
    finished = datetime.now(UTC)
    results_path = workdir / "locust-results.json"
    results = json.loads(results_path.read_text()) if results_path.exists() else {}
    if proc.returncode not in (0, 1) or not Path(f"{prefix}_stats.csv").exists():
        raise HarnessError(f"Locust failed (exit {proc.returncode}):\n{log_tail(log)}")
    return LocustRun(
        exit_code=proc.returncode,
        prefix=prefix,
        results=results,
        log=log,
        started_at=started,
        finished_at=finished,
        load_at_start=load_at_start,
    )


def _clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k.upper() != "PROMETHEUS_MULTIPROC_DIR"}


def users_description(scenario: Scenario) -> str:
    mix = "Viewer:Analyst weights 4:1"
    if scenario.stages is None:
        return f"{scenario.users} constant ({mix})"
    counts: list[int] = []
    for _, users in scenario.stages:
        if not counts or counts[-1] != users:
            counts.append(users)
    return f"{' → '.join(map(str, counts))} over {scenario.duration_s:g} s ({mix})"


def evaluate(scenario: Scenario, results: dict[str, Any]) -> list[dict[str, Any]]:
    """The thresholds of the scenario against the measured results."""
    thresholds = scenario.thresholds
    checks: list[dict[str, Any]] = [
        {
            "name": "p95",
            "limit": f"< {thresholds.max_p95_ms:g} ms",
            "value": results["p95_ms"],
            "shown": report.fmt(results["p95_ms"], 0, suffix=" ms"),
            "passed": results["p95_ms"] is not None and results["p95_ms"] < thresholds.max_p95_ms,
        },
        {
            "name": "error rate",
            "limit": f"< {thresholds.max_error_rate * 100:g} %",
            "value": results["error_rate"],
            "shown": report.fmt(results["error_rate"], 2, percent=True),
            "passed": results["error_rate"] < thresholds.max_error_rate,
        },
    ]
    if thresholds.min_hit_rate is not None:
        rate = results["cache_hit_rate"]
        checks.append(
            {
                "name": "cache hit rate",
                "limit": f"> {thresholds.min_hit_rate * 100:g} %",
                "value": rate,
                "shown": report.fmt(rate, 1, percent=True),
                "passed": rate is not None and rate > thresholds.min_hit_rate,
            }
        )
    return checks


def build_report(
    options: LoadtestOptions,
    dataset: Dataset,
    run: LocustRun,
    server_delta: metrics_scrape.Delta,
    warmed: WarmUp,
) -> dict[str, Any]:
    scenario = options.scenario
    endpoints, total = report.read_locust_stats(Path(f"{run.prefix}_stats.csv"))
    if total is None or total.requests == 0:
        raise HarnessError(f"Locust sent no requests:\n{log_tail(run.log)}")
    duration = (run.finished_at - run.started_at).total_seconds()
    writes = sum(
        e.requests for e in endpoints if e.method in WRITE_METHODS and e.name != LOGIN_NAME
    )
    x_cache: dict[str, int] = run.results.get("x_cache", {})
    results: dict[str, Any] = {
        "requests": total.requests,
        "failures": total.failures,
        "error_rate": total.failures / total.requests,
        "avg_ms": round(total.avg_ms, 2),
        "p50_ms": total.p50_ms,
        "p95_ms": total.p95_ms,
        "p99_ms": total.p99_ms,
        "max_ms": total.max_ms,
        "rps": round(total.rps, 2),
        "cache_hit_rate": server_delta.cache_hit_rate,
        "db_queries_per_request": server_delta.db_queries_per_request,
        "server_mean_ms": server_delta.server_mean_ms,
        "write_share": writes / total.requests,
        "writes": writes,
        "x_cache": x_cache,
        "x_cache_summary": "/".join(str(x_cache.get(k, 0)) for k in ("HIT", "MISS", "BYPASS")),
    }
    thresholds = evaluate(scenario, results)
    machine = report.machine()
    machine["load_average"] = run.load_at_start
    machine["load_average_end"] = report.load_average()
    return {
        "kind": "loadtest",
        "scenario": scenario.name,
        "description": scenario.description
        + (f" (shortened to {scenario.duration_s:g} s)" if _shortened(scenario) else ""),
        "started_at": run.started_at.isoformat(timespec="seconds"),
        "finished_at": run.finished_at.isoformat(timespec="seconds"),
        "duration_s": round(duration, 1),
        "machine": machine,
        "command": options.command,
        "setup": {
            "database": "sqlite" if options.database_url.startswith("sqlite") else "postgresql",
            "database_url": report.redact_url(options.database_url),
            "cache_backend": options.cache_backend,
            "cache_enabled": scenario.cache_enabled,
            "workers": options.workers,
            "users": scenario.users,
            "users_description": users_description(scenario),
            "stages": scenario.stage_points(),
            "viewer_wait_s": list(options.viewer_wait),
            "analyst_wait_s": list(options.analyst_wait),
            "warm_up_requests": warmed.requests,
            "warm_up_errors": warmed.errors[:20],
            "server_env": {
                k: v for k, v in harness_env(options.server_env).items() if "SECRET" not in k
            },
        },
        "dataset": dataset.summary(),
        "results": results,
        "server": server_delta.as_dict(),
        "endpoints": [
            _with_hit_rate(e.as_dict(), run.results.get("x_cache_by_endpoint", {}))
            for e in endpoints
        ],
        "thresholds": thresholds,
        "passed": all(t["passed"] for t in thresholds),
        "locust": {
            "exit_code": run.exit_code,
            "thresholds": run.results.get("thresholds", []),
            "log": str(run.log),
        },
        "files": {},
    }


def _with_hit_rate(row: dict[str, Any], by_endpoint: dict[str, dict[str, int]]) -> dict[str, Any]:
    """The endpoint's X-Cache counts and hit rate (None for endpoints that are not cached)."""
    counts = by_endpoint.get(row["name"], {})
    lookups = sum(counts.values())
    row["x_cache"] = counts
    row["hit_rate"] = round(counts.get("HIT", 0) / lookups, 4) if lookups else None
    return row


def _shortened(scenario: Scenario) -> bool:
    from openrisk.perf.scenarios import SCENARIOS

    return scenario.duration_s != SCENARIOS[scenario.name].duration_s


def write_reports(data: dict[str, Any], output_dir: Path, history: Path) -> dict[str, str]:
    stem = output_dir / f"loadtest-{data['scenario']}-{report.timestamp()}"
    png = stem.with_suffix(".png")
    title = (
        f"{data['scenario']}: {data['setup']['database']} + {data['setup']['cache_backend']}, "
        f"{data['setup']['workers']} worker(s), {data['setup']['users_description']}"
    )
    charted = report.write_chart(png, report.read_locust_history(history), title)
    files = {"md": str(stem.with_suffix(".md")), "json": str(stem.with_suffix(".json"))}
    if charted:
        files["png"] = str(png)
    data["files"] = files
    report.write_json(Path(files["json"]), data)
    Path(files["md"]).write_text(report.loadtest_markdown(data))
    return files


@contextlib.contextmanager
def _progress(
    enabled: bool, description: str, total: float
) -> Iterator[Callable[[float, str], None]]:
    if not enabled:
        yield lambda _elapsed, _status: None
        return
    from rich.progress import Progress

    with Progress(*_progress_columns(), transient=False) as progress:
        task = progress.add_task(description, total=total, status="starting…")

        def tick(elapsed: float, status: str) -> None:
            progress.update(task, completed=min(elapsed, total), status=status)

        yield tick
        progress.update(task, completed=total)


def run_loadtest(
    options: LoadtestOptions, *, log: Callable[[str], None] = print, progress: bool = True
) -> dict[str, Any]:
    """Run the scenario end to end and write its report; returns the report (see ``passed``)."""
    import asyncio

    scenario = options.scenario
    locustfile = find_locustfile(options.locustfile)
    locust_command()  # fail early when Locust is missing
    settings = settings_for(options)
    log(f"preparing the data set ({report.redact_url(options.database_url)})…")
    dataset = prepare(settings, demo_password=options.demo_password or "loadtest-demo-password")
    log(
        f"data set: tenant {dataset.tenant_slug}, {dataset.risks} risks, "
        f"{len(dataset.accounts)} load-test accounts"
    )
    if options.cache_backend != "none":
        asyncio.run(clear_shared_cache(settings))
    workdir = options.output_dir / ".work" / f"{scenario.name}-{report.timestamp()}"
    workdir.mkdir(parents=True, exist_ok=True)
    config_path = workdir / "locust-config.json"
    config = {
        **dataset.for_locust(),
        "thresholds": {
            "max_p95_ms": scenario.thresholds.max_p95_ms,
            "max_error_rate": scenario.thresholds.max_error_rate,
            "min_hit_rate": scenario.thresholds.min_hit_rate,
        },
        "viewer_wait": list(options.viewer_wait),
        "analyst_wait": list(options.analyst_wait),
        "stages": scenario.stage_points() if scenario.stages is not None else None,
        "results_path": str(workdir / "locust-results.json"),
    }
    config_path.write_text(json.dumps(config, indent=2))
    config_path.chmod(0o600)  # holds this run's passwords
    log(
        f"starting openrisk serve ({options.workers} worker(s), cache {options.cache_backend}, "
        f"{'enabled' if scenario.cache_enabled else 'disabled'})…"
    )
    server: ServerProcess
    with running_server(
        env=server_environment(options), workers=options.workers, log=workdir / "server.log"
    ) as server:
        warmed = (
            warm_up(server.base_url, dataset)
            if scenario.cache_enabled and options.warm_up
            else WarmUp()
        )
        if warmed.errors:
            log(f"[yellow]warm-up: {len(warmed.errors)} failed request(s): {warmed.errors[0]}[/]")
        before = metrics_scrape.scrape(server.base_url)
        with _progress(
            progress, f"{scenario.name} ({scenario.duration_s:g} s)", scenario.duration_s
        ) as tick:
            run = run_locust(
                scenario=scenario,
                base_url=server.base_url,
                locustfile=locustfile,
                config_path=config_path,
                workdir=workdir,
                on_tick=tick,
            )
        after = metrics_scrape.scrape(server.base_url)
    data = build_report(options, dataset, run, metrics_scrape.delta(before, after), warmed)
    write_reports(data, options.output_dir, Path(f"{run.prefix}_stats_history.csv"))
    return data


def summary_rows(data: dict[str, Any]) -> Sequence[tuple[str, str]]:
    results = data["results"]
    return (
        ("requests", str(results["requests"])),
        ("requests/s", report.fmt(results["rps"])),
        ("error rate", report.fmt(results["error_rate"], 2, percent=True)),
        (
            "avg / p50 / p95 / p99 (ms)",
            " / ".join(report.fmt(results[k], 1) for k in ("avg_ms", "p50_ms", "p95_ms", "p99_ms")),
        ),
        ("cache hit rate", report.fmt(results["cache_hit_rate"], 1, percent=True)),
        ("DB queries per request", report.fmt(results["db_queries_per_request"], 2)),
    )


def command_line(argv: Sequence[str]) -> str:
    return "openrisk " + " ".join(shlex.quote(a) for a in argv)
