"""RedisCache through Sentinel and Cluster URLs, against real servers this module starts."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import pytest

from openrisk.core.cache import RedisCache

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
