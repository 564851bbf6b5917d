"""Start-up refusals, readiness when the database is down, and pool exhaustion."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from openrisk.app import create_app
from openrisk.cli import app as cli
from openrisk.core.db.migrate import SchemaBehind, downgrade, upgrade
from openrisk.core.lifecycle import COLLECTOR_THRESHOLDS
from tests.conftest import client_for, make_settings, register


@pytest.fixture
def fresh_sqlite(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'fresh.db'}"


async def test_server_refuses_a_schema_behind_head(fresh_sqlite: str) -> None:
    app = create_app(make_settings(fresh_sqlite))
    with pytest.raises(SchemaBehind, match="openrisk db upgrade"):
        async with app.router.lifespan_context(app):
            pass


def test_serve_command_names_the_upgrade_command(
    fresh_sqlite: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENRISK_DATABASE_URL", fresh_sqlite)
    result = CliRunner().invoke(cli, ["serve", "--port", "8999"])
    assert result.exit_code == 1
    assert "openrisk db upgrade" in result.output


def test_migrations_go_down_and_up_again(fresh_sqlite: str) -> None:
    upgrade(fresh_sqlite)
    downgrade(fresh_sqlite, "base")
    upgrade(fresh_sqlite)


async def test_ready_is_503_naming_the_database_when_it_is_unreachable() -> None:
    settings = make_settings(
        "postgresql+asyncpg://postgres@127.0.0.1:1/unreachable",
        check_schema_on_start=False,
        pool_timeout_s=1,
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app), client_for(app) as http:
        ready = await http.get("/api/v1/health/ready")
        assert ready.status_code == 503
        body = ready.json()
        assert body["status"] == "down"
        assert body["checks"]["database"].startswith("down")
        # liveness does not depend on the database
        assert (await http.get("/api/v1/health")).status_code == 200
        # a request that needs the database is a clean 503, not a 500
        login = await http.post(
            "/api/v1/auth/login", json={"email": "a@example.com", "password": "whatever-123"}
        )
        assert login.status_code == 503
        assert login.headers["content-type"] == "application/problem+json"


async def test_a_started_server_keeps_its_start_up_objects_out_of_full_collections(
    sqlite_url: str,
) -> None:
    """A full collection walks only what requests made since: everything alive once the app
    has started (modules, routes, schemas) is frozen, as ``openrisk serve`` does by default,
    and collections come less often than CPython's defaults have them."""
    app = create_app(make_settings(sqlite_url, freeze_heap_on_start=True))
    gc.unfreeze()
    thresholds = gc.get_threshold()
    try:
        async with app.router.lifespan_context(app):
            frozen = gc.get_freeze_count()
            assert frozen > 50_000  # the application and its libraries
            assert gc.get_threshold() == COLLECTOR_THRESHOLDS != thresholds
            untouched = create_app(make_settings(sqlite_url))  # off: nothing more frozen
            async with untouched.router.lifespan_context(untouched):
                assert gc.get_freeze_count() <= frozen  # (some frozen objects were freed)
    finally:
        gc.unfreeze()
        gc.set_threshold(*thresholds)


@pytest.fixture
def one_connection_settings(database_url: str) -> Iterator[dict[str, object]]:
    yield {"pool_max_open": 1, "pool_max_idle": 1, "pool_timeout_s": 0.3}


async def test_request_gets_503_with_retry_after_when_the_pool_is_exhausted(
    database_url: str, one_connection_settings: dict[str, object]
) -> None:
    app = create_app(make_settings(database_url, **one_connection_settings))
    async with app.router.lifespan_context(app), client_for(app) as http:
        account = await register(http)
        async with app.state.db.engine.connect():  # hold the only connection
            response = await http.get("/api/v1/tenants", headers=account.headers)
        assert response.status_code == 503
        assert response.headers["retry-after"] == "1"
        assert response.headers["content-type"] == "application/problem+json"
        assert app.state.db.stats().timeouts >= 1
        # once the connection is back, requests succeed again
        assert (await http.get("/api/v1/tenants", headers=account.headers)).status_code == 200


@pytest.mark.parametrize("workers", [None, 2])
async def test_the_apps_connections_run_without_parallel_workers_unless_told(
    postgres_url: str, workers: int | None
) -> None:
    """A request's statements are short: PostgreSQL's parallel workers cost more to start than
    they save, so the app's connections plan without them unless the setting asks for some."""
    overrides = {} if workers is None else {"db_parallel_workers": workers}
    app = create_app(make_settings(postgres_url, **overrides))
    async with app.router.lifespan_context(app), app.state.db.engine.connect() as conn:
        shown = (await conn.execute(text("SHOW max_parallel_workers_per_gather"))).scalar_one()
    assert shown == str(workers or 0)
