"""Cache test fixtures: the shared Redis (or a clear skip), private redis-servers, a local
3-master Redis Cluster, key spaces."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import pytest
from redis import Redis as SyncRedis
from redis.asyncio import Redis
from redis.exceptions import RedisError

from openrisk.core.cache.redis_backend import RedisCache

REDIS_HOST, REDIS_PORT, REDIS_TEST_DB = "127.0.0.1", 6379, 15
REDIS_TEST_URL = f"redis://{REDIS_HOST}:{REDIS_PORT}/{REDIS_TEST_DB}"


def skip_or_fail(reason: str) -> NoReturn:
    """Missing infrastructure skips locally and fails on CI."""
    if os.environ.get("CI") == "true":
        pytest.fail(reason)
    pytest.skip(reason)


@pytest.fixture(scope="session")
async def redis_url() -> str:
    client = Redis(host=REDIS_HOST, port=REDIS_PORT, socket_connect_timeout=0.5)
    try:
        await client.ping()
    except Exception as exc:
        skip_or_fail(f"Redis not reachable at {REDIS_HOST}:{REDIS_PORT}: {exc}")
    finally:
        await client.aclose()
    return REDIS_TEST_URL


@pytest.fixture(scope="session")
def redis_server_binary() -> str:
    path = shutil.which("redis-server")
    if path is None:
        skip_or_fail("redis-server binary not found on PATH")
    return path


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class RedisProcess:
    """A throw-away redis-server (or sentinel) on a port of our own; can be killed and restarted."""

    def __init__(
        self,
        binary: str,
        workdir: Path,
        args: Sequence[str],
        *,
        config: str | None = None,
        cluster: bool = False,
    ) -> None:
        self.port = free_port()
        self.workdir = workdir
        self.command = [binary]
        if config is not None:
            config_path = workdir / f"redis-{self.port}.conf"
            config_path.write_text(config)
            self.command.append(str(config_path))
        self.command += ["--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(workdir)]
        self.command += ["--save", "", "--appendonly", "no", *args]
        self.bus_port: int | None = None
        if cluster:  # explicit bus port: the default, port + 10000, may not exist
            self.bus_port = free_port()
            self.command += ["--cluster-enabled", "yes", "--cluster-port", str(self.bus_port)]
            self.command += ["--cluster-config-file", f"nodes-{self.port}.conf"]
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            self.command, cwd=self.workdir, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        self._wait_until_ready()

    def kill(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait(timeout=5)
            self.process = None

    def client(self) -> SyncRedis:
        return SyncRedis(host="127.0.0.1", port=self.port, socket_connect_timeout=0.2)

    def _wait_until_ready(self) -> None:
        deadline = time.monotonic() + 5
        with self.client() as client:
            while True:
                try:
                    client.ping()
                    return
                except RedisError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.05)


@pytest.fixture
def spawn_redis(redis_server_binary: str, tmp_path: Path) -> Iterator[Callable[..., RedisProcess]]:
    """`spawn_redis(*extra_args, config=None, cluster=False)` starts a server.

    Every server started is killed afterwards.
    """
    spawned: list[RedisProcess] = []

    def spawn(*args: str, config: str | None = None, cluster: bool = False) -> RedisProcess:
        server = RedisProcess(redis_server_binary, tmp_path, args, config=config, cluster=cluster)
        spawned.append(server)
        server.start()
        return server

    yield spawn
    for server in spawned:
        server.kill()


@dataclass
class LocalCluster:
    """Three cluster-enabled redis-servers on loopback, every slot assigned (no replicas)."""

    nodes: list[RedisProcess]

    @property
    def url(self) -> str:
        return "redis+cluster://" + ",".join(f"127.0.0.1:{node.port}" for node in self.nodes)

    def stop(self) -> None:
        for node in self.nodes:
            node.kill()


def start_cluster(
    binary: str,
    workdir: Path,
    masters: int = 3,
    *,
    announce: Callable[[int], int] | None = None,
) -> LocalCluster:
    """``redis-cli --cluster create`` over fresh nodes; waits until every node says ok.

    ``announce(port)`` gives the client port a node at ``port`` tells clients (CLUSTER SLOTS,
    MOVED) to use instead, say a proxy's, so that clients reach the nodes only through it;
    the nodes still talk to each other directly on their bus ports.
    """
    cli = shutil.which("redis-cli")
    if cli is None:
        skip_or_fail("redis-cli not found on PATH (needed to create a Redis Cluster)")
    cluster = LocalCluster([])
    try:
        for _ in range(masters):
            node = RedisProcess(binary, workdir, [], cluster=True)
            if announce is not None:
                node.command += ["--cluster-announce-ip", "127.0.0.1"]
                node.command += ["--cluster-announce-port", str(announce(node.port))]
                node.command += ["--cluster-announce-bus-port", str(node.bus_port)]
            cluster.nodes.append(node)
            node.start()
        addresses = [f"127.0.0.1:{node.port}" for node in cluster.nodes]
        created = subprocess.run(
            [cli, "--cluster", "create", *addresses, "--cluster-replicas", "0", "--cluster-yes"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        if created.returncode != 0:
            raise RuntimeError(f"redis-cli --cluster create failed: {created.stdout[-800:]}")
        deadline = time.monotonic() + 15
        for node in cluster.nodes:
            with node.client() as client:
                while client.cluster("INFO").get("cluster_state") != "ok":
                    if time.monotonic() > deadline:
                        raise RuntimeError("the local Redis Cluster never became ready")
                    time.sleep(0.05)
    except Exception as exc:
        cluster.stop()
        skip_or_fail(f"could not start a local Redis Cluster: {exc}")
    return cluster


@pytest.fixture(scope="session")
def redis_cluster(
    redis_server_binary: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LocalCluster]:
    """One local Redis Cluster for the session (a second or so to start)."""
    cluster = start_cluster(redis_server_binary, tmp_path_factory.mktemp("cluster"))
    yield cluster
    cluster.stop()


@pytest.fixture
def run_id() -> str:
    return "test" + uuid.uuid4().hex[:12]


def owned_prefix(run_id: str) -> str:
    """The keys of tenants whose id starts with ``run_id`` (see `keys.tenant_key`)."""
    return f"openrisk:t:{{{run_id}"


# Room for 100 concurrent lookups on a busy host: no queueing on the client pool, and time
# enough for 100 fresh connections (the production 0.25 s would open the circuit breaker,
# and lookups that bypass the cache are not the misses these tests count).
ROOMY: dict[str, Any] = {
    "max_connections": 200,
    "pool_timeout": 5.0,
    "socket_timeout": 5.0,
    "socket_connect_timeout": 5.0,
}


@pytest.fixture
async def redis_cache(redis_url: str, run_id: str) -> AsyncIterator[RedisCache]:
    """A RedisCache owning only `openrisk:t:{<run_id>...` keys in db 15; emptied afterwards."""
    cache = RedisCache(redis_url, prefix=owned_prefix(run_id), **ROOMY)
    yield cache
    await cache.clear()
    await cache.close()


@pytest.fixture
async def redis_cluster_cache(
    redis_cluster: LocalCluster, run_id: str
) -> AsyncIterator[RedisCache]:
    """The same on the local Redis Cluster."""
    cache = RedisCache(redis_cluster.url, prefix=owned_prefix(run_id), **ROOMY)
    yield cache
    await cache.clear()
    await cache.close()
