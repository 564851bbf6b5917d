"""Imports at database speed: ``python -m benchmarks.import_bench --rows 50000 --imports 9``.

A PostgreSQL database of its own is created and migrated, a role without BYPASSRLS (what
production connects as) is granted the tables, ``openrisk seed`` makes a small tenant, and one
``openrisk serve`` (one worker, response cache off) takes ``--imports`` imports of a CSV of
``--rows`` rows through ``POST /risks/import``, alternating new risks and updates of the risks
the previous import created (rows with their ``id``). For each import it prints the time, the
rows written and the server's resident memory after it and at its peak (sampled every 20 ms),
then the growth of the resident memory from the first import to the last.

Planner statistics: the app role may not ANALYZE tables it does not own, and autovacuum (which
would) may be off on a test server, as on the shared machine these numbers come from; so the
owner runs ANALYZE after the seed and after each import, as autovacuum would after a large
write (``--no-analyze`` to skip).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from pathlib import Path

import asyncpg
import httpx

from benchmarks.scale import (
    API,
    APP_ROLE,
    ScaleOptions,
    _admin,
    _dsn,
    _import_csv,
    _login,
    _peak_rss,
    _run_openrisk,
    _server_env,
    _with_user,
    grant_app_role,
    recreate,
    subject,
)
from openrisk.perf.server import running_server


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (all its threads), from /proc; 0 when unreadable."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _backend_cpu(url: str) -> float:
    """CPU time of the PostgreSQL backends connected to the benchmark's database (readable when
    PostgreSQL runs on this host and /proc shows its processes): what the database spent,
    whatever the load of the host did to the wall clock."""
    conn = await asyncpg.connect(_dsn(url))
    try:
        pids = await conn.fetch(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid()"
        )
    finally:
        await conn.close()
    return sum(_cpu_seconds(row["pid"]) for row in pids)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument(
        "--database-url", default="postgresql+asyncpg://postgres@127.0.0.1:5432/openrisk_import"
    )
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--imports", type=int, default=9)
    parser.add_argument("--no-analyze", dest="analyze", action="store_false")
    args = parser.parse_args()
    options = ScaleOptions(scales=[])
    url = args.database_url
    asyncio.run(recreate(url))
    _run_openrisk(options, ["db", "upgrade"], {"OPENRISK_DATABASE_URL": url})
    asyncio.run(grant_app_role(url))
    app_url = _with_user(url, APP_ROLE)
    env = _server_env(app_url)
    _run_openrisk(options, ["seed", "--risks", "200", "--tenants", "2"], env)
    who = asyncio.run(subject(url))

    def analyze() -> None:
        if args.analyze:
            asyncio.run(_admin(url, "ANALYZE"))

    analyze()
    print(f"PostgreSQL as {APP_ROLE} (NOBYPASSRLS), one worker, cache off; {args.rows:,} rows")
    print(
        f"{'import':<22} {'seconds':>8} {'rows':>7} {'status':>6} {'rss MB':>7} {'peak MB':>8}"
        f" {'app CPU s':>9} {'db CPU s':>8}"
    )
    with running_server(env=env, workers=1, log=Path("reports/import-bench-server.log")) as server:
        headers = _login(server.base_url, who.email)
        ids: list[str] = []
        after: list[float] = []
        for step in range(1, args.imports + 1):
            label = "updates" if ids and step % 2 == 0 else "new"
            content = _import_csv(
                args.rows, ids=ids if label == "updates" else (), stamp=f"s{step}"
            )
            app_cpu = _cpu_seconds(server.proc.pid)
            db_cpu = asyncio.run(_backend_cpu(url))
            with _peak_rss(server.proc.pid) as rss, httpx.Client(timeout=900) as client:
                started = time.perf_counter()
                response = client.post(
                    f"{server.base_url}{API}/risks/import",
                    files={"file": ("bench.csv", content, "text/csv")},
                    headers=headers,
                )
                seconds = time.perf_counter() - started
            app_cpu = _cpu_seconds(server.proc.pid) - app_cpu
            db_cpu = asyncio.run(_backend_cpu(url)) - db_cpu
            body = response.json() if response.status_code == 200 else {}
            if label == "new":
                ids = [str(i) for i in body.get("ids", [])]
            done = body.get("created", 0) + body.get("updated", 0)
            after.append(rss["after"])
            print(
                f"#{step} {label:<18} {seconds:>8.2f} {done:>7,} {response.status_code:>6} "
                f"{rss['after']:>7.1f} {rss['peak']:>8.1f} {app_cpu:>9.2f} {db_cpu:>8.2f}",
                flush=True,
            )
            if response.status_code != 200:
                print(response.text[:2000])
                break
            analyze()
        if after:
            print(f"resident memory: {after[0]:.1f} MB after #1, {after[-1]:.1f} MB after the last")


if __name__ == "__main__":
    main()
