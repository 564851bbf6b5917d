"""Shared fixtures: the API suite runs once on SQLite and once on PostgreSQL."""

from __future__ import annotations

import asyncio
import gc
import itertools
import uuid
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from argon2 import PasswordHasher
from fastapi import FastAPI

from openrisk import tasks as registry
from openrisk.app import create_app
from openrisk.config import Settings
from openrisk.core import security
from openrisk.core.db.migrate import upgrade
from openrisk.core.events import DomainEvent
from openrisk.core.jobs import JobSpec
from tests.scheduling import GroupScheduling
from tests.services import PG_ADMIN_URL, need, postgres_available

# Most tests sign someone up: at the production cost (19 MiB, 2 passes) argon2 would be a large
# share of the suite's CPU. In-process apps hash with the cheapest argon2id parameters instead;
# hashes are made and verified the same way. Servers started as subprocesses keep the real cost.
security._hasher = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
security._DUMMY_HASH = security._hasher.hash(uuid.uuid4().hex)

# Tests that share an expensive set-up (real server processes, a browser), by the path their
# ids start with: a test worker (pytest-xdist) runs each group whole, so the set-up happens once
# instead of once per worker that happens to get one of its tests. Groups go out first, the
# largest first; every other test is handed out on its own, to whichever worker is free.
SHARED_SETUP = {
    "tests/e2e/": "the browser and its server",
    "tests/integration/test_races.py": "the two-worker race servers",
    "tests/integration/test_quantification_races.py": "the two-worker race servers",
    "tests/integration/test_session_revocation.py": "session revocation's servers",
    "tests/integration/test_login_throttling_live.py": "login throttling's server",
    "tests/api/test_openapi_contract.py": "the contract test's server",
}


def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """Hand out tests one at a time, except the groups of ``SHARED_SETUP``."""
    return GroupScheduling(config, log, groups=SHARED_SETUP)


# A test worker's heap only grows (imported modules, SQLAlchemy's and Pydantic's caches,
# session fixtures): past a million objects each full garbage collection took ~0.6 s, about a
# seventh of a worker's CPU. Every FREEZE_EVERY tests the survivors are collected once, then
# frozen out of later collections, so those walk only what the latest tests left behind.
FREEZE_EVERY = 50
_finished_tests = itertools.count(1)


def pytest_runtest_logfinish(nodeid: str, location: tuple[str, int | None, str]) -> None:
    if next(_finished_tests) % FREEZE_EVERY == 0:
        gc.collect()
        gc.freeze()


TEST_PASSWORD = "correct-horse-battery"
_ip_counter = itertools.count(1)


async def _pg_admin(sql: str) -> None:
    import asyncpg

    dsn = PG_ADMIN_URL.replace("postgresql+asyncpg://", "postgresql://")
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def create_pg_database() -> str:
    """Create an empty ``openrisk_test_<random>`` database and return its async URL."""
    need(postgres_available(), "PostgreSQL at 127.0.0.1:5432")
    name = f"openrisk_test_{uuid.uuid4().hex[:12]}"
    asyncio.run(_pg_admin(f'CREATE DATABASE "{name}"'))
    return PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"


def drop_pg_database(url: str) -> None:
    name = url.rsplit("/", 1)[1]
    asyncio.run(_pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="session")
def sqlite_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    path: Path = tmp_path_factory.mktemp("db") / "openrisk-test.db"
    url = f"sqlite+aiosqlite:///{path}"
    upgrade(url)
    return url


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    url = create_pg_database()
    upgrade(url)
    yield url
    drop_pg_database(url)


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest) -> str:
    """Every test that uses the API runs on both databases."""
    fixture = "sqlite_url" if request.param == "sqlite" else "postgres_url"
    return str(request.getfixturevalue(fixture))


def make_settings(database_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": database_url,
        "cache_backend": "memory",
        "log_level": "WARNING",
        "pool_health_interval_s": 30,
        # many tests sign up and create tenants from one client address
        "signup_limit_per_ip": "10000/minute",
        "tenant_creation_limit": "10000/minute",
        # The outbox relay also polls for rows left by other processes: a poll landing inside
        # a test's measured window would add its statements to the query counts. Commits
        # still wake the relay at once; tests call the sweeper themselves.
        "outbox_interval_s": 300,
        # The periodic scans (scheduled syncs, reminders) of an in-process worker would race the
        # tests that call them with their own clock: once a year, out of every test's way.
        "sync_tick_cron": "0 0 1 1 *",
        "reminders_cron": "0 0 1 1 *",
        # a test process starts hundreds of apps: no collection per start, no frozen cycles
        "freeze_heap_on_start": False,
    }
    values.update(overrides)
    return Settings(**values)


@pytest_asyncio.fixture(scope="session")
async def app(database_url: str) -> AsyncIterator[FastAPI]:
    application = create_app(make_settings(database_url))
    async with application.router.lifespan_context(application):
        yield application


def client_for(app: FastAPI, *, ip: str | None = None) -> httpx.AsyncClient:
    """A client with its own source address, so login throttling never leaks between tests."""
    n = next(_ip_counter)
    address = ip or f"10.{(n >> 16) & 255}.{(n >> 8) & 255}.{n & 255}"
    transport = httpx.ASGITransport(app=app, client=(address, 40000))
    return httpx.AsyncClient(transport=transport, base_url="http://testserver")


@pytest_asyncio.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(app) as http:
        yield http


@dataclass
class Account:
    """A registered user, with the tenant it administers and its bearer headers."""

    email: str
    password: str
    user_id: str
    tenant_id: str
    access_token: str
    refresh_token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.access_token}"}

    def in_tenant(self, tenant_id: str | None = None) -> dict[str, str]:
        return {**self.headers, "X-Tenant-ID": tenant_id or self.tenant_id}


async def register(http: httpx.AsyncClient, *, tenant_name: str = "Acme") -> Account:
    email = f"user-{uuid.uuid4().hex[:10]}@example.com"
    response = await http.post(
        "/api/v1/auth/register",
        json={
            "email": email,
            "password": TEST_PASSWORD,
            "full_name": "Test User",
            "tenant_name": tenant_name,
        },
    )
    assert response.status_code == 201, response.text
    body = response.json()
    me = await http.get(
        "/api/v1/auth/me", headers={"Authorization": f"Bearer {body['access_token']}"}
    )
    tenant_id = me.json()["memberships"][0]["tenant_id"]
    return Account(
        email=email,
        password=TEST_PASSWORD,
        user_id=body["user"]["id"],
        tenant_id=tenant_id,
        access_token=body["access_token"],
        refresh_token=body["refresh_token"],
    )


@pytest_asyncio.fixture
async def admin(client: httpx.AsyncClient) -> Account:
    """A fresh user who is Admin of a fresh tenant."""
    return await register(client)


def collect_relayed(prefix: str, monkeypatch: pytest.MonkeyPatch) -> list[DomainEvent]:
    """The events the relay hands to the routes of ``prefix`` (which then defer no job)."""
    seen: list[DomainEvent] = []

    async def collect(session: object, events: Sequence[DomainEvent]) -> list[JobSpec]:
        seen.extend(events)
        return []

    monkeypatch.setattr(registry, "EVENT_ROUTES", [(prefix, collect)])
    return seen
