"""The hot path: a repeated, authorised GET answered from the response cache before routing.

A cached answer taken through FastAPI still pays for routing, dependency resolution (bearer
token, tenant header, permission, every query parameter) and a Response object: 3-4x the CPU
of ``GET /health`` on the development machine (docs/performance.md). Yet for the same request
- same path, query string, ``Authorization`` and ``X-Tenant-ID`` - all of that comes out the
same way for as long as the caller's authorization is unchanged.

So when a route answers through ``cached_json``, the answer's `Lookup` is remembered under that
request's fingerprint, with what the auth dependency vouched for (`Authorization`): the
authorization generation it resolved the caller at, and when that may no longer be reused
(token expiry, the authorization cache's TTL). The next identical request is answered here
when one read of the shared cache shows the authorization generation unchanged (no role,
membership, token or tenant change anywhere) and the answer's generations lead to a stored
answer. Anything else - a miss, an authorization change, an expired entry, an unavailable
cache - takes the full path, which decides again and remembers again.

Requests with API tokens are never remembered (the auth dependency does not vouch for them):
their use is recorded (``last_used_at``) on the full path.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

from openrisk.core.cache.response import CachedAnswer, Lookup, ResponseCache
from openrisk.core.metrics import PERMISSION_ALLOW

SCOPE_KEY = "openrisk.authorization"
Fingerprint = tuple[str, bytes, bytes, bytes]


@dataclass(frozen=True, slots=True)
class Authorization:
    """The auth dependency's word: this caller was authorised at `generation` of the
    authorization cache, and that may be reused until `valid_until` (epoch seconds)."""

    generation: int
    valid_until: float


def vouch(scope: Scope, authorization: Authorization) -> None:
    scope[SCOPE_KEY] = authorization


@dataclass(frozen=True, slots=True)
class _Remembered:
    lookup: Lookup
    route: Any
    guards: dict[str, int]
    valid_until: float


class HotPath:
    def __init__(
        self,
        responses: ResponseCache,
        *,
        authz_generation_key: str,
        enabled: bool = True,
        max_entries: int = 20_000,
        clock: Any = time.time,
    ) -> None:
        self.responses = responses
        self.enabled = enabled and responses.enabled
        self._authz_key = authz_generation_key
        self._max_entries = max_entries
        self._clock = clock
        self._entries: dict[Fingerprint, _Remembered] = {}
        self.hits = 0

    def stats(self) -> dict[str, object]:
        return {"enabled": self.enabled, "remembered": len(self._entries), "hits": self.hits}

    def remember(self, scope: Scope, lookup: Lookup) -> None:
        """Called by ``cached_json`` once a route has answered from `lookup`."""
        authorization: Authorization | None = scope.get(SCOPE_KEY)
        if not self.enabled or authorization is None or scope["method"] != "GET":
            return
        now = self._clock()
        self._entries[fingerprint(scope)] = _Remembered(
            lookup=lookup,
            route=scope.get("route"),
            guards={self._authz_key: authorization.generation},
            # some keys hold the date (dashboards): never carry a mapping past midnight UTC
            valid_until=min(authorization.valid_until, _next_utc_midnight(now)),
        )
        if len(self._entries) > self._max_entries:
            del self._entries[next(iter(self._entries))]  # the oldest

    async def answer(self, scope: Scope) -> tuple[CachedAnswer, Any] | None:
        """(answer, route) for a remembered request whose answer is stored, else None."""
        remembered = self._entries.get(fingerprint(scope))
        if remembered is None:
            return None
        if remembered.valid_until <= self._clock():
            self._entries.pop(fingerprint(scope), None)
            return None
        answer = await self.responses.peek(remembered.lookup, guards=remembered.guards)
        if answer is None:
            return None
        self.hits += 1
        return answer, remembered.route


class HotPathMiddleware:
    """Pure ASGI: answers remembered GETs from the cache, passes everything else on."""

    def __init__(self, app: ASGIApp, *, hot_path: HotPath) -> None:
        self.app = app
        self.hot_path = hot_path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "GET" and self.hot_path.enabled:
            found = await self.hot_path.answer(scope)
            if found is not None:
                answer, route = found
                scope["route"] = route  # metrics and access log label it by its template
                PERMISSION_ALLOW.inc()
                await _send(answer, scope, send)
                return
        await self.app(scope, receive, send)


def fingerprint(scope: Scope) -> Fingerprint:
    """What decides a cached GET's answer: path, query string, credentials, tenant header."""
    authorization = tenant = b""
    for name, value in scope["headers"]:
        if name == b"authorization" and not authorization:
            authorization = value
        elif name == b"x-tenant-id" and not tenant:
            tenant = value
    return (scope["path"], scope["query_string"], authorization, tenant)


async def _send(answer: CachedAnswer, scope: Scope, send: Send) -> None:
    """The same status, headers and body as ``cached_json``'s Starlette response."""
    headers = [(b"etag", answer.etag.encode()), (b"x-cache", b"HIT")]
    if answer.not_modified(_if_none_match(scope)):
        await send({"type": "http.response.start", "status": 304, "headers": headers})
        await send({"type": "http.response.body", "body": b""})
        return
    headers += [
        (b"content-length", str(len(answer.body)).encode()),
        (b"content-type", b"application/json"),
    ]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": answer.body})


def _if_none_match(scope: Scope) -> str | None:
    for name, value in scope["headers"]:
        if name == b"if-none-match":
            return str(value.decode("latin-1"))
    return None


def _next_utc_midnight(now: float) -> float:
    today = datetime.fromtimestamp(now, UTC).date()
    midnight = datetime(today.year, today.month, today.day, tzinfo=UTC) + timedelta(days=1)
    return midnight.timestamp()
