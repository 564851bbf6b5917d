"""The risk model at scale: re-scoring every risk (``PUT /risk-model``) and the dashboards that
follow the model, on PostgreSQL.

```
python -m benchmarks.methodology_bench \
    --database-url postgresql+asyncpg://postgres@127.0.0.1:5432/openrisk_method_bench \
    --risks 100000 --drop
```

The database is recreated, migrated and seeded like ``benchmarks.register_bench`` (one
measured tenant, optionally noise tenants), then the whole application is driven through
httpx's ASGI transport with the response cache off (every request runs its SQL):

- the dashboard answers the model shapes (stats with the appetite, review and acceptance
  figures; the matrix for each of the four levels; the timeline with the mean residual),
  interleaved, ``--iterations`` requests each: p50 and p95 (with ``--concurrency N``, each
  request is sent N times at once, as N connections to one worker would);
- the register (``GET /risks``) with the model's filters and sorts;
- with ``--asset-change``, a new criticality of the asset linked to the most risks, and back;
- ``PUT /risk-model?dry_run=true`` with new bands (HIGH from 12) and with new asset factors
  (every score recomputed), then the new bands applied (a job above
  ``OPENRISK_RISK_MODEL_ASYNC_THRESHOLD``, run by this process, followed to its end), then the
  default bands back: the wall time of each, and the risks re-scored.

``--reuse`` measures the database of an earlier run again (migrated to the head first).
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import itertools
import os
import statistics
import time
from collections.abc import Sequence
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table

from benchmarks.register_bench import (
    PASSWORD,
    drop_database,
    largest_tenant,
    recreate_database,
    seed,
    uncached_settings,
)
from openrisk.app import create_app
from openrisk.config import Settings
from openrisk.core.db.migrate import upgrade

console = Console()
DASHBOARDS = {
    # every period: the whole register reads other roll-ups than a period does
    "stats all": ["/api/v1/dashboard/stats?period=all"],
    "stats 90d": ["/api/v1/dashboard/stats?period=90d"],
    "stats 30d": ["/api/v1/dashboard/stats?period=30d"],
    "stats 7d": ["/api/v1/dashboard/stats?period=7d"],
    "matrix current": ["/api/v1/dashboard/matrix?basis=current"],
    "matrix residual": ["/api/v1/dashboard/matrix?basis=residual"],
    "matrix inherent": ["/api/v1/dashboard/matrix?basis=inherent"],
    "matrix target": ["/api/v1/dashboard/matrix?basis=target"],
    "timeline": ["/api/v1/dashboard/timeline?days=90", "/api/v1/dashboard/timeline?days=365"],
    # the register with the model's filters and sorts
    "risks above_appetite": ["/api/v1/risks?above_appetite=true"],
    "risks review=overdue": ["/api/v1/risks?review=overdue"],
    "risks review=due_soon": ["/api/v1/risks?review=due_soon"],
    "risks sort=residual_score": ["/api/v1/risks?sort=residual_score&order=desc"],
    "risks sort=next_review_date": ["/api/v1/risks?sort=next_review_date&order=asc"],
}


def _percentile(samples: Sequence[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def _timed(client: httpx.AsyncClient, url: str, headers: dict[str, str]) -> float:
    started = time.perf_counter()
    response = await client.get(url, headers=headers)
    elapsed = (time.perf_counter() - started) * 1000
    response.raise_for_status()
    return elapsed


async def measure(
    settings: Settings,
    *,
    tenant_id: str,
    email: str,
    iterations: int,
    apply: bool,
    concurrency: int = 1,
    asset_change: bool = False,
) -> tuple[dict[str, list[float]], list[tuple[str, float, Any]]]:
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://bench", timeout=120
        ) as client:
            login = await client.post(
                "/api/v1/auth/login", json={"email": email, "password": PASSWORD}
            )
            login.raise_for_status()
            headers = {
                "Authorization": f"Bearer {login.json()['access_token']}",
                "X-Tenant-ID": tenant_id,
            }
            cycles = {name: itertools.cycle(urls) for name, urls in DASHBOARDS.items()}
            samples: dict[str, list[float]] = {name: [] for name in DASHBOARDS}
            for round_ in range(iterations + 2):  # two warm-up rounds
                for name in DASHBOARDS:
                    url = next(cycles[name])
                    timings = await asyncio.gather(
                        *(_timed(client, url, headers) for _ in range(concurrency))
                    )
                    if round_ >= 2:
                        samples[name].extend(timings)
            writes = await _model_changes(client, headers, apply=apply)
            if asset_change:
                writes += await _asset_changes(client, headers)
    return samples, writes


async def _model_changes(
    client: httpx.AsyncClient, headers: dict[str, str], *, apply: bool
) -> list[tuple[str, float, Any]]:
    """Dry runs (new bands; new asset factors: every score recomputed), then the new bands
    applied and the default bands back. A change answered 202 is followed to its job's end:
    its wall time is the request's plus the job's."""
    model = (await client.get("/api/v1/risk-model", headers=headers)).json()
    body = {k: v for k, v in model.items() if k not in ("updated_at", "loss_appetite")}
    changed = copy.deepcopy(body)
    changed["bands"][2]["min_score"] = 12  # HIGH from 12 instead of 15
    factors = copy.deepcopy(body)
    factors["asset_factors"] = {**body["asset_factors"], "HIGH": 1.3, "CRITICAL": 1.6}
    found = []
    for label, payload, params in (
        ("PUT /risk-model?dry_run=true (bands)", changed, {"dry_run": "true"}),
        ("PUT /risk-model?dry_run=true (factors)", factors, {"dry_run": "true"}),
        ("PUT /risk-model (apply bands)", changed, {}),
        ("PUT /risk-model (default bands back)", None, {}),
    )[: 4 if apply else 2]:
        if payload is None:
            current = (await client.get("/api/v1/risk-model", headers=headers)).json()
            payload = {**body, "version": current["version"]}
        started = time.perf_counter()
        response = await client.put(
            "/api/v1/risk-model", json=payload, params=params, headers=headers
        )
        answered = time.perf_counter() - started
        remap = None
        if response.status_code == 202:
            status_url = response.json()["status_url"]
            while True:
                await asyncio.sleep(0.2)
                job = (await client.get(status_url, headers=headers)).json()
                if job["status"] in ("done", "failed"):
                    break
            if job["status"] == "failed":
                found.append((label, time.perf_counter() - started, f"job failed: {job['error']}"))
                continue
            label = f"{label}: 202 in {answered:.2f} s, then the job"
            remap = job["remapping"]
        elif response.status_code == 200:
            remap = response.json()["remapping"]
        else:
            found.append((label, answered, f"{response.status_code}: {response.text[:100]}"))
            continue
        elapsed = time.perf_counter() - started
        found.append(
            (label, elapsed, (remap["risks"], remap["rescored"], remap["severity_changed"]))
        )
    return found


async def _asset_changes(
    client: httpx.AsyncClient, headers: dict[str, str]
) -> list[tuple[str, float, Any]]:
    """A new criticality for the asset linked to the most risks, then the old one back: each
    re-scores every linked risk's four levels in the request."""
    listed = await client.get("/api/v1/assets", params={"page_size": 100}, headers=headers)
    listed.raise_for_status()
    asset = max(listed.json()["items"], key=lambda a: a["risk_count"])
    other = "LOW" if asset["criticality"] != "LOW" else "CRITICAL"
    found: list[tuple[str, float, Any]] = []
    for criticality in (other, asset["criticality"]):
        started = time.perf_counter()
        response = await client.patch(
            f"/api/v1/assets/{asset['id']}", json={"criticality": criticality}, headers=headers
        )
        elapsed = time.perf_counter() - started
        label = f"PATCH /assets/{{id}} criticality {criticality}"
        if response.status_code != 200:
            found.append((label, elapsed, f"{response.status_code}: {response.text[:100]}"))
            continue
        found.append((label, elapsed, f"{asset['risk_count']:,} linked risks re-scored"))
    return found


async def main(args: argparse.Namespace) -> int:
    settings = uncached_settings(
        args.database_url,
        db_statement_timeout_s=args.statement_timeout,
        # a large register's model change is a job: this process runs it
        jobs_in_process=True,
    )
    if args.reuse:
        await asyncio.to_thread(upgrade, args.database_url)
    else:
        await recreate_database(args.database_url)
        await asyncio.to_thread(upgrade, args.database_url)
        await seed(
            settings,
            risks=args.risks,
            noise_tenants=args.noise_tenants,
            noise_risks=args.noise_risks,
            password=PASSWORD,
        )
    tenant_id, email, live = await largest_tenant(settings)
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    console.print(f"measuring tenant {tenant_id} ({live:,} live risks); load average {load}")
    samples, writes = await measure(
        settings,
        tenant_id=str(tenant_id),
        email=email,
        iterations=args.iterations,
        apply=not args.dry_run_only,
        concurrency=args.concurrency,
        asset_change=args.asset_change,
    )
    table = Table(
        title=f"dashboards, {live:,} live risks, {args.iterations} rounds of "
        f"{args.concurrency} concurrent request(s) each"
    )
    for column in ("answer", "p50 ms", "p95 ms"):
        table.add_column(column, justify="right" if "ms" in column else "left")
    for name, values in samples.items():
        table.add_row(name, f"{statistics.median(values):.1f}", f"{_percentile(values, 0.95):.1f}")
    console.print(table)
    writes_table = Table(title="writes that re-score many risks")
    for column in ("request", "wall s", "risks / re-scored / changed band"):
        writes_table.add_column(column)
    for label, seconds, figures in writes:
        shown = figures if isinstance(figures, str) else " / ".join(f"{n:,}" for n in figures)
        writes_table.add_row(label, f"{seconds:.2f}", shown)
    console.print(writes_table)
    console.print(f"load average after: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    if args.drop:
        await drop_database(args.database_url)
    return 0


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--database-url",
        default="postgresql+asyncpg://postgres@127.0.0.1:5432/openrisk_method_bench",
    )
    parser.add_argument("--risks", type=int, default=100_000)
    parser.add_argument("--noise-tenants", type=int, default=0)
    parser.add_argument("--noise-risks", type=int, default=10_000)
    parser.add_argument("--iterations", type=int, default=30)
    parser.add_argument("--concurrency", type=int, default=1, help="requests at once")
    parser.add_argument("--reuse", action="store_true")
    parser.add_argument(
        "--asset-change",
        action="store_true",
        help="also time a new criticality of the most linked asset (and back)",
    )
    parser.add_argument("--dry-run-only", action="store_true", help="do not apply the change")
    parser.add_argument(
        "--statement-timeout", type=float, default=5.0, help="OPENRISK_DB_STATEMENT_TIMEOUT_S"
    )
    parser.add_argument("--drop", action="store_true")
    return parser.parse_args(argv)


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main(parse_args())))
