"""A PostgreSQL that stops answering costs a request seconds, and the pool recovers after.

A TCP proxy in front of the real server stops forwarding bytes without closing anything (a
"black hole": a frozen host, a dropped route). A real ``openrisk serve`` process behind it must
answer every request that needs the database 503 with ``Retry-After`` within a few seconds, even
ten at once, and serve normally again once the database answers.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from openrisk.app import create_app
from openrisk.core.db.migrate import upgrade
from openrisk.core.deps import SessionDep
from tests.conftest import (
    TEST_PASSWORD,
    client_for,
    create_pg_database,
    drop_pg_database,
    make_settings,
)
from tests.integration.server_process import running_server, wait_until

STATEMENT_TIMEOUT_S = 1.0
CONNECT_TIMEOUT_S = 1.0
POOL_TIMEOUT_S = 2.0
# the slowest a request may take: waiting for a pooled connection, then one statement that
# the client gives up on (statement timeout + 1 s), with room for a busy CI host
ANSWER_WITHIN_S = POOL_TIMEOUT_S + STATEMENT_TIMEOUT_S + 1 + 3
PARALLEL = 10


class BlackHoleProxy:
    """Forwards TCP to PostgreSQL; ``black_hole()`` stops every byte, ``restore()`` resumes."""

    def __init__(self, upstream: tuple[str, int] = ("127.0.0.1", 5432)) -> None:
        self.upstream = upstream
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.port = 0

    def __enter__(self) -> BlackHoleProxy:
        self.thread.start()
        self.port = asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(10)
        return self

    def __exit__(self, *exc: object) -> None:
        self.restore()
        asyncio.run_coroutine_threadsafe(self._stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)

    def black_hole(self) -> None:
        self.loop.call_soon_threadsafe(self.flowing.clear)

    def restore(self) -> None:
        self.loop.call_soon_threadsafe(self.flowing.set)

    async def _start(self) -> int:
        self.flowing = asyncio.Event()
        self.flowing.set()
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        return int(self.server.sockets[0].getsockname()[1])

    async def _stop(self) -> None:
        self.server.close()
        for task in asyncio.all_tasks():
            if task is not asyncio.current_task():
                task.cancel()

    async def _handle(self, client: asyncio.StreamReader, to_client: asyncio.StreamWriter) -> None:
        await self.flowing.wait()  # a connection opened in the black hole never gets through
        try:
            server, to_server = await asyncio.open_connection(*self.upstream)
        except OSError:
            to_client.close()
            return
        await asyncio.gather(self._pump(client, to_server), self._pump(server, to_client))

    async def _pump(self, source: asyncio.StreamReader, target: asyncio.StreamWriter) -> None:
        try:
            while data := await source.read(65536):
                await self.flowing.wait()  # held, neither delivered nor refused
                target.write(data)
                await target.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            target.close()


@pytest.fixture
def proxied_database() -> Iterator[tuple[BlackHoleProxy, str]]:
    url = create_pg_database()
    upgrade(url)
    try:
        with BlackHoleProxy() as proxy:
            yield proxy, url.replace("@127.0.0.1:5432/", f"@127.0.0.1:{proxy.port}/")
    finally:
        drop_pg_database(url)


def _create_risk(http: httpx.Client, headers: dict[str, str], n: int) -> tuple[int, Any, float]:
    started = time.monotonic()
    try:
        response = http.post(
            "/api/v1/risks",
            json={"title": f"Risk {n}", "impact": 3, "probability": 2},
            headers=headers,
        )
    except httpx.TimeoutException:
        return 0, {}, time.monotonic() - started
    return response.status_code, response.headers, time.monotonic() - started


def test_black_holed_database_gives_503_within_seconds_and_the_pool_recovers(
    tmp_path: Path, proxied_database: tuple[BlackHoleProxy, str]
) -> None:
    proxy, url = proxied_database
    env = {
        "OPENRISK_DB_STATEMENT_TIMEOUT_S": str(STATEMENT_TIMEOUT_S),
        "OPENRISK_DB_CONNECT_TIMEOUT_S": str(CONNECT_TIMEOUT_S),
        "OPENRISK_POOL_TIMEOUT_S": str(POOL_TIMEOUT_S),
        "OPENRISK_POOL_MAX_OPEN": "4",
    }
    with (
        running_server(tmp_path, url, env=env) as server,
        httpx.Client(base_url=server.base_url, timeout=30, trust_env=False) as http,
    ):
        registered = http.post(
            "/api/v1/auth/register",
            json={"email": "hole@example.com", "password": TEST_PASSWORD, "tenant_name": "Hole"},
        )
        assert registered.status_code == 201, registered.text
        headers = {"Authorization": f"Bearer {registered.json()['access_token']}"}
        assert _create_risk(http, headers, 0)[0] == 201

        proxy.black_hole()
        with ThreadPoolExecutor(PARALLEL) as pool:
            answers = list(pool.map(lambda n: _create_risk(http, headers, n), range(PARALLEL)))
        for status, answer_headers, elapsed in answers:
            assert status == 503, (status, elapsed)
            assert answer_headers["content-type"] == "application/problem+json"
            assert int(answer_headers["retry-after"]) >= 1
            assert elapsed < ANSWER_WITHIN_S, elapsed

        proxy.restore()

        def serves_again() -> bool:
            return _create_risk(http, headers, 100)[0] == 201

        wait_until(serves_again, timeout=15, what="the API to serve again after the black hole")
        with ThreadPoolExecutor(PARALLEL) as pool:
            again = list(pool.map(lambda n: _create_risk(http, headers, n), range(PARALLEL)))
        assert [status for status, _, _ in again] == [201] * PARALLEL


async def test_a_slow_statement_is_cancelled_by_the_server_and_answered_503(
    postgres_url: str,
) -> None:
    app = create_app(make_settings(postgres_url, db_statement_timeout_s=0.5))

    @app.get("/api/v1/test-probe/slow")
    async def slow(session: SessionDep) -> dict[str, str]:
        await session.execute(text("SELECT pg_sleep(60)"))
        return {}

    async with app.router.lifespan_context(app), client_for(app) as http:
        started = time.monotonic()
        response = await http.get("/api/v1/test-probe/slow")
        assert response.status_code == 503, response.text
        assert response.headers["content-type"] == "application/problem+json"
        assert "retry-after" in response.headers
        # far sooner than the minute the statement asked for, even on a loaded machine
        assert time.monotonic() - started < 20
        # cancelled by the server, the connection itself is fine and goes on serving
        async with app.state.db.engine.connect() as conn:
            assert (await conn.execute(text("SELECT 1"))).scalar() == 1
        assert app.state.db.stats().in_use == 0
