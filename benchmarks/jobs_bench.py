"""The job engine's costs: ``python -m benchmarks.jobs_bench [--patches 300] [--events 2000]``.

A PostgreSQL database of its own is created and migrated; one ``openrisk serve`` (one process,
jobs not run in process: PostgreSQL's default) and a receiver on loopback (a threaded HTTP
server answering 204). Two tenants, each with one risk: one has no webhook app, the other one
webhook app to the receiver.

* **Enqueue cost on the write path**: ``--patches`` ``PATCH /risks/{id}`` for each tenant,
  alternated (the same load for both), with no worker running; the difference of the p50/p95
  latencies is what writing the outbox event (and, after the answer, the relay's
  transaction turning it into a delivery job) adds to a write.
* **Drain throughput**: ``--events`` more events (one import), then ``openrisk worker
  --concurrency C`` started; events delivered per second from the worker's start until the
  receiver has every delivery (worker start-up included, and shown apart).

Prints a Markdown table (and the machine: CPUs, load average) for docs/performance.md.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx

from benchmarks.scale import recreate
from openrisk.core.db.migrate import upgrade
from openrisk.perf.server import openrisk_command, running_server, server_env

API = "/api/v1"
PASSWORD = "bench-password-123"


class Receiver:
    def __init__(self) -> None:
        self.seen: set[str] = set()
        self.first_at: float | None = None
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with receiver.lock:
                    receiver.seen.add(self.headers.get("X-OpenRisk-Delivery", ""))
                self.send_response(204)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def count(self) -> int:
        with self.lock:
            return len(self.seen)


def _tenant(http: httpx.Client, name: str) -> tuple[dict[str, str], str]:
    email = f"bench-{name.lower()}-{os.getpid()}@example.com"
    signed = http.post(
        f"{API}/auth/register",
        json={"email": email, "password": PASSWORD, "full_name": name, "tenant_name": name},
    )
    signed.raise_for_status()
    headers = {"Authorization": f"Bearer {signed.json()['access_token']}"}
    risk = http.post(
        f"{API}/risks",
        json={"title": f"{name} risk", "impact": 3, "probability": 3},
        headers=headers,
    )
    risk.raise_for_status()
    return headers, risk.json()["id"]


def _percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument(
        "--database-url", default="postgresql+asyncpg://postgres@127.0.0.1:5432/openrisk_jobs_bench"
    )
    parser.add_argument("--patches", type=int, default=300)
    parser.add_argument("--events", type=int, default=2_000)
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--output", type=Path, default=Path("reports"))
    options = parser.parse_args()

    asyncio.run(recreate(options.database_url))
    upgrade(options.database_url)
    receiver = Receiver()
    env = {
        "OPENRISK_DATABASE_URL": options.database_url,
        "OPENRISK_CACHE_BACKEND": "memory",
        "OPENRISK_LOG_LEVEL": "WARNING",
        "OPENRISK_WEBHOOK_ALLOW_PRIVATE": "true",
        "OPENRISK_RATE_LIMIT_PER_TOKEN": "",
        "OPENRISK_RATE_LIMIT_PER_IP": "",
        "OPENRISK_SIGNUP_LIMIT_PER_IP": "1000/minute",
    }
    log = options.output / "jobs-bench-server.log"
    latencies: dict[str, list[float]] = {"without": [], "with": []}
    with running_server(env=env, workers=1, log=log) as server:
        with httpx.Client(base_url=server.base_url, timeout=60, trust_env=False) as http:
            plain, plain_risk = _tenant(http, "Plain")
            hooked, hooked_risk = _tenant(http, "Hooked")
            installed = http.post(
                f"{API}/marketplace/apps",
                json={
                    "connector_id": "webhook",
                    "configuration": {"url": receiver.url, "secret": "bench-shared-secret-42"},
                },
                headers=hooked,
            )
            installed.raise_for_status()
            for n in range(options.patches + 20):  # the first 20 of each warm up
                for label, headers, risk in (
                    ("without", plain, plain_risk),
                    ("with", hooked, hooked_risk),
                ):
                    started = time.perf_counter()
                    answer = http.patch(
                        f"{API}/risks/{risk}", json={"impact": 1 + n % 5}, headers=headers
                    )
                    elapsed = (time.perf_counter() - started) * 1000
                    answer.raise_for_status()
                    if n >= 20:
                        latencies[label].append(elapsed)
            rows = "\n".join(
                ["title,impact,probability", *(f"Bulk {n},2,2" for n in range(options.events))]
            )
            imported = http.post(
                f"{API}/risks/import",
                files={"file": ("bulk.csv", rows.encode(), "text/csv")},
                headers=hooked,
                timeout=300,
            )
            imported.raise_for_status()
        expected = options.patches + 20 + options.events  # the hooked tenant's patches, import
        worker_log = options.output / "jobs-bench-worker.log"
        with worker_log.open("wb") as out:
            started = time.perf_counter()
            worker = subprocess.Popen(
                [*openrisk_command(), "worker", "--concurrency", str(options.concurrency)],
                env=server_env(env),
                stdout=out,
                stderr=subprocess.STDOUT,
            )
            try:
                while receiver.count() == 0:
                    time.sleep(0.01)
                first = time.perf_counter()
                while receiver.count() < expected:
                    if time.perf_counter() - started > 600:
                        raise SystemExit(f"only {receiver.count()} of {expected} delivered")
                    time.sleep(0.05)
                done = time.perf_counter()
            finally:
                worker.terminate()
                worker.wait(timeout=30)
    load = os.getloadavg()
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
        f"load average {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f}; "
        f"python {sys.version.split()[0]}"
    )
    print()
    print("| PATCH /risks/{id} | p50 ms | p95 ms |")
    print("|---|---:|---:|")
    for label in ("without", "with"):
        p50, p95 = _percentile(latencies[label], 50), _percentile(latencies[label], 95)
        print(f"| {label} a webhook app | {p50:.1f} | {p95:.1f} |")
    added50 = _percentile(latencies["with"], 50) - _percentile(latencies["without"], 50)
    added95 = _percentile(latencies["with"], 95) - _percentile(latencies["without"], 95)
    print(f"| added by the enqueue | {added50:+.1f} | {added95:+.1f} |")
    print()
    print(
        f"drain: {expected} deliveries by one worker (--concurrency {options.concurrency}): "
        f"{expected / (done - first):.0f} events/s from the first delivery "
        f"({done - first:.1f} s), {expected / (done - started):.0f} events/s counting the "
        f"worker's start-up ({first - started:.1f} s)"
    )


if __name__ == "__main__":
    main()
