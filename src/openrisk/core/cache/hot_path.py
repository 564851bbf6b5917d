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

Refresh after a write (``refresh_top``): a write makes every answer of its namespaces miss
once, so after each one the next reader of every list view and dashboard panel waited for the
database. Instead, once the write has answered, this process replays the ``refresh_top`` most
used remembered requests that the write invalidated, through the full path (routing, auth
with the same credentials, the route's own computation), one at a time in the background; the
answers land in the shared cache under the new generations. A replay is a request like any
other - it can only store what its caller may see, computed after the write - so it cannot
break read-your-writes; if another write lands meanwhile, its answer is merely unreachable.
Replays count as ``openrisk_cache_refreshes_total``, not as lookups.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from openrisk.core.cache.response import CachedAnswer, Lookup, ResponseCache
from openrisk.core.metrics import PERMISSION_ALLOW

SCOPE_KEY = "openrisk.authorization"
REFRESH_KEY = "openrisk.refresh"  # set on replayed requests
Fingerprint = tuple[str, bytes, bytes, bytes]
log = logging.getLogger(__name__)


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
        refresh_top: int = 0,
        clock: Any = time.time,
    ) -> None:
        self.responses = responses
        self.enabled = enabled and responses.enabled
        self.refresh_top = refresh_top
        self._authz_key = authz_generation_key
        self._max_entries = max_entries
        self._clock = clock
        self._entries: dict[Fingerprint, _Remembered] = {}
        self._uses: defaultdict[str | None, Counter[Fingerprint]] = defaultdict(Counter)
        self._inner: ASGIApp | None = None
        self._application: Any = None
        self._stale: defaultdict[str | None, set[str]] = defaultdict(set)
        self._refreshing: dict[str | None, asyncio.Task[None]] = {}
        self.hits = 0
        self.refreshed = 0

    def stats(self) -> dict[str, object]:
        return {
            "enabled": self.enabled,
            "remembered": len(self._entries),
            "hits": self.hits,
            "refresh_top": self.refresh_top,
            "refreshed": self.refreshed,
        }

    def attach(self, inner: ASGIApp) -> None:
        """The application below the hot path: where replays of refreshes go."""
        self._inner = inner

    def remember(self, scope: Scope, lookup: Lookup) -> None:
        """Called by ``cached_json`` once a route has answered from `lookup`."""
        authorization: Authorization | None = scope.get(SCOPE_KEY)
        if not self.enabled or authorization is None or scope["method"] != "GET":
            return
        if scope.get(REFRESH_KEY):
            return  # already remembered: the replay came from the entry
        now = self._clock()
        key = fingerprint(scope)
        self._application = scope.get("app")
        self._uses[lookup.tenant_id][key] += 1
        self._entries[key] = _Remembered(
            lookup=lookup,
            route=scope.get("route"),
            guards={self._authz_key: authorization.generation},
            # some keys hold the date (dashboards): never carry a mapping past midnight UTC
            valid_until=min(authorization.valid_until, _next_utc_midnight(now)),
        )
        if len(self._entries) > self._max_entries:
            self._forget(next(iter(self._entries)))  # the oldest

    async def answer(self, key: Fingerprint) -> tuple[CachedAnswer, Any] | None:
        """(answer, route) for a remembered request whose answer is stored, else None."""
        remembered = self._entries.get(key)
        if remembered is None:
            return None
        if remembered.valid_until <= self._clock():
            self._forget(key)
            return None
        answer = await self.responses.peek(remembered.lookup, guards=remembered.guards)
        if answer is None:
            return None
        self.hits += 1
        self._uses[remembered.lookup.tenant_id][key] += 1
        return answer, remembered.route

    def refresh_after(self, tenant_id: str | None, namespaces: Iterable[str]) -> None:
        """A write invalidated `namespaces`: recompute their most used answers, off the
        request path (one task per tenant; writes during a refresh queue one more round)."""
        if not (self.enabled and self.refresh_top > 0 and self._inner is not None):
            return
        self._stale[tenant_id].update(namespaces)
        if tenant_id not in self._refreshing:
            self._refreshing[tenant_id] = asyncio.create_task(self._refresh(tenant_id))

    async def settled(self) -> None:
        """Wait until no refresh is running (tests, benchmarks)."""
        while self._refreshing:
            await asyncio.gather(*self._refreshing.values(), return_exceptions=True)

    async def aclose(self) -> None:
        tasks = list(self._refreshing.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _refresh(self, tenant_id: str | None) -> None:
        try:
            while stale := self._stale.pop(tenant_id, None):
                for key in self._most_used(tenant_id, stale):
                    await self._replay(key)
        finally:
            del self._refreshing[tenant_id]

    def _most_used(self, tenant_id: str | None, stale: set[str]) -> list[Fingerprint]:
        """Up to `refresh_top` remembered requests of distinct answers depending on `stale`,
        most used first; then every count halves, so recent use weighs most."""
        uses = self._uses[tenant_id]
        now, chosen, answers = self._clock(), [], set()
        for key, _ in uses.most_common():
            remembered = self._entries.get(key)
            if remembered is None or remembered.valid_until <= now:
                continue
            lookup = remembered.lookup
            if stale.isdisjoint(lookup.names) or (lookup.head, lookup.tail) in answers:
                continue
            answers.add((lookup.head, lookup.tail))
            chosen.append(key)
            if len(chosen) == self.refresh_top:
                break
        for key in list(uses):
            uses[key] //= 2
            if not uses[key]:
                del uses[key]
        return chosen

    async def _replay(self, key: Fingerprint) -> None:
        path, query, authorization, tenant = key
        headers = [(b"authorization", authorization)]
        if tenant:
            headers.append((b"x-tenant-id", tenant))
        scope: Scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "GET",
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "query_string": query,
            "root_path": "",
            "headers": headers,
            "client": None,
            "server": None,
            "app": self._application,
            "state": {},
            REFRESH_KEY: True,
        }
        assert self._inner is not None
        try:
            await self._inner(scope, _no_body, _discard)
            self.refreshed += 1
        except Exception:  # a replay must never disturb anything else
            log.warning("cache refresh of %s failed", path, exc_info=True)

    def _forget(self, key: Fingerprint) -> None:
        remembered = self._entries.pop(key, None)
        if remembered is not None:
            self._uses[remembered.lookup.tenant_id].pop(key, None)


class HotPathMiddleware:
    """Pure ASGI: answers remembered GETs from the cache, passes everything else on."""

    def __init__(self, app: ASGIApp, *, hot_path: HotPath) -> None:
        self.app = app
        self.hot_path = hot_path
        hot_path.attach(app)

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
    """The same status, headers and body as ``cached_json``'s Starlette response."""
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


async def _no_body() -> Message:
    return {"type": "http.request", "body": b"", "more_body": False}


async def _discard(message: Message) -> None:
    return None


def _next_utc_midnight(now: float) -> float:
    today = datetime.fromtimestamp(now, UTC).date()
    midnight = datetime(today.year, today.month, today.day, tzinfo=UTC) + timedelta(days=1)
    return midnight.timestamp()
