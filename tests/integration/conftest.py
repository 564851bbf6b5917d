"""Fixtures of the integration tests that run real server processes."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from openrisk.core.db.migrate import upgrade
from tests.conftest import create_pg_database, drop_pg_database
from tests.core.cache.conftest import redis_cluster, redis_server_binary  # noqa: F401 (fixtures)
from tests.integration.live import QUIET_LIMITS, server_dir
from tests.integration.server_process import Server, migrated_sqlite, running_server
from tests.services import need, redis_available


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def race_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    """A real two-worker server on a freshly migrated database of each kind, shared by the race
    modules (one test worker runs them all: ``SHARED_SETUP`` in ``tests/conftest.py``), as each
    start costs several seconds of CPU. Every race signs up its own users and tenants."""
    need(redis_available(), "Redis at 127.0.0.1:6379")
    directory = server_dir(tmp_path_factory)
    if request.param == "sqlite":
        url = migrated_sqlite(directory)
    else:
        url = create_pg_database()
        upgrade(url)
    try:
        with running_server(directory, url, workers=2, env=QUIET_LIMITS) as server:
            yield server
    finally:
        if request.param == "postgresql":
            drop_pg_database(url)


@pytest.fixture(scope="module")
def live_postgres() -> Iterator[str]:
    """A freshly migrated PostgreSQL database, for servers whose behaviour under test does not
    depend on the kind of database (login throttling, session revocation across hosts): each
    server start costs seconds, so these run on the production database only."""
    need(redis_available(), "Redis at 127.0.0.1:6379")
    url = create_pg_database()
    upgrade(url)
    yield url
    drop_pg_database(url)
