"""The whole API against its OpenAPI document: ``schemathesis run --checks all`` as an Admin and
as a Viewer, on a real server (two workers) on PostgreSQL as a NOBYPASSRLS role, with Redis.

    .venv/bin/python scripts/schemathesis_full.py [--max-examples 100] [--keep]

Creates a throw-away database (through OPENRISK_ST_ADMIN_URL, default the local ``postgres``
superuser), migrates it as its owner, seeds the demo tenant as the app role, serves it, runs
schemathesis once per role (Viewer first: the Admin's run creates and deletes things) and prints
the requests made and the failures per check. Exits non-zero when a check failed.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx

BIN = Path(sys.executable).parent
ADMIN_URL = os.environ.get(
    "OPENRISK_ST_ADMIN_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
)
REDIS_URL = os.environ.get("OPENRISK_ST_REDIS_URL", "redis://127.0.0.1:6379/12")
APP_ROLE = "openrisk_st_app"
PASSWORD = "schemathesis-demo-pass"
ADMIN_EMAIL = "demo@openrisk.local"
VIEWER_EMAIL = "dan.okafor@demo.openrisk.local"


async def _sql(url: str, sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def _database() -> tuple[str, str]:
    """A fresh database: (owner URL, app-role URL)."""
    name = f"openrisk_st_{uuid.uuid4().hex[:10]}"
    asyncio.run(_sql(ADMIN_URL, f'CREATE DATABASE "{name}"'))
    owner = ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    _openrisk(["db", "upgrade"], owner)
    asyncio.run(
        _sql(
            ADMIN_URL,
            f"""DO $$ BEGIN
                  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{APP_ROLE}') THEN
                    CREATE ROLE {APP_ROLE} LOGIN NOSUPERUSER NOBYPASSRLS;
                  END IF;
                END $$;
                GRANT CONNECT ON DATABASE "{name}" TO {APP_ROLE};""",
        )
    )
    asyncio.run(
        _sql(
            owner,
            f"GRANT USAGE ON SCHEMA public TO {APP_ROLE};"
            f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {APP_ROLE};"
            f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {APP_ROLE};",
        )
    )
    app = owner.replace("://postgres@", f"://{APP_ROLE}@")
    return owner, app


def _env(database_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENRISK_")}
    env.update(
        OPENRISK_DATABASE_URL=database_url,
        OPENRISK_CACHE_BACKEND="redis",
        OPENRISK_REDIS_URL=REDIS_URL,
        OPENRISK_LOG_LEVEL="WARNING",
        OPENRISK_DEMO_PASSWORD=PASSWORD,
        OPENRISK_ACCESS_TOKEN_MINUTES="600",
        OPENRISK_LOGIN_LIMIT_ACCOUNT_IP="100000/minute",
        OPENRISK_LOGIN_LIMIT_IP="100000/minute",
        OPENRISK_SIGNUP_LIMIT_PER_IP="100000/minute",
        OPENRISK_TENANT_CREATION_LIMIT="100000/minute",
    )
    return env


def _openrisk(args: list[str], database_url: str) -> None:
    done = subprocess.run(
        [str(BIN / "openrisk"), *args], env=_env(database_url), capture_output=True, text=True
    )
    if done.returncode != 0:
        raise SystemExit(f"openrisk {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _serve(database_url: str, log: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    server = subprocess.Popen(
        [str(BIN / "openrisk"), "serve", "--port", str(port), "--workers", "2"],
        env=_env(database_url),
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/api/v1/health/ready", timeout=2).status_code == 200:
                return server, base
        except httpx.HTTPError:
            pass
        if server.poll() is not None:
            break
        time.sleep(0.3)
    server.terminate()
    raise SystemExit(f"the server did not start:\n{log.read_text()[-3000:]}")


def _headers(base: str, email: str) -> list[str]:
    tokens = httpx.post(
        f"{base}/api/v1/auth/login", json={"email": email, "password": PASSWORD}, timeout=30
    )
    tokens.raise_for_status()
    bearer = tokens.json()["access_token"]
    me = httpx.get(
        f"{base}/api/v1/auth/me", headers={"Authorization": f"Bearer {bearer}"}, timeout=30
    ).json()
    tenant = next(m["tenant_id"] for m in me["memberships"] if m["tenant_slug"] == "demo")
    return ["-H", f"Authorization: Bearer {bearer}", "-H", f"X-Tenant-ID: {tenant}"]


def _summary(output: str) -> tuple[int, dict[str, int]]:
    """(test cases generated, failures per kind) from schemathesis' printed summary."""
    cases = re.search(r"^\s*(\d+) generated", output, re.M)
    failures: dict[str, int] = {}
    block = re.search(r"^Failures:\n(.*?)(?:\n\n|\Z)", output, re.M | re.S)
    for line in block.group(1).splitlines() if block else []:
        found = re.match(r"\s*\S+\s+(ST\d+ .*?): (\d+)$", line)
        if found:
            failures[found.group(1)] = int(found.group(2))
    return (int(cases.group(1)) if cases else 0), failures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--max-examples", type=int, default=100)
    parser.add_argument("--workers", default="2")
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--keep", action="store_true", help="keep the reports and database")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="openrisk-schemathesis-"))
    owner, app = _database()
    _openrisk(["seed"], app)
    from openrisk.core.security import hash_password

    # the demo team cannot sign in; the Viewer gets the demo password for this run
    hashed = hash_password(PASSWORD).replace("'", "''")
    asyncio.run(
        _sql(owner, f"UPDATE users SET password_hash = '{hashed}' WHERE email = '{VIEWER_EMAIL}'")
    )
    server, base = _serve(app, work / "server.log")
    total_requests, exit_code = 0, 0
    try:
        for role, email in (("viewer", VIEWER_EMAIL), ("admin", ADMIN_EMAIL)):
            reports = work / role
            command = [
                str(BIN / "schemathesis"),
                "--config-file",
                str(Path(__file__).with_name("schemathesis.toml")),
                "--no-color",
                "run",
                f"{base}/openapi.json",
                "--checks",
                "all",
                "--max-examples",
                str(args.max_examples),
                "--workers",
                args.workers,
                "--seed",
                str(args.seed),
                "--report",
                "ndjson",
                "--report-dir",
                str(reports),
                "--suppress-health-check",
                "all",
                "--request-timeout",
                "30",
                *_headers(base, email),
            ]
            started = time.monotonic()
            # its crash cache goes to the run's directory, not the checkout
            done = subprocess.run(command, capture_output=True, text=True, cwd=work)
            (work / f"{role}.txt").write_text(done.stdout + done.stderr)
            requests, failures = _summary(done.stdout)
            total_requests += requests
            exit_code = exit_code or done.returncode
            print(
                f"{role}: {requests} test cases (requests) in {time.monotonic() - started:.0f} s, "
                f"schemathesis exit {done.returncode}"
            )
            for name in sorted(failures):
                print(f"  {name}: {failures[name]} failing case(s)")
            if not failures:
                print("  every check passed")
        print(f"total: {total_requests} requests; output in {work}")
    finally:
        server.terminate()
        server.wait(timeout=30)
        if not args.keep:
            name = owner.rsplit("/", 1)[1]
            asyncio.run(_sql(ADMIN_URL, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            shutil.rmtree(work / "viewer", ignore_errors=True)
            shutil.rmtree(work / "admin", ignore_errors=True)
    return exit_code


if __name__ == "__main__":
    raise SystemExit(main())
