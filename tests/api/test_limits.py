"""Login throttling per (account, address) and per address, the general API rate limit, and
who may create tenants, how often (in-process app, both databases)."""

from __future__ import annotations

import asyncio
import time
import types
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from typing import Any

import httpx
import limits.aio.storage.memory
import pytest
import pytest_asyncio
from fastapi import FastAPI

from openrisk.app import create_app
from openrisk.auth.models import User
from tests.conftest import TEST_PASSWORD, Account, client_for, make_settings, register

LOGIN = "/api/v1/auth/login"
TENANTS = "/api/v1/tenants"


@pytest_asyncio.fixture
async def make_app(database_url: str) -> AsyncIterator[Any]:
    """Apps with given settings, each with its own (memory) limiter state."""
    async with AsyncExitStack() as stack:

        async def build(**overrides: Any) -> FastAPI:
            app = create_app(make_settings(database_url, **overrides))
            await stack.enter_async_context(app.router.lifespan_context(app))
            return app

        yield build


async def test_forty_parallel_wrong_passwords_reach_the_check_only_five_times(
    client: httpx.AsyncClient, admin: Account
) -> None:
    guesses = [
        client.post(LOGIN, json={"email": admin.email, "password": f"guess-{i}-xxxx"})
        for i in range(40)
    ]
    outcome = Counter(r.status_code for r in await asyncio.gather(*guesses))
    assert outcome == {401: 5, 429: 35}


async def test_a_successful_login_clears_the_account_and_address_counter(
    client: httpx.AsyncClient, admin: Account
) -> None:
    for i in range(4):
        wrong = await client.post(LOGIN, json={"email": admin.email, "password": f"bad-{i}-xxxxx"})
        assert wrong.status_code == 401
    right = await client.post(LOGIN, json={"email": admin.email, "password": TEST_PASSWORD})
    assert right.status_code == 200
    for i in range(5):  # a fresh allowance, not one attempt left
        wrong = await client.post(LOGIN, json={"email": admin.email, "password": f"bad-{i}-yyyyy"})
        assert wrong.status_code == 401


async def test_general_rate_limit_answers_429_with_retry_after(
    make_app: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The general limit is a sliding-window counter: requests that straddle a minute boundary
    # weigh the earlier minute's by how much of it is left, so one more would pass. The limiter's
    # clock stands still here, so the count does not depend on when the test runs.
    now = time.time()
    monkeypatch.setattr(limits.aio.storage.memory, "time", types.SimpleNamespace(time=lambda: now))
    app = await make_app(rate_limit_per_token="5/minute", rate_limit_per_ip="3/minute")
    async with client_for(app) as http, client_for(app) as other:
        account = await register(http)  # 2 anonymous requests from this address: register, me
        answers = [
            (await http.get("/api/v1/risks", headers=account.headers)).status_code for _ in range(6)
        ]
        assert answers == [200] * 4 + [429] * 2  # GET /auth/me in register() used one
        refused = await http.get("/api/v1/risks", headers=account.headers)
        assert refused.headers["content-type"] == "application/problem+json"
        assert 0 < int(refused.headers["retry-after"]) <= 60
        # probes are never limited; another address has its own allowance
        assert (await http.get("/api/v1/health")).status_code == 200
        assert (await other.get("/api/v1/marketplace/connectors")).status_code == 401


async def test_rate_limit_is_off_by_default_in_development(app: FastAPI, admin: Account) -> None:
    assert app.state.settings.api_rate_limits == ("", "")
    async with client_for(app) as http:
        answers = {
            (await http.get("/api/v1/risks", headers=admin.headers)).status_code for _ in range(50)
        }
        assert answers == {200}


async def test_tenant_creation_is_for_superusers_when_sign_up_is_off(make_app: Any) -> None:
    app = await make_app(allow_signup=False)
    async with client_for(app) as http, app.state.db.session() as session:
        member, operator = await _two_users(app, http)
        user = await session.get(User, uuid.UUID(operator.user_id))
        assert user is not None
        user.is_superuser = True
        await session.commit()
        refused = await http.post(TENANTS, json={"name": "Mine"}, headers=member.headers)
        assert refused.status_code == 403
        created = await http.post(TENANTS, json={"name": "Ops"}, headers=operator.headers)
        assert created.status_code == 201


async def test_tenant_creation_by_anyone_is_rate_limited_per_user(make_app: Any) -> None:
    app = await make_app(tenant_creation="anyone", tenant_creation_limit="2/hour")
    async with client_for(app) as http:
        account = await register(http)
        statuses = [
            (await http.post(TENANTS, json={"name": f"T{i}"}, headers=account.headers)).status_code
            for i in range(3)
        ]
        assert statuses == [201, 201, 429]
        assert (await register(http)).user_id  # another user has an allowance of its own


async def test_sign_ups_are_rate_limited_per_address(make_app: Any) -> None:
    app = await make_app(signup_limit_per_ip="2/hour")
    async with client_for(app) as http:
        await register(http)
        await register(http)
        third = await http.post(
            "/api/v1/auth/register",
            json={"email": "third@example.com", "password": TEST_PASSWORD, "tenant_name": "X"},
        )
        assert third.status_code == 429 and int(third.headers["retry-after"]) > 0


async def _two_users(app: FastAPI, http: httpx.AsyncClient) -> tuple[Account, Account]:
    """Sign-up is off: users come from the CLI path (the service), then sign in."""
    from openrisk.auth.service import create_user

    accounts = []
    for _ in range(2):
        email = f"user-{uuid.uuid4().hex[:10]}@example.com"
        async with app.state.db.session() as session:
            await create_user(session, email=email, password=TEST_PASSWORD)
            await session.commit()
        login = (await http.post(LOGIN, json={"email": email, "password": TEST_PASSWORD})).json()
        accounts.append(
            Account(email, TEST_PASSWORD, login["user"]["id"], "", login["access_token"], "")
        )
    return accounts[0], accounts[1]
