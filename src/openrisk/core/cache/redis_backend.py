"""Redis backend (redis-py asyncio + hiredis): standalone, TLS, unix socket, Sentinel, Cluster.

Accepted URLs:
    redis://[[user]:password@]host:port/db        rediss://... (TLS)       unix:///path?db=N
    redis+sentinel://[[user]:password@]host:port[,host2:port2...]/service_name[/db]
    redis+cluster://[[user]:password@]host:port[,host2:port2...]
(`rediss+sentinel://` and `rediss+cluster://` use TLS.) Every redis-py failure surfaces as
`CacheError`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel
from redis.backoff import NoBackoff
from redis.exceptions import RedisClusterException, RedisError

from openrisk.core.cache.base import CacheError

DEFAULT_PREFIX = "openrisk:"
_UNLINK_BATCH = 500
_SCAN_COUNT = 1000
_SENTINEL_SCHEMES = {"redis+sentinel", "rediss+sentinel"}
_CLUSTER_SCHEMES = {"redis+cluster", "rediss+cluster"}


@dataclass(frozen=True, slots=True)
class _ClientOptions:
    socket_timeout: float
    socket_connect_timeout: float
    max_connections: int
    pool_timeout: float
    retries: int
    health_check_interval: float

    def connection_kwargs(self) -> dict[str, Any]:
        return {
            "socket_timeout": self.socket_timeout,
            "socket_connect_timeout": self.socket_connect_timeout,
            "max_connections": self.max_connections,
            "retry": Retry(NoBackoff(), self.retries),
            "health_check_interval": self.health_check_interval,
        }


@dataclass(frozen=True, slots=True)
class _MultiHostUrl:
    hosts: list[tuple[str, int]]
    path_parts: list[str]
    username: str | None
    password: str | None
    tls: bool


class RedisCache:
    """Cache on Redis. `prefix` marks the keys this cache owns: `clear()` deletes only those."""

    def __init__(
        self,
        url: str = "redis://127.0.0.1:6379/0",
        *,
        prefix: str = DEFAULT_PREFIX,
        socket_timeout: float = 0.25,
        socket_connect_timeout: float = 0.25,
        max_connections: int = 50,
        pool_timeout: float = 0.25,
        retries: int = 1,
        health_check_interval: float = 30.0,
    ) -> None:
        if not prefix:
            raise ValueError("prefix must not be empty: clear() would delete the whole database")
        self.prefix = prefix
        options = _ClientOptions(
            socket_timeout=socket_timeout,
            socket_connect_timeout=socket_connect_timeout,
            max_connections=max_connections,
            pool_timeout=pool_timeout,
            retries=retries,
            health_check_interval=health_check_interval,
        )
        self.mode, self._client, self._sentinel = _connect(url, options)
        self._hits = 0
        self._misses = 0

    async def get(self, key: str) -> bytes | None:
        with _redis_errors("get"):
            value = _as_bytes(await self._client.get(key))
        self._count(1 if value is not None else 0, 1 if value is None else 0)
        return value

    async def set(self, key: str, value: bytes, ttl: int | None = None) -> None:
        with _redis_errors("set"):
            if ttl is not None and ttl <= 0:
                await self._client.unlink(key)
            else:
                await self._client.set(key, value, ex=ttl)

    async def add(self, key: str, value: bytes, ttl: int | None = None) -> bool:
        with _redis_errors("add"):
            return bool(await self._client.set(key, value, ex=ttl, nx=True))

    async def delete(self, *keys: str) -> int:
        if not keys:
            return 0
        with _redis_errors("delete"):
            return int(await self._client.unlink(*keys))

    async def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        if not keys:
            return []
        with _redis_errors("get_many"):
            if isinstance(self._client, RedisCluster):
                raw_values = await self._client.mget_nonatomic(list(keys))
            else:
                raw_values = await self._client.mget(list(keys))
        values = [_as_bytes(value) for value in raw_values]
        found = sum(value is not None for value in values)
        self._count(found, len(values) - found)
        return values

    async def set_many(self, mapping: Mapping[str, bytes], ttl: int | None = None) -> None:
        if not mapping:
            return
        if ttl is not None and ttl <= 0:
            await self.delete(*mapping)
            return
        with _redis_errors("set_many"):
            async with self._client.pipeline(transaction=False) as pipe:
                for key, value in mapping.items():
                    pipe.set(key, value, ex=ttl)
                await pipe.execute()

    async def incr(self, key: str) -> int:
        with _redis_errors("incr"):
            return int(await self._client.incr(key))

    async def invalidate_pattern(self, pattern: str) -> int:
        with _redis_errors("invalidate_pattern"):
            return await self._unlink_matching(pattern)

    async def clear(self) -> None:
        with _redis_errors("clear"):
            await self._unlink_matching(_escape_glob(self.prefix) + "*")

    async def ping(self) -> bool:
        with _redis_errors("ping"):
            return bool(await self._client.ping())

    async def stats(self) -> dict[str, object]:
        with _redis_errors("stats"):
            keys = int(await self._client.dbsize())
            memory = await self._client.info("memory")
        return {
            "backend": "redis",
            "mode": self.mode,
            "prefix": self.prefix,
            "hits": self._hits,
            "misses": self._misses,
            "keys": keys,  # whole logical database, counting without a scan
            "bytes": _used_memory(memory),
        }

    async def close(self) -> None:
        with _redis_errors("close"):
            await self._client.aclose()
            if self._sentinel is not None:
                for sentinel_client in self._sentinel.sentinels:
                    await sentinel_client.aclose()

    async def _unlink_matching(self, pattern: str) -> int:
        removed = 0
        batch: list[bytes] = []
        async for key in self._client.scan_iter(match=pattern, count=_SCAN_COUNT):
            batch.append(key)
            if len(batch) >= _UNLINK_BATCH:
                removed += int(await self._client.unlink(*batch))
                batch = []
        if batch:
            removed += int(await self._client.unlink(*batch))
        return removed

    def _count(self, hits: int, misses: int) -> None:
        self._hits += hits
        self._misses += misses


@contextmanager
def _redis_errors(operation: str) -> Iterator[None]:
    # The cluster client reports an unreachable cluster or an uncovered slot with
    # RedisClusterException, which is not a RedisError.
    try:
        yield
    except (RedisError, RedisClusterException, OSError, TimeoutError) as exc:
        raise CacheError(f"redis {operation} failed: {exc}") from exc


def _connect(
    url: str, options: _ClientOptions
) -> tuple[str, Redis | RedisCluster, Sentinel | None]:
    scheme = urlsplit(url).scheme
    if scheme in _SENTINEL_SCHEMES:
        client, sentinel = _sentinel_client(url, options)
        return "sentinel", client, sentinel
    if scheme in _CLUSTER_SCHEMES:
        return "cluster", _cluster_client(url, options), None
    if scheme in {"redis", "rediss", "unix"}:
        return "standalone", _standalone_client(url, options), None
    raise ValueError(f"unsupported redis URL scheme {scheme!r} in {_redact(url)}")


def _standalone_client(url: str, options: _ClientOptions) -> Redis:
    pool = BlockingConnectionPool.from_url(
        url, timeout=options.pool_timeout, **options.connection_kwargs()
    )
    return Redis(connection_pool=pool)


def _sentinel_client(url: str, options: _ClientOptions) -> tuple[Redis, Sentinel]:
    parsed = _parse_multi_host(url, default_port=26379)
    if not parsed.path_parts:
        raise ValueError(f"sentinel URL needs a service name: {_redact(url)}")
    service_name = parsed.path_parts[0]
    db = int(parsed.path_parts[1]) if len(parsed.path_parts) > 1 else 0
    sentinel = Sentinel(  # type: ignore[no-untyped-call, unused-ignore]  # typed from redis 8.2
        parsed.hosts,
        socket_timeout=options.socket_timeout,
        socket_connect_timeout=options.socket_connect_timeout,
    )
    client = sentinel.master_for(
        service_name,
        db=db,
        username=parsed.username,
        password=parsed.password,
        ssl=parsed.tls,
        **options.connection_kwargs(),
    )
    return client, sentinel


def _cluster_client(url: str, options: _ClientOptions) -> RedisCluster:
    parsed = _parse_multi_host(url, default_port=6379)
    return RedisCluster(
        startup_nodes=[ClusterNode(host, port) for host, port in parsed.hosts],
        username=parsed.username,
        password=parsed.password,
        ssl=parsed.tls,
        **options.connection_kwargs(),
    )


def _parse_multi_host(url: str, *, default_port: int) -> _MultiHostUrl:
    parsed = urlsplit(url)
    credentials, _, host_list = parsed.netloc.rpartition("@")
    username, _, password = credentials.partition(":")
    hosts = [_host_port(item, default_port) for item in host_list.split(",") if item]
    if not hosts:
        raise ValueError(f"no host in redis URL {_redact(url)}")
    return _MultiHostUrl(
        hosts=hosts,
        path_parts=[part for part in parsed.path.split("/") if part],
        username=unquote(username) or None,
        password=unquote(password) or None,
        tls=parsed.scheme.startswith("rediss"),
    )


def _host_port(item: str, default_port: int) -> tuple[str, int]:
    if item.startswith("["):  # [ipv6]:port
        host, _, rest = item[1:].partition("]")
        return host, int(rest[1:]) if rest.startswith(":") else default_port
    host, has_port, port = item.partition(":")
    return host, int(port) if has_port else default_port


def _as_bytes(value: bytes | str | None) -> bytes | None:
    # Responses are bytes (decode_responses is off); the client's annotations also allow str.
    return value.encode() if isinstance(value, str) else value


def _escape_glob(text: str) -> str:
    return re.sub(r"([*?\[\]\\])", r"\\\1", text)


def _used_memory(info: Mapping[str, Any]) -> int | None:
    if "used_memory" in info:
        return int(info["used_memory"])
    per_node = [node["used_memory"] for node in info.values() if isinstance(node, Mapping)]
    return sum(int(value) for value in per_node) if per_node else None


def _redact(url: str) -> str:
    return re.sub(r"//[^@/]*@", "//***@", url)
