"""One contract for every backend (memory, Redis, none, a custom class) plus backend specifics."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
from redis.asyncio import Redis
from tests.core.cache.conftest import owned_prefix

from openrisk.core.cache import (
    Cache,
    CacheError,
    MemoryCache,
    NullCache,
    RedisCache,
    build_cache,
)
from openrisk.core.cache.redis_backend import _parse_multi_host

REPO_ROOT = Path(__file__).resolve().parents[3]
CUSTOM_BACKEND = "tests.core.cache.custom_backend:DictCache"


@dataclass
class Backend:
    cache: Cache
    prefix: str
    stores: bool  # False for the pass-through backend: every read misses

    def key(self, name: str) -> str:
        return f"{self.prefix}:{name}"


@pytest.fixture(
    params=[
        "memory",
        pytest.param("redis", marks=pytest.mark.redis),
        pytest.param("cluster", marks=pytest.mark.redis),
        "none",
        "custom",
    ]
)
def backend(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, run_id: str
) -> Backend:
    # Synchronous on purpose: it pulls the async redis_cache fixture via getfixturevalue.
    prefix = owned_prefix(run_id)
    if request.param in ("redis", "cluster"):
        fixture = "redis_cache" if request.param == "redis" else "redis_cluster_cache"
        return Backend(request.getfixturevalue(fixture), prefix, stores=True)
    if request.param == "custom":
        monkeypatch.syspath_prepend(str(REPO_ROOT))
    name = CUSTOM_BACKEND if request.param == "custom" else request.param
    cache = build_cache(name, memory_max_entries=1000, memory_max_bytes=1_000_000)
    return Backend(cache, prefix, stores=request.param != "none")


def stored(backend: Backend, value: bytes) -> bytes | None:
    return value if backend.stores else None


async def test_get_missing_key_is_none(backend: Backend) -> None:
    assert await backend.cache.get(backend.key("absent")) is None


async def test_set_then_get_round_trips_binary(backend: Backend) -> None:
    value = b"\x00\xff binary \x80 body"
    await backend.cache.set(backend.key("a"), value, ttl=60)
    assert await backend.cache.get(backend.key("a")) == stored(backend, value)


async def test_set_overwrites(backend: Backend) -> None:
    await backend.cache.set(backend.key("a"), b"one", ttl=60)
    await backend.cache.set(backend.key("a"), b"two", ttl=60)
    assert await backend.cache.get(backend.key("a")) == stored(backend, b"two")


async def test_add_stores_only_when_absent(backend: Backend) -> None:
    assert await backend.cache.add(backend.key("lock"), b"first", ttl=60) is True
    second = await backend.cache.add(backend.key("lock"), b"second", ttl=60)
    assert second is (not backend.stores)
    assert await backend.cache.get(backend.key("lock")) == stored(backend, b"first")


async def test_delete_counts_removed_keys(backend: Backend) -> None:
    await backend.cache.set(backend.key("a"), b"1")
    await backend.cache.set(backend.key("b"), b"2")
    removed = await backend.cache.delete(backend.key("a"), backend.key("b"), backend.key("c"))
    assert removed == (2 if backend.stores else 0)
    assert await backend.cache.get(backend.key("a")) is None


async def test_get_many_keeps_order_and_reports_missing(backend: Backend) -> None:
    await backend.cache.set_many({backend.key("a"): b"A", backend.key("c"): b"C"}, ttl=60)
    values = await backend.cache.get_many([backend.key(k) for k in ("c", "b", "a")])
    assert values == [stored(backend, b"C"), None, stored(backend, b"A")]


async def test_get_many_of_nothing(backend: Backend) -> None:
    assert await backend.cache.get_many([]) == []


async def test_ttl_expiry(backend: Backend) -> None:
    await backend.cache.set(backend.key("short"), b"x", ttl=1)
    await backend.cache.set_many({backend.key("short2"): b"y"}, ttl=1)
    await backend.cache.set(backend.key("long"), b"z", ttl=60)
    await asyncio.sleep(1.1)
    assert await backend.cache.get(backend.key("short")) is None
    assert await backend.cache.get(backend.key("short2")) is None
    assert await backend.cache.get(backend.key("long")) == stored(backend, b"z")


async def test_incr_counts_from_zero(backend: Backend) -> None:
    assert [await backend.cache.incr(backend.key("n")) for _ in range(3)] == [1, 2, 3]


async def test_incr_continues_a_stored_integer(backend: Backend) -> None:
    await backend.cache.set(backend.key("n"), b"41")
    assert await backend.cache.incr(backend.key("n")) == (42 if backend.stores else 1)


async def test_invalidate_pattern_removes_only_matches(backend: Backend) -> None:
    await backend.cache.set_many(
        {backend.key("risk:1"): b"1", backend.key("risk:2"): b"2", backend.key("asset:1"): b"3"}
    )
    removed = await backend.cache.invalidate_pattern(backend.key("risk:*"))
    assert removed == (2 if backend.stores else 0)
    assert await backend.cache.get(backend.key("risk:1")) is None
    assert await backend.cache.get(backend.key("asset:1")) == stored(backend, b"3")


async def test_clear_empties_the_cache(backend: Backend) -> None:
    await backend.cache.set_many({backend.key("a"): b"1", backend.key("b"): b"2"})
    await backend.cache.clear()
    assert await backend.cache.get_many([backend.key("a"), backend.key("b")]) == [None, None]


async def test_ping_and_stats(backend: Backend) -> None:
    assert await backend.cache.ping() is True
    assert "backend" in await backend.cache.stats()


async def test_backend_satisfies_the_protocol(backend: Backend) -> None:
    assert isinstance(backend.cache, Cache)


# --- memory backend -------------------------------------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_memory_stays_within_both_bounds_under_a_flood() -> None:
    cache = MemoryCache(max_entries=5_000, max_bytes=200_000)
    for i in range(100_000):
        await cache.set(f"openrisk:flood:{i}", b"v" * (i % 100), ttl=60)
        if i % 1000 == 0:
            assert len(cache) <= cache.max_entries and cache.size_bytes <= cache.max_bytes
    stats = await cache.stats()
    assert 0 < len(cache) <= 5_000 and cache.size_bytes <= 200_000
    assert stats["keys"] == len(cache) and stats["bytes"] == cache.size_bytes
    assert await cache.get("openrisk:flood:99999") == b"v" * 99  # the newest survives
    assert await cache.get("openrisk:flood:0") is None


async def test_memory_entry_bound_binds_for_small_values() -> None:
    cache = MemoryCache(max_entries=100, max_bytes=10_000_000)
    await cache.set_many({f"k{i}": b"x" for i in range(100_000)})
    assert len(cache) == 100


async def test_memory_evicts_least_recently_used() -> None:
    cache = MemoryCache(max_entries=2)
    await cache.set("a", b"1")
    await cache.set("b", b"2")
    await cache.get("a")
    await cache.set("c", b"3")
    assert await cache.get_many(["a", "b", "c"]) == [b"1", None, b"3"]


async def test_memory_refuses_a_value_larger_than_the_whole_cache() -> None:
    cache = MemoryCache(max_bytes=100)
    await cache.set("small", b"x")
    await cache.set("huge", b"x" * 200)
    assert await cache.get("huge") is None
    assert await cache.get("small") == b"x"


async def test_memory_ttl_uses_the_monotonic_clock() -> None:
    clock = FakeClock()
    cache = MemoryCache(clock=clock)
    await cache.set("k", b"v", ttl=10)
    clock.now += 9.9
    assert await cache.get("k") == b"v"
    clock.now += 0.1
    assert await cache.get("k") is None
    assert len(cache) == 0


async def test_memory_incr_keeps_the_ttl() -> None:
    clock = FakeClock()
    cache = MemoryCache(clock=clock)
    await cache.set("n", b"1", ttl=10)
    assert await cache.incr("n") == 2
    clock.now += 10
    assert await cache.get("n") is None


async def test_memory_incr_of_a_non_integer_is_a_cache_error() -> None:
    cache = MemoryCache()
    await cache.set("k", b"text")
    with pytest.raises(CacheError):
        await cache.incr("k")


async def test_memory_non_positive_ttl_deletes() -> None:
    cache = MemoryCache()
    await cache.set("k", b"v")
    await cache.set("k", b"v2", ttl=0)
    assert await cache.get("k") is None


# --- redis backend --------------------------------------------------------------------------


@pytest.mark.redis
async def test_redis_clear_leaves_keys_outside_its_prefix(
    redis_cache: RedisCache, redis_url: str, run_id: str
) -> None:
    outsider = f"other-app:{run_id}"
    raw = Redis.from_url(redis_url)
    try:
        await raw.set(outsider, b"keep", ex=60)
        await redis_cache.set(f"{redis_cache.prefix}:mine", b"mine")
        await redis_cache.clear()
        assert await raw.get(outsider) == b"keep"
        assert await redis_cache.get(f"{redis_cache.prefix}:mine") is None
    finally:
        await raw.delete(outsider)
        await raw.aclose()


@pytest.mark.redis
async def test_redis_invalidate_pattern_works_in_batches(redis_cache: RedisCache) -> None:
    keys = {f"{redis_cache.prefix}:bulk:{i}": b"x" for i in range(1_234)}
    await redis_cache.set_many(keys, ttl=60)
    assert await redis_cache.invalidate_pattern(f"{redis_cache.prefix}:bulk:*") == 1_234


@pytest.mark.redis
async def test_redis_stats_report_server_figures(redis_cache: RedisCache) -> None:
    await redis_cache.get(f"{redis_cache.prefix}:absent")
    stats = await redis_cache.stats()
    assert stats["backend"] == "redis" and stats["mode"] == "standalone"
    assert stats["misses"] == 1
    assert isinstance(stats["bytes"], int) and stats["bytes"] > 0


async def test_redis_failures_surface_as_cache_error() -> None:
    cache = RedisCache("redis://127.0.0.1:1/0", retries=0)  # nothing listens on port 1
    with pytest.raises(CacheError):
        await cache.get("openrisk:x")
    with pytest.raises(CacheError):
        await cache.incr("openrisk:x")
    await cache.close()


async def test_an_unreachable_cluster_surfaces_as_cache_error() -> None:
    """redis-py reports a cluster it cannot reach with an exception outside RedisError."""
    cache = RedisCache("redis+cluster://127.0.0.1:1,127.0.0.1:2", retries=0)
    with pytest.raises(CacheError):
        await cache.get("openrisk:x")
    with pytest.raises(CacheError):
        await cache.get_many(["openrisk:x", "openrisk:y"])
    with pytest.raises(CacheError):
        await cache.set_many({"openrisk:x": b"1"})
    await cache.close()


def test_redis_refuses_an_empty_prefix() -> None:
    with pytest.raises(ValueError, match="prefix"):
        RedisCache("redis://127.0.0.1:6379/0", prefix="")


def test_redis_url_schemes_build_the_right_client() -> None:
    assert RedisCache("redis://127.0.0.1:6379/0").mode == "standalone"
    assert RedisCache("rediss://cache.example:6380/1").mode == "standalone"
    assert RedisCache("unix:///run/redis.sock?db=2").mode == "standalone"
    assert RedisCache("redis+sentinel://s1:26379,s2:26380/mymaster/3").mode == "sentinel"
    assert RedisCache("redis+cluster://n1:7000,n2:7001").mode == "cluster"
    with pytest.raises(ValueError, match="scheme"):
        RedisCache("http://127.0.0.1:6379")


def test_multi_host_urls_are_parsed() -> None:
    parsed = _parse_multi_host(
        "rediss+sentinel://:s%40cret@s1:26379,[::1]:26380,s3/mymaster/3", default_port=26379
    )
    assert parsed.hosts == [("s1", 26379), ("::1", 26380), ("s3", 26379)]
    assert parsed.path_parts == ["mymaster", "3"]
    assert (parsed.username, parsed.password, parsed.tls) == (None, "s@cret", True)


# --- factory --------------------------------------------------------------------------------


def test_factory_builds_the_named_backends() -> None:
    assert isinstance(build_cache("memory"), MemoryCache)
    assert isinstance(build_cache("none"), NullCache)
    assert isinstance(build_cache("redis", redis_url="redis://127.0.0.1:6379/0"), RedisCache)


def test_factory_passes_memory_limits() -> None:
    cache = build_cache("memory", memory_max_entries=7, memory_max_bytes=7000)
    assert isinstance(cache, MemoryCache)
    assert (cache.max_entries, cache.max_bytes) == (7, 7000)


def test_factory_rejects_unknown_backends() -> None:
    with pytest.raises(ValueError, match="unknown cache backend"):
        build_cache("memcached")
    with pytest.raises(ValueError, match="cannot import"):
        build_cache(f"no_such_module_{uuid.uuid4().hex}:Cache")
    with pytest.raises(ValueError, match="not a class"):
        build_cache("openrisk.core.cache.memory:NoSuchClass")
    with pytest.raises(TypeError, match="Cache interface"):
        build_cache("collections:OrderedDict")


class UrlOnlyCache(MemoryCache):
    def __init__(self, url: str) -> None:
        super().__init__()
        self.url = url


def test_factory_passes_the_url_when_the_class_needs_it() -> None:
    cache = build_cache(f"{__name__}:UrlOnlyCache", redis_url="redis://cache:6379/0")
    assert isinstance(cache, UrlOnlyCache) and cache.url == "redis://cache:6379/0"
