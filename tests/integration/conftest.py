"""Fixtures of the integration tests that run real server processes."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from openrisk.core.db.migrate import upgrade
from tests.conftest import create_pg_database, drop_pg_database
from tests.core.cache.conftest import redis_cluster, redis_server_binary  # noqa: F401 (fixtures)
from tests.integration.server_process import migrated_sqlite
from tests.services import need, redis_available


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def live_database(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A freshly migrated database of each kind, for one module's server(s)."""
    need(redis_available(), "Redis at 127.0.0.1:6379")
    if request.param == "sqlite":
        yield migrated_sqlite(tmp_path_factory.mktemp("live"))
        return
    url = create_pg_database()
    upgrade(url)
    yield url
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
