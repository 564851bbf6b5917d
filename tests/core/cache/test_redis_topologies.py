"""RedisCache through Sentinel and Cluster URLs, against real servers this module starts, and
the response cache on a local 3-master Redis Cluster (its keys hash-tagged by tenant)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import pytest
from redis.crc import key_slot

from openrisk.core.cache import RedisCache, ResponseCache
from openrisk.core.cache.response import Lookup

if TYPE_CHECKING:  # conftest is not importable by name reliably at run time
    from conftest import RedisProcess

pytestmark = pytest.mark.redis


async def exercise(cache: RedisCache) -> None:
    """Enough of the interface to prove commands reach the right server(s)."""
    keys = {f"openrisk:topology:{i}": str(i).encode() for i in range(50)}  # many hash slots
    await cache.set_many(keys, ttl=60)
    assert await cache.get_many(list(keys)) == list(keys.values())
    assert await cache.add("openrisk:topology:0", b"x") is False
    assert await cache.incr("openrisk:topology:counter") == 1
    assert await cache.invalidate_pattern("openrisk:topology:1*") == 11
    assert await cache.ping() is True
    assert (await cache.stats())["keys"] == 40
    await cache.clear()
    assert await cache.get("openrisk:topology:2") is None


async def test_sentinel_url(spawn_redis: Callable[..., RedisProcess]) -> None:
    primary = spawn_redis()
    monitor = f"sentinel monitor mymaster 127.0.0.1 {primary.port} 1\n"
    sentinel = spawn_redis("--sentinel", config=monitor)
    cache = RedisCache(f"redis+sentinel://127.0.0.1:{sentinel.port}/mymaster/0")
    assert cache.mode == "sentinel"
    await exercise(cache)
    await cache.close()


def own_every_slot(node: RedisProcess) -> None:
    """Turn one cluster-enabled server into a complete single-node cluster."""
    with node.client() as client:
        client.execute_command("CLUSTER", "ADDSLOTSRANGE", "0", "16383")
        deadline = time.monotonic() + 10
        while client.cluster("INFO").get("cluster_state") != "ok":
            assert time.monotonic() < deadline, "single-node cluster never became ready"
            time.sleep(0.05)


async def test_cluster_url(spawn_redis: Callable[..., RedisProcess]) -> None:
    node = spawn_redis(cluster=True)
    own_every_slot(node)
    cache = RedisCache(f"redis+cluster://127.0.0.1:{node.port}")
    assert cache.mode == "cluster"
    await exercise(cache)
    await cache.close()


def test_an_answer_and_its_generations_share_their_tenants_slot() -> None:
    """Hash-tagged by tenant: reading an answer's generations is one MGET on one node."""
    lookup = Lookup.build(
        tenant_id="tenant-1",
        namespace="risk:detail",
        key_parts=("all", "2026-06-01", "d1"),
        depends_on=("risks", "assets", "risk.ab"),
    )
    keys = [*lookup.generation_keys, lookup.key([1, 2, 3])]
    assert len({key_slot(key.encode()) for key in keys}) == 1
    other = Lookup.build(
        tenant_id="tenant-2", namespace="risk:detail", key_parts=("d1",), depends_on=("risks",)
    )
    assert key_slot(other.generation_keys[0].encode()) != key_slot(keys[0].encode())


async def test_the_response_cache_on_a_three_master_cluster(
    redis_cluster_cache: RedisCache, run_id: str
) -> None:
    """Tenants land on different masters; each one's reads and bumps stay in its slot."""
    cache = ResponseCache(redis_cluster_cache)
    tenants = [f"{run_id}-{n}" for n in range(12)]

    async def body() -> bytes:
        return b"answer"

    def place(tenant: str) -> Lookup:
        return Lookup.build(
            tenant_id=tenant,
            namespace="risk:list",
            key_parts=("p",),
            depends_on=("risks", "assets"),
        )

    for tenant in tenants:
        assert (await cache.answer(place(tenant), body)).status == "MISS"
        assert (await cache.answer(place(tenant), body)).status == "HIT"
    assert len({key_slot(place(t).generation_keys[0].encode()) % 3 for t in tenants}) > 1
    assert await cache.bump(tenants[0], "assets")
    assert (await cache.answer(place(tenants[0]), body)).status == "MISS"
    assert (await cache.answer(place(tenants[1]), body)).status == "HIT"
