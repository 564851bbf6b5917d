"""The hot-path changes of the performance work (docs/performance.md, "Profiling notes") keep
their semantics: verified-token cache, router order, sessions closed only when used."""

from __future__ import annotations

import itertools
import re
import uuid
from datetime import timedelta

import pytest
from fastapi.routing import APIRoute
from starlette.routing import Match

from openrisk.app import API_ROUTERS
from openrisk.core import security
from openrisk.core.security import InvalidToken, TokenCodec

SECRET = "a-test-secret-that-is-long-enough-for-hs256"


def codec(ttl: timedelta = timedelta(minutes=5)) -> TokenCodec:
    return TokenCodec(secret=SECRET, algorithm="HS256", access_ttl=ttl)


def test_a_verified_token_is_served_from_the_cache_until_it_expires(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    tokens = codec()
    user = uuid.uuid4()
    token = tokens.issue_access(user_id=user, session_id=uuid.uuid4())
    assert tokens.decode_access(token).user_id == user

    def no_second_parse(*_: object, **__: object) -> None:
        raise AssertionError("the JWT was parsed again")

    monkeypatch.setattr(security.jwt, "decode", no_second_parse)
    assert tokens.decode_access(token).user_id == user  # from the cache


def test_an_expired_cached_token_is_refused() -> None:
    tokens = codec(ttl=timedelta(seconds=30))
    token = tokens.issue_access(user_id=uuid.uuid4(), session_id=uuid.uuid4())
    claims = tokens.decode_access(token)
    # the same claims, as if their expiry had passed since they were cached
    tokens._verified[token] = type(claims)(
        user_id=claims.user_id,
        session_id=claims.session_id,
        expires_at=claims.expires_at - timedelta(minutes=1),
    )
    with pytest.raises(InvalidToken):
        tokens.decode_access(token)
    assert token not in tokens._verified


def test_an_expired_token_is_refused_before_it_is_cached() -> None:
    expired = codec(ttl=timedelta(seconds=-1))
    token = expired.issue_access(user_id=uuid.uuid4(), session_id=uuid.uuid4())
    with pytest.raises(InvalidToken):
        expired.decode_access(token)
    assert token not in expired._verified


def test_forged_tokens_are_never_cached() -> None:
    tokens, other = (
        codec(),
        TokenCodec(
            secret="another-secret-that-is-long-enough-too!",
            algorithm="HS256",
            access_ttl=timedelta(minutes=5),
        ),
    )
    forged = other.issue_access(user_id=uuid.uuid4(), session_id=uuid.uuid4())
    for _ in range(2):
        with pytest.raises(InvalidToken):
            tokens.decode_access(forged)
    assert forged not in tokens._verified


def test_the_cache_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(security, "VERIFIED_TOKENS_MAX", 3)
    tokens = codec()
    issued = [tokens.issue_access(user_id=uuid.uuid4(), session_id=uuid.uuid4()) for _ in range(5)]
    for token in issued:
        tokens.decode_access(token)
    assert list(tokens._verified) == issued[-3:]


def _endpoint(routers: tuple[object, ...], path: str, method: str) -> object:
    scope = {"type": "http", "path": path, "method": method, "root_path": ""}
    for router in routers:
        for route in getattr(router, "routes", []):
            if isinstance(route, APIRoute) and route.matches(scope)[0] == Match.FULL:
                return route.endpoint
    return None


def test_router_order_changes_no_route_selection() -> None:
    """Every route is reached by its own paths whatever the router order (the hot routers
    come first for speed): no path and method is answered by two routers."""
    samples = ("x", "search", "matrix", "export", "bulk", "recommended", "stats", str(uuid.uuid4()))
    reversed_order = tuple(reversed(API_ROUTERS))
    for router in API_ROUTERS:
        for route in router.routes:
            if not isinstance(route, APIRoute):
                continue
            params = re.findall(r"{(\w+)}", route.path)
            for values in itertools.product(samples, repeat=len(params)):
                path = route.path
                for name, value in zip(params, values, strict=True):
                    path = path.replace("{" + name + "}", value, 1)
                for method in route.methods:
                    assert _endpoint(API_ROUTERS, path, method) is _endpoint(
                        reversed_order, path, method
                    ), f"{method} {path}"


class _Session:
    def __init__(self, *, used: bool) -> None:
        self.used, self.closed = used, False
        self.identity_map: dict[object, object] = {}
        self.new: list[object] = []

    def in_transaction(self) -> bool:
        return self.used

    async def __aexit__(self, *_: object) -> None:
        self.closed = True


class _Database:
    def __init__(self, session: _Session) -> None:
        self.session = session

    def sessions(self) -> _Session:
        return self.session


class _Request:
    def __init__(self, session: _Session) -> None:
        self.app = type("App", (), {"state": type("State", (), {"db": _Database(session)})()})()


@pytest.mark.parametrize("used", [True, False])
async def test_sessions_are_closed_when_used(used: bool) -> None:
    from openrisk.core.deps import get_session

    session = _Session(used=used)
    generator = get_session(_Request(session))  # type: ignore[arg-type]
    assert await anext(generator) is session
    with pytest.raises(StopAsyncIteration):
        await anext(generator)
    assert session.closed is used
