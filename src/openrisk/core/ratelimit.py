"""Rate limits on the ``limits`` library, shared by every worker and host through Redis.

With the Redis cache backend the counters live in Redis (atomic Lua scripts there), so a limit
holds across workers and hosts; otherwise in process memory. Login throttling uses the exact
moving window; the general API limit the cheaper sliding-window counter. When Redis cannot be
reached, each worker falls back to its own memory counters: limits stay on, only per worker.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass

from limits import RateLimitItem, parse_many
from limits.aio.storage import MemoryStorage, Storage
from limits.aio.strategies import (
    MovingWindowRateLimiter,
    RateLimiter,
    SlidingWindowCounterRateLimiter,
)
from limits.storage import storage_from_string
from starlette.types import ASGIApp, Receive, Scope, Send

from openrisk.config import Settings
from openrisk.core.errors import problem_response

log = logging.getLogger(__name__)
KEY_PREFIX = "openrisk:limits"
REDIS_TIMEOUT_S = 0.5  # a slow Redis must not hold requests: fall back to memory instead


def parse_limits(text: str | None) -> tuple[RateLimitItem, ...]:
    """``"5/minute;20/hour"`` → its limits; empty (or None) → no limit."""
    return tuple(parse_many(text)) if text and text.strip() else ()


@dataclass(frozen=True)
class Exceeded:
    """A limit ran out: retry after ``retry_after`` seconds (the ``Retry-After`` header)."""

    limit: RateLimitItem
    retry_after: int

    @property
    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)}


def _storage_uri(settings: Settings) -> str | None:
    if settings.cache_backend.strip().lower() != "redis":
        return None
    url = settings.redis_url
    scheme, _, rest = url.partition("://")
    return {"unix": f"async+redis+unix://{rest}"}.get(scheme, f"async+{url}")


def _strategies(storage: Storage) -> dict[bool, RateLimiter]:
    """{exact: limiter}: the moving window for exact limits, the sliding counter otherwise."""
    return {True: MovingWindowRateLimiter(storage), False: SlidingWindowCounterRateLimiter(storage)}


class RateLimits:
    """The process's limiters, on the shared store when there is one."""

    def __init__(self, settings: Settings) -> None:
        uri = _storage_uri(settings)
        self._shared: dict[bool, RateLimiter] | None = None
        if uri is not None:
            storage = storage_from_string(
                uri,
                implementation="redispy",
                key_prefix=KEY_PREFIX,
                socket_timeout=REDIS_TIMEOUT_S,
                socket_connect_timeout=REDIS_TIMEOUT_S,
            )
            assert isinstance(storage, Storage)
            self._shared = _strategies(storage)
        self._local = _strategies(MemoryStorage())

    async def _run(self, exact: bool, op: str, item: RateLimitItem, *ids: str) -> object:
        if self._shared is not None:
            try:
                return await getattr(self._shared[exact], op)(item, *ids)
            except Exception as error:  # the shared store is down: keep limiting, per worker
                log.warning("rate-limit storage unavailable, using process memory: %s", error)
        return await getattr(self._local[exact], op)(item, *ids)

    async def hit(
        self, limits: Sequence[RateLimitItem], *identifiers: str, exact: bool = True
    ) -> Exceeded | None:
        """Consume one unit of every limit, atomically each; the first one exhausted, if any."""
        for item in limits:
            if not await self._run(exact, "hit", item, *identifiers):
                return await self._exceeded(item, identifiers, exact=exact)
        return None

    async def check(
        self, limits: Sequence[RateLimitItem], *identifiers: str, exact: bool = True
    ) -> Exceeded | None:
        """Like ``hit`` without consuming: whether one more unit would be refused."""
        for item in limits:
            if not await self._run(exact, "test", item, *identifiers):
                return await self._exceeded(item, identifiers, exact=exact)
        return None

    async def clear(self, limits: Sequence[RateLimitItem], *identifiers: str) -> None:
        for item in limits:
            await self._run(True, "clear", item, *identifiers)

    async def _exceeded(
        self, item: RateLimitItem, identifiers: tuple[str, ...], *, exact: bool
    ) -> Exceeded:
        stats = await self._run(exact, "get_window_stats", item, *identifiers)
        reset_time = getattr(stats, "reset_time", time.time() + item.get_expiry())
        return Exceeded(limit=item, retry_after=max(1, math.ceil(reset_time - time.time())))


# Probes and scrapes come from load balancers and Prometheus, often from one address.
EXEMPT_PREFIXES = ("/api/v1/health", "/metrics", "/static/")


class RateLimitMiddleware:
    """The general API rate limit (pure ASGI, before routing and the cached hot path).

    A request with credentials counts against that credential (by hash: no secret reaches the
    store), one without against its client address (which the server derives from
    X-Forwarded-For only for OPENRISK_TRUSTED_PROXIES). Over the limit: 429 problem+json with
    ``Retry-After``.
    """

    def __init__(self, app: ASGIApp, *, limits: RateLimits, per_token: str, per_ip: str) -> None:
        self.app = app
        self.limits = limits
        self.per_token = parse_limits(per_token)
        self.per_ip = parse_limits(per_ip)

    def _bucket(self, scope: Scope) -> tuple[tuple[RateLimitItem, ...], str, str]:
        for name, value in scope["headers"]:
            if name == b"authorization":
                return self.per_token, "api-token", hashlib.sha256(value).hexdigest()[:32]
        client = scope.get("client")
        return self.per_ip, "api-ip", str(client[0]) if client else "unknown"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or str(scope["path"]).startswith(EXEMPT_PREFIXES):
            await self.app(scope, receive, send)
            return
        limits, kind, key = self._bucket(scope)
        exceeded = await self.limits.hit(limits, kind, key, exact=False) if limits else None
        if exceeded is None:
            await self.app(scope, receive, send)
            return
        response = problem_response(
            429,
            f"Rate limit of {exceeded.limit} exceeded; retry in {exceeded.retry_after} s.",
            headers=exceeded.headers,
        )
        await response(scope, receive, send)
