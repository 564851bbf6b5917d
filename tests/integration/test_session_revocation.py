"""Access tokens end with their sign-in, on every host, on the next request.

Two server processes share the database and Redis, as two hosts behind a load balancer. A
logout or a refresh-token reuse through one ends the session's access tokens on the next
request served by the other, although the other answers warm requests without any database
read (its authorization cache holds "this session stands" under the shared generation).
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
import redis

from openrisk.core.cache.generations import GenerationStore
from openrisk.rbac.authz_cache import NAMESPACE as AUTHZ_NAMESPACE
from tests.integration.live import (
    API,
    QUIET_LIMITS,
    SHARED_REDIS,
    all_at_once,
    client,
    server_dir,
    sign_up,
    statuses,
)
from tests.integration.server_process import Server, metric_value, running_server

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.slow]
# no background database reads while queries are counted
QUIET = {
    **QUIET_LIMITS,
    "OPENRISK_POOL_HEALTH_INTERVAL_S": "3600",
    "OPENRISK_OUTBOX_INTERVAL_S": "300",  # the outbox relay's poll reads the database too
}


@pytest.fixture(scope="module")
def hosts(
    live_postgres: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Server, Server]]:
    directory = server_dir(tmp_path_factory)
    with (
        running_server(directory, live_postgres, env=QUIET) as first,
        running_server(directory, live_postgres, env=QUIET) as second,
    ):
        yield first, second


@pytest.fixture(scope="module")
def memory_workers(
    live_postgres: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    """One server of two worker processes, each with its own memory cache."""
    env = {**QUIET, "OPENRISK_CACHE_BACKEND": "memory"}
    with running_server(server_dir(tmp_path_factory), live_postgres, workers=2, env=env) as s:
        yield s


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def queries(http: httpx.AsyncClient) -> float:
    text = (await http.get("/metrics")).text
    return metric_value(text, "openrisk_db_queries_total") or 0.0


def _authz_generation() -> bytes | None:
    """The shared generation (other test runs on this Redis may bump it at any time)."""
    value = redis.Redis.from_url(SHARED_REDIS).get(GenerationStore.key(None, AUTHZ_NAMESPACE))
    return value if isinstance(value, bytes) else None


async def _warm_requests_read_nothing(http: httpx.AsyncClient, headers: dict[str, str]) -> bool:
    """Five warm requests cost no database statement, measured over a window in which nobody
    else bumped the shared generation (a bump is a legitimate reload)."""
    for _ in range(5):
        generation, before = _authz_generation(), await queries(http)
        for _ in range(5):
            assert (await http.get(f"{API}/permissions", headers=headers)).status_code == 200
        spent = await queries(http) - before
        if _authz_generation() == generation:
            return spent == 0
        await http.get(f"{API}/permissions", headers=headers)  # warm again after the bump
    raise AssertionError("the shared authorization generation never held still")


async def test_logout_on_one_host_ends_the_access_token_on_the_other(
    hosts: tuple[Server, Server],
) -> None:
    first, second = hosts
    async with client(first.base_url) as a, client(second.base_url) as b:
        user = await sign_up(a)
        for _ in range(2):  # the second request is warm on B
            assert (
                await b.get(f"{API}/permissions", headers=bearer(user.access_token))
            ).status_code == 200
        assert await _warm_requests_read_nothing(b, bearer(user.access_token))

        logout = await a.post(f"{API}/auth/logout", json={"refresh_token": user.refresh_token})
        assert logout.status_code == 204
        for http in (b, a):
            assert (
                await http.get(f"{API}/permissions", headers=bearer(user.access_token))
            ).status_code == 401
            assert (
                await http.get(f"{API}/auth/me", headers=bearer(user.access_token))
            ).status_code == 401
            assert (
                await http.get(f"{API}/risks", headers=bearer(user.access_token))
            ).status_code == 401


async def test_refresh_token_reuse_on_one_host_ends_every_access_token_of_the_session(
    hosts: tuple[Server, Server],
) -> None:
    first, second = hosts
    async with client(first.base_url) as a, client(second.base_url) as b:
        user = await sign_up(a)
        rotated = await a.post(f"{API}/auth/refresh", json={"refresh_token": user.refresh_token})
        assert rotated.status_code == 200
        new_access = rotated.json()["access_token"]
        for token in (user.access_token, new_access):  # rotation alone ends nothing
            assert (await b.get(f"{API}/risks", headers=bearer(token))).status_code == 200
            assert (await b.get(f"{API}/risks", headers=bearer(token))).status_code == 200

        reused = await b.post(f"{API}/auth/refresh", json={"refresh_token": user.refresh_token})
        assert reused.status_code == 401
        for http in (a, b):
            for token in (user.access_token, new_access):
                assert (await http.get(f"{API}/risks", headers=bearer(token))).status_code == 401


async def test_other_sessions_of_the_user_survive_a_logout(hosts: tuple[Server, Server]) -> None:
    first, second = hosts
    async with client(first.base_url) as a, client(second.base_url) as b:
        user = await sign_up(a)
        other = await a.post(
            f"{API}/auth/login", json={"email": user.email, "password": "correct-horse-battery"}
        )
        assert other.status_code == 200
        await a.post(f"{API}/auth/logout", json={"refresh_token": user.refresh_token})
        assert (await b.get(f"{API}/risks", headers=bearer(user.access_token))).status_code == 401
        assert (
            await b.get(f"{API}/risks", headers=bearer(other.json()["access_token"]))
        ).status_code == 200


async def test_with_the_memory_cache_several_workers_never_reuse_an_ended_session(
    memory_workers: Server,
) -> None:
    """Each worker's memory is its own: authorization is then read from the database."""
    async with client(memory_workers.base_url) as http:
        user = await sign_up(http)
        # new connections, many at once, so that both workers answer and cache what they can
        headers = {**bearer(user.access_token), "Connection": "close"}

        async def burst() -> dict[int, int]:
            requests = [http.get(f"{API}/risks", headers=headers) for _ in range(24)]
            return dict(statuses(await all_at_once(requests)))

        assert await burst() == {200: 24}
        await http.post(f"{API}/auth/logout", json={"refresh_token": user.refresh_token})
        assert await burst() == {401: 24}


async def test_with_the_memory_cache_several_workers_never_serve_a_stale_register(
    memory_workers: Server,
) -> None:
    """A write answered by one worker is seen by every request to the others at once: with
    per-worker memory no answer is cached at all (said at start-up)."""
    async with client(memory_workers.base_url) as http:
        user = await sign_up(http)
        headers = {**bearer(user.access_token), "Connection": "close"}

        async def totals() -> set[int]:
            requests = [http.get(f"{API}/risks", headers=headers) for _ in range(24)]
            return {r.json()["total"] for r in await all_at_once(requests)}

        assert await totals() == {0}  # both workers answered (and would have cached)
        created = await http.post(
            f"{API}/risks",
            json={"title": "Seen by all", "impact": 2, "probability": 2},
            headers=headers,
        )
        assert created.status_code == 201, created.text
        assert await totals() == {1}
