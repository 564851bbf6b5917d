"""Circuit breaker around a cache backend: a cache outage must never fail a request."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Literal, TypeVar

from openrisk.core.cache.base import Cache, CacheUnavailable
from openrisk.core.cache.metrics import CACHE_ERRORS

BreakerState = Literal["closed", "open", "half_open"]
T = TypeVar("T")
logger = logging.getLogger(__name__)
_ALWAYS_TRIED: ContextVar[bool] = ContextVar("cache_always_tried", default=False)


@contextmanager
def always_tried() -> Iterator[None]:
    """Calls made inside reach the backend even while the breaker is open (and a success
    does not close it): a generation bump must reach the cluster masters that still answer
    though failures on another master opened the breaker."""
    token = _ALWAYS_TRIED.set(True)
    try:
        yield
    finally:
        _ALWAYS_TRIED.reset(token)


class ResilientCache:
    """Wraps a backend with a consecutive-failure circuit breaker.

    After `failure_threshold` consecutive failures (any exception, including a call exceeding
    `call_timeout_s`) the breaker opens: for `reset_after_s` no call reaches the backend. Then
    one trial call is let through (half-open); success closes the breaker, failure re-opens it.
    Every failure increments `openrisk_cache_errors_total{backend,operation}`. Calls made
    inside `always_tried()` (generation bumps of a write) skip the open breaker.

    What callers see while the backend is failing or the breaker is open:
    - `get` → None, `set`/`set_many` → no-op, `delete` → 0, `ping` → False: never raise.
    - `get_many`, `add`, `incr`, `invalidate_pattern`, `clear` raise `CacheUnavailable`: they
      back generation lookups, seeds and bumps and admin actions, whose callers must tell
      "unavailable" apart from "empty" (an unreadable generation must bypass the cache, not
      be taken as a fresh one).

    Recovery: while the backend was away, other processes' writes may have committed with
    their generation bumps left in the outbox, so the generations it holds may be stale.
    After any failure the cache is not `consistent` until `recover()` has run `on_recovery`
    (the application's: apply every invalidation left in the outbox) against the backend
    again; the response and authorization caches serve nothing cached until then.
    """

    def __init__(
        self,
        inner: Cache,
        *,
        failure_threshold: int = 5,
        reset_after_s: float = 5.0,
        backend_name: str | None = None,
        call_timeout_s: float | None = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if failure_threshold < 1:
            raise ValueError("failure_threshold must be at least 1")
        self.inner = inner
        self.backend_name = backend_name or type(inner).__name__.lower()
        self.failure_threshold = failure_threshold
        self.reset_after_s = reset_after_s
        self.call_timeout_s = call_timeout_s
        self._clock = clock
        self._consecutive_failures = 0
        self._opened_at: float | None = None
        self._trial_in_flight = False
        self.failures = 0  # ever, in this process
        self._recovered_through = 0  # failures up to this count were recovered from
        self._recovering: asyncio.Task[bool] | None = None
        self.on_recovery: Callable[[], Awaitable[object]] | None = None

    @property
    def consistent(self) -> bool:
        """No failure since the last recovery: the generations read here can be trusted."""
        return self.failures == self._recovered_through

    async def recover(self) -> bool:
        """After a failure: once the backend answers, run `on_recovery`; True when consistent.

        Concurrent callers share one attempt; a failure meanwhile leaves it inconsistent.
        """
        if self.consistent:
            return True
        if self._recovering is None:
            self._recovering = asyncio.create_task(self._recover())
        task = self._recovering
        try:
            return await asyncio.shield(task)
        finally:
            if task.done() and self._recovering is task:
                self._recovering = None

    async def _recover(self) -> bool:
        through = self.failures
        try:
            if not await self.ping():
                return False
            if self.on_recovery is not None:
                await self.on_recovery()
        except Exception:
            logger.warning("cache %s recovery failed", self.backend_name, exc_info=True)
            return False
        if self.failures != through:
            return False
        self._recovered_through = through
        logger.info("cache %s consistent again: left-over invalidations applied", self.backend_name)
        return True

    @property
    def state(self) -> BreakerState:
        if self._opened_at is None:
            return "closed"
        if self._trial_in_flight or self._clock() - self._opened_at >= self.reset_after_s:
            return "half_open"
        return "open"

    async def get(self, key: str) -> bytes | None:
        return await self._quiet("get", lambda: self.inner.get(key), None)

    async def set(self, key: str, value: bytes, ttl: int | None = None) -> None:
        await self._quiet("set", lambda: self.inner.set(key, value, ttl), None)

    async def add(self, key: str, value: bytes, ttl: int | None = None) -> bool:
        return await self._call("add", lambda: self.inner.add(key, value, ttl))

    async def delete(self, *keys: str) -> int:
        return await self._quiet("delete", lambda: self.inner.delete(*keys), 0)

    async def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        return await self._call("get_many", lambda: self.inner.get_many(keys))

    async def set_many(self, mapping: Mapping[str, bytes], ttl: int | None = None) -> None:
        await self._quiet("set_many", lambda: self.inner.set_many(mapping, ttl), None)

    async def incr(self, key: str) -> int:
        return await self._call("incr", lambda: self.inner.incr(key))

    async def invalidate_pattern(self, pattern: str) -> int:
        return await self._call(
            "invalidate_pattern", lambda: self.inner.invalidate_pattern(pattern)
        )

    async def clear(self) -> None:
        await self._call("clear", self.inner.clear)

    async def ping(self) -> bool:
        return await self._quiet("ping", self.inner.ping, False)

    async def stats(self) -> dict[str, object]:
        breaker = {"state": self.state, "consecutive_failures": self._consecutive_failures}
        try:
            backend_stats = await self._call("stats", self.inner.stats)
        except CacheUnavailable as exc:
            backend_stats = {"backend": self.backend_name, "error": str(exc)}
        return {**backend_stats, "circuit_breaker": breaker}

    async def close(self) -> None:
        try:
            await self.inner.close()
        except Exception:
            logger.warning("closing cache backend %s failed", self.backend_name, exc_info=True)

    async def _quiet(self, operation: str, call: Callable[[], Awaitable[T]], fallback: T) -> T:
        try:
            return await self._call(operation, call)
        except CacheUnavailable:
            return fallback

    async def _call(self, operation: str, call: Callable[[], Awaitable[T]]) -> T:
        forced = self._opened_at is not None and _ALWAYS_TRIED.get()
        is_trial = False if forced else self._admit(operation)
        try:
            async with asyncio.timeout(self.call_timeout_s):
                result = await call()
        except Exception as exc:
            self._record_failure(operation, exc)
            raise CacheUnavailable(f"cache {self.backend_name} {operation} failed: {exc}") from exc
        finally:
            if is_trial:
                self._trial_in_flight = False
        if not forced:
            self._record_success()
        return result

    def _admit(self, operation: str) -> bool:
        """Let the call through (returning whether it is the half-open trial) or raise."""
        if self._opened_at is None:
            return False
        if self._trial_in_flight or self._clock() - self._opened_at < self.reset_after_s:
            raise CacheUnavailable(f"cache {self.backend_name} circuit open ({operation})")
        self._trial_in_flight = True
        return True

    def _record_failure(self, operation: str, exc: Exception) -> None:
        CACHE_ERRORS.labels(backend=self.backend_name, operation=operation).inc()
        self.failures += 1
        self._consecutive_failures += 1
        reopening = self._opened_at is not None
        if reopening or self._consecutive_failures >= self.failure_threshold:
            if not reopening:
                logger.warning(
                    "cache %s circuit opened after %d consecutive failures: %s",
                    self.backend_name,
                    self._consecutive_failures,
                    exc,
                )
            self._opened_at = self._clock()

    def _record_success(self) -> None:
        if self._opened_at is not None:
            logger.info("cache %s circuit closed", self.backend_name)
        self._consecutive_failures = 0
        self._opened_at = None


async def usable(cache: Cache) -> bool:
    """Whether what `cache` holds may be trusted now (recovering first when it failed)."""
    return not isinstance(cache, ResilientCache) or cache.consistent or await cache.recover()
