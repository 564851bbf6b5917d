"""The hot path: a repeated, authorised GET of a declared cached read answered before routing.

A cached answer taken through FastAPI still pays for routing, dependency resolution (bearer
token, tenant header, permission, every query parameter) and a Response object: 3-4x the CPU
of ``GET /health`` (docs/performance.md). The hot path skips all of that for a request it has
seen answered by a declared cached read (``core/cache/reads.py``), and only for such routes:

- ``respond`` (``core/cache/http.py``) hands over the call's `Place` (tenant, caller variant,
  the digest of the declared inputs, dependency namespaces) once the route has answered; it is
  remembered under the request's fingerprint with what the auth dependency vouched for
  (`Authorization`: the authorization generation the caller was resolved at, and how long that
  may be reused: token expiry, the authorization cache's TTL).
- The fingerprint is path, query string, ``Authorization`` and ``X-Tenant-ID``: a route may be
  marked as serving a declared read (``serves``) only if its inputs come from nothing else - a
  test walks the route table (``tests/core/cache/test_declared_reads.py``) and fails on a
  marked route taking any other header, a cookie or a body, and ``respond`` refuses a route
  that is not marked for the read it answers.
- A read varying on today's date is looked up under today's key on every hit (the
  declaration's clock is asked again), so no remembered request outlives its day.

The next identical request is answered here when one read of the shared cache shows the
authorization generation unchanged and the answer's generations lead to a stored answer.
Anything else - a miss, an authorization change, an expired entry, an unavailable cache -
takes the full path, which decides again and remembers again. Requests with API tokens are
never remembered (the auth dependency does not vouch for them): their use is recorded
(``last_used_at``) on the full path.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from starlette.types import ASGIApp, Receive, Scope, Send

from openrisk.core.cache.response import CachedAnswer, Lookup, ResponseCache
from openrisk.core.metrics import PERMISSION_ALLOW

if TYPE_CHECKING:
    from openrisk.core.cache.reads import Place

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


@dataclass(slots=True)
class _Remembered:
    place: Place
    lookup: Lookup  # the place's key as of `place.day` (None: not dated)
    route: Any
    guards: dict[str, int]
    valid_until: float

    def current(self) -> Lookup:
        """Today's key: a dated read's key is rebuilt when its clock has moved to another day."""
        read = self.place.read
        if read.today is not None and read.dated:
            today = read.today()
            if today != self.place.day:
                return self.place.lookup(today)
        return self.lookup


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

    def remember(self, scope: Scope, place: Place) -> None:
        """Called by ``respond`` once a marked route has answered from `place`."""
        authorization: Authorization | None = scope.get(SCOPE_KEY)
        if not self.enabled or authorization is None or scope["method"] != "GET":
            return
        key = fingerprint(scope)
        self._entries[key] = _Remembered(
            place=place,
            lookup=place.lookup(),
            route=scope.get("route"),
            guards={self._authz_key: authorization.generation},
            valid_until=authorization.valid_until,
        )
        if len(self._entries) > self._max_entries:
            self._entries.pop(next(iter(self._entries)))  # the oldest

    async def answer(self, key: Fingerprint) -> tuple[CachedAnswer, Any] | None:
        """(answer, route) for a remembered request whose answer is stored, else None."""
        remembered = self._entries.get(key)
        if remembered is None:
            return None
        if remembered.valid_until <= self._clock():
            self._entries.pop(key, None)
            return None
        lookup = remembered.current()
        answer = await self.responses.peek(lookup, guards=remembered.guards)
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
            authorization, tenant, if_none_match = _headers(scope)
            key = (scope["path"], scope["query_string"], authorization, tenant)
            found = await self.hot_path.answer(key)
            if found is not None:
                answer, route = found
                scope["route"] = route  # metrics and access log label it by its template
                PERMISSION_ALLOW.inc()
                await _send(answer, if_none_match, send)
                return
        await self.app(scope, receive, send)


def fingerprint(scope: Scope) -> Fingerprint:
    """What decides a cached GET's answer: path, query string, credentials, tenant header."""
    authorization, tenant, _ = _headers(scope)
    return (scope["path"], scope["query_string"], authorization, tenant)


def _headers(scope: Scope) -> tuple[bytes, bytes, str | None]:
    """Authorization, X-Tenant-ID and If-None-Match in one pass (the first of each)."""
    authorization = tenant = b""
    if_none_match: str | None = None
    for name, value in scope["headers"]:
        if name == b"authorization" and not authorization:
            authorization = value
        elif name == b"x-tenant-id" and not tenant:
            tenant = value
        elif name == b"if-none-match" and if_none_match is None:
            if_none_match = value.decode("latin-1")
    return authorization, tenant, if_none_match


async def _send(answer: CachedAnswer, if_none_match: str | None, send: Send) -> None:
    """The same status, headers and body as ``respond``'s Starlette response."""
    headers = [(b"etag", answer.etag.encode()), (b"x-cache", b"HIT")]
    if answer.not_modified(if_none_match):
        await send({"type": "http.response.start", "status": 304, "headers": headers})
        await send({"type": "http.response.body", "body": b""})
        return
    headers += [
        (b"content-length", str(len(answer.body)).encode()),
        (b"content-type", b"application/json"),
    ]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": answer.body})
