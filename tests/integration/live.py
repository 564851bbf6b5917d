"""A real ``openrisk serve`` (two workers, shared Redis) on each database, for race and
multi-host tests: requests really run at the same time, in separate processes."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import Awaitable
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.conftest import TEST_PASSWORD

API = "/api/v1"
SHARED_REDIS = "redis://127.0.0.1:6379/13"
# Login throttling and the general rate limit stay out of the way of the races measured here.
QUIET_LIMITS = {
    "OPENRISK_CACHE_BACKEND": "redis",
    "OPENRISK_REDIS_URL": SHARED_REDIS,
    "OPENRISK_LOGIN_LIMIT_ACCOUNT_IP": "1000/minute",
    "OPENRISK_LOGIN_LIMIT_IP": "1000/minute",
    "OPENRISK_RATE_LIMIT_PER_TOKEN": "",
    "OPENRISK_RATE_LIMIT_PER_IP": "",
    "OPENRISK_TENANT_CREATION_LIMIT": "1000/minute",
    "OPENRISK_SIGNUP_LIMIT_PER_IP": "1000/minute",
}


@dataclass
class User:
    email: str
    user_id: str
    tenant_id: str
    access_token: str
    refresh_token: str

    def headers(self, tenant_id: str | None = None) -> dict[str, str]:
        return {
            "Authorization": f"Bearer {self.access_token}",
            "X-Tenant-ID": tenant_id or self.tenant_id,
        }


def client(base_url: str) -> httpx.AsyncClient:
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    return httpx.AsyncClient(base_url=base_url, timeout=60, limits=limits, trust_env=False)


async def sign_up(http: httpx.AsyncClient, *, email: str | None = None) -> User:
    email = email or f"live-{uuid.uuid4().hex[:12]}@example.com"
    response = await http.post(
        f"{API}/auth/register",
        json={"email": email, "password": TEST_PASSWORD, "tenant_name": "Race Co"},
    )
    assert response.status_code == 201, response.text
    body = response.json()
    me = await http.get(
        f"{API}/auth/me", headers={"Authorization": f"Bearer {body['access_token']}"}
    )
    return User(
        email=email,
        user_id=body["user"]["id"],
        tenant_id=me.json()["memberships"][0]["tenant_id"],
        access_token=body["access_token"],
        refresh_token=body["refresh_token"],
    )


async def all_at_once(requests: list[Awaitable[httpx.Response]]) -> list[httpx.Response]:
    """Send every request concurrently (each on its own connection) and wait for all."""
    return list(await asyncio.gather(*requests))


def statuses(responses: list[httpx.Response]) -> Counter[int]:
    return Counter(r.status_code for r in responses)


def assert_no_server_error(responses: list[httpx.Response]) -> None:
    errors = [(r.status_code, r.text[:200]) for r in responses if r.status_code >= 500]
    assert not errors, errors


def server_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("server")
