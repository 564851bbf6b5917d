"""Circuit breaker: unit behaviour, and a real outage of a redis-server this test owns."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING

import pytest
from prometheus_client import REGISTRY

from openrisk.core.cache import (
    CacheError,
    CacheUnavailable,
    MemoryCache,
    RedisCache,
    ResilientCache,
    ResponseCache,
)
from openrisk.core.cache.generations import GenerationStore
from openrisk.core.cache.response import Lookup
from openrisk.rbac.authz_cache import AuthzCache

if TYPE_CHECKING:  # conftest is not importable by name reliably at run time
    from conftest import RedisProcess

OPERATIONS = ("get", "set", "add", "delete", "get_many", "set_many", "incr", "ping", "stats")


def errors_counted(backend: str) -> float:
    return sum(
        REGISTRY.get_sample_value(
            "openrisk_cache_errors_total", {"backend": backend, "operation": operation}
        )
        or 0.0
        for operation in OPERATIONS
    )


class BrokenCache(MemoryCache):
    def __init__(self) -> None:
        super().__init__()
        self.broken = True
        self.calls = 0

    async def get(self, key: str) -> bytes | None:
        self.calls += 1
        if self.broken:
            raise CacheError("down")
        return await super().get(key)

    async def get_many(self, keys: list[str]) -> list[bytes | None]:  # type: ignore[override]
        self.calls += 1
        if self.broken:
            raise CacheError("down")
        return await super().get_many(keys)

    async def ping(self) -> bool:
        if self.broken:
            raise CacheError("down")
        return True


class HangingCache(MemoryCache):
    async def get(self, key: str) -> bytes | None:
        await asyncio.sleep(10)
        return None


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def breaker_name() -> str:
    return f"test-{uuid.uuid4().hex[:8]}"


async def test_get_never_raises_and_failures_open_the_breaker() -> None:
    inner, clock, name = BrokenCache(), FakeClock(), breaker_name()
    cache = ResilientCache(
        inner, failure_threshold=3, reset_after_s=5, backend_name=name, clock=clock
    )
    assert [await cache.get("k") for _ in range(3)] == [None, None, None]
    assert cache.state == "open"
    assert errors_counted(name) == 3
    assert await cache.get("k") is None
    assert inner.calls == 3  # short-circuited: the backend was not called again
    with pytest.raises(CacheUnavailable):
        await cache.incr("k")
    with pytest.raises(CacheUnavailable):
        await cache.get_many(["k"])


async def test_half_open_trial_closes_or_reopens() -> None:
    inner, clock = BrokenCache(), FakeClock()
    cache = ResilientCache(
        inner, failure_threshold=1, reset_after_s=5, backend_name=breaker_name(), clock=clock
    )
    await cache.get("k")
    assert cache.state == "open"
    clock.now += 5
    assert cache.state == "half_open"
    await cache.get("k")  # the trial fails
    assert cache.state == "open"
    clock.now += 5
    inner.broken = False
    await cache.get("k")  # the trial succeeds
    assert cache.state == "closed"


async def test_a_success_resets_the_consecutive_count() -> None:
    inner = BrokenCache()
    cache = ResilientCache(inner, failure_threshold=2, backend_name=breaker_name())
    await cache.get("k")
    inner.broken = False
    await cache.get("k")
    inner.broken = True
    await cache.get("k")
    assert cache.state == "closed"


async def test_a_hanging_backend_counts_as_a_failure() -> None:
    cache = ResilientCache(
        HangingCache(), failure_threshold=1, call_timeout_s=0.05, backend_name=breaker_name()
    )
    assert await cache.get("k") is None
    assert cache.state == "open"


async def test_after_a_failure_nothing_cached_is_served_until_recovery_applied_the_leftovers() -> (
    None
):
    """A failure may have hidden other processes' bumps (left in the outbox): the response
    cache bypasses until `on_recovery` has run against the answering backend."""
    inner = BrokenCache()
    inner.broken = False
    breaker = ResilientCache(inner, backend_name=breaker_name())
    cache = ResponseCache(breaker)
    place = Lookup.build(tenant_id="t", namespace="risk:list", key_parts=["p"], depends_on=["r"])
    recoveries: list[str] = []

    async def apply_leftovers() -> None:
        recoveries.append("swept")

    breaker.on_recovery = apply_leftovers

    async def body() -> bytes:
        return b"answer"

    assert (await cache.answer(place, body)).status == "MISS"
    inner.broken = True
    assert await breaker.get("any") is None  # one failure
    assert not breaker.consistent
    assert await cache.peek(place, guards={}) is None
    assert (await cache.answer(place, body)).status == "BYPASS"  # still down: no recovery
    assert recoveries == []
    inner.broken = False
    assert (await cache.answer(place, body)).status == "HIT"  # recovered first, then served
    assert recoveries == ["swept"] and breaker.consistent
    assert (await cache.answer(place, body)).status == "HIT"
    assert recoveries == ["swept"]  # once per outage


async def test_stats_include_the_breaker_state() -> None:
    cache = ResilientCache(MemoryCache(), backend_name="memory")
    stats = await cache.stats()
    assert stats["backend"] == "memory"
    assert stats["circuit_breaker"] == {"state": "closed", "consecutive_failures": 0}


# --- a real outage --------------------------------------------------------------------------


async def answer_status(cache: ResponseCache, body: bytes) -> str:
    async def compute() -> bytes:
        return body

    place = Lookup.build(
        tenant_id="t-breaker", namespace="risk:list", key_parts=["p1"], depends_on=["risk"]
    )
    answer = await cache.answer(place, compute)
    assert answer.body == body
    return answer.status


@pytest.mark.redis
async def test_a_redis_outage_bypasses_then_caching_resumes(
    spawn_redis: Callable[..., RedisProcess],
) -> None:
    redis_server = spawn_redis()
    name = breaker_name()
    backend = RedisCache(f"redis://127.0.0.1:{redis_server.port}/0")
    clock = FakeClock()  # a busy host must not let the open period lapse during the outage
    breaker = ResilientCache(
        backend, failure_threshold=3, reset_after_s=1.0, backend_name=name, clock=clock
    )
    cache = ResponseCache(breaker)
    body = b'{"risks": [1, 2, 3]}'
    assert [await answer_status(cache, body) for _ in range(2)] == ["MISS", "HIT"]

    redis_server.kill()
    during_outage = [await answer_status(cache, body) for _ in range(10)]
    assert set(during_outage) == {"BYPASS"}
    assert errors_counted(name) >= 3
    assert breaker.state == "open"

    redis_server.start()
    clock.now += 1.1
    statuses = [await answer_status(cache, body) for _ in range(3)]
    assert statuses[-1] == "HIT", statuses
    assert breaker.state == "closed"
    await breaker.close()


class OneMasterCut(MemoryCache):
    """A cluster with one master cut off: the keys of tenant ``cut`` fail, the others answer."""

    def __init__(self, cut: str) -> None:
        super().__init__()
        self.cut = cut

    def _check(self, *keys: str) -> None:
        if any(f"{{{self.cut}}}" in key for key in keys):
            raise CacheError("master cut off")

    async def get_many(self, keys: list[str]) -> list[bytes | None]:  # type: ignore[override]
        self._check(*keys)
        return await super().get_many(keys)

    async def incr(self, key: str) -> int:
        self._check(key)
        return await super().incr(key)


async def test_an_open_breaker_still_lets_a_write_bump_where_its_master_answers() -> None:
    """Failures on one cluster master open the breaker; a write to a tenant on another master
    must still bump its generations, or other processes keep reading the old ones there."""
    clock = FakeClock()
    shared = ResilientCache(
        OneMasterCut("cut"),
        failure_threshold=2,
        reset_after_s=5,
        clock=clock,
        backend_name=breaker_name(),
    )
    responses = ResponseCache(shared)
    assert not await responses.bump("cut", "risks")  # pending: its master is cut off
    with pytest.raises(CacheUnavailable):
        await responses.generations.current("cut", ["risks"])
    assert shared.state == "open"
    before = await shared.inner.get_many([responses.generations.key("answering", "risks")])
    assert await responses.bump("answering", "risks") is True
    after = await shared.inner.get_many([responses.generations.key("answering", "risks")])
    assert before != after
    assert shared.state == "open"  # a bump that got through closes nothing


async def test_an_open_breaker_still_lets_an_authorization_change_bump_its_generation() -> None:
    """The same for the authorization generation: refused, the change answers 503 while the
    master holding it answers, and other processes keep the old authorizations there."""
    shared = ResilientCache(
        OneMasterCut("cut"),
        failure_threshold=2,
        reset_after_s=5,
        clock=FakeClock(),
        backend_name=breaker_name(),
    )
    authz = AuthzCache(shared)
    before = await authz.generation()
    for _ in range(2):
        with pytest.raises(CacheUnavailable):
            await GenerationStore(shared).current("cut", ["risks"])
    assert shared.state == "open"
    await authz.bump(strict=True)
    assert await shared.inner.get_many([authz.generation_key]) != [str(before).encode()]
