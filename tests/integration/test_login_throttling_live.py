"""Login throttling against a real server: atomic across workers (counters in Redis), and the
client address taken from X-Forwarded-For only when the peer is a trusted proxy."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from tests.integration.live import (
    API,
    QUIET_LIMITS,
    all_at_once,
    client,
    server_dir,
    sign_up,
    statuses,
)
from tests.integration.server_process import Server, running_server

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.slow]
LOGIN = f"{API}/auth/login"
TRIALS = 3


@pytest.fixture(scope="module")
def two_workers(live_postgres: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    env = {**QUIET_LIMITS, "OPENRISK_LOGIN_LIMIT_ACCOUNT_IP": "5/minute;20/hour"}
    with running_server(server_dir(tmp_path_factory), live_postgres, workers=2, env=env) as s:
        yield s


async def test_forty_parallel_wrong_passwords_reach_the_password_check_five_times(
    two_workers: Server,
) -> None:
    async with client(two_workers.base_url) as http:
        for trial in range(TRIALS):
            user = await sign_up(http)
            guesses = [
                http.post(LOGIN, json={"email": user.email, "password": f"wrong-{i}-xxxx"})
                for i in range(40)
            ]
            outcome = statuses(await all_at_once(guesses))
            print(f"[race] login throttle trial {trial}: {dict(outcome)}")
            assert outcome == {401: 5, 429: 35}, outcome


def _failing_logins_with_spoofed_addresses(server: Server, count: int) -> list[int]:
    import httpx

    results = []
    with httpx.Client(base_url=server.base_url, trust_env=False, timeout=30) as http:
        for i in range(count):
            response = http.post(
                LOGIN,
                json={"email": f"nobody-{uuid.uuid4().hex[:8]}@example.com", "password": "x" * 12},
                headers={"X-Forwarded-For": f"203.0.113.{i + 1}"},
            )
            results.append(response.status_code)
    return results


@pytest.mark.parametrize("trusted", ["", "127.0.0.1"])
def test_forwarded_for_is_believed_only_from_trusted_proxies(
    live_postgres: str, tmp_path_factory: pytest.TempPathFactory, trusted: str
) -> None:
    env = {
        "OPENRISK_LOGIN_LIMIT_IP": "4/minute",
        "OPENRISK_TRUSTED_PROXIES": trusted,
    }
    with running_server(server_dir(tmp_path_factory), live_postgres, env=env) as server:
        results = _failing_logins_with_spoofed_addresses(server, 6)
    if trusted:  # the proxy says these are six different clients
        assert results == [401] * 6
    else:  # a spoofed header changes nothing: one peer address, one allowance
        assert results == [401] * 4 + [429] * 2
