"""The one async cache interface every backend implements."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol, runtime_checkable


class CacheError(Exception):
    """A backend failed (connection refused, timeout, protocol error...)."""


class CacheUnavailable(CacheError):
    """The cache cannot be used right now; callers should bypass caching."""


@runtime_checkable
class Cache(Protocol):
    """Byte-oriented key/value cache.

    Keys are full keys (see `keys.py`); values are opaque bytes. `ttl` is in seconds, `None`
    means no expiry. Backends raise `CacheError` for backend failures; wrap a backend in
    `ResilientCache` to turn failures into misses and no-ops.
    """

    async def get(self, key: str) -> bytes | None: ...

    async def set(self, key: str, value: bytes, ttl: int | None = None) -> None: ...

    async def add(self, key: str, value: bytes, ttl: int | None = None) -> bool:
        """Store only if the key is absent (SET NX); True when this call stored it."""
        ...

    async def delete(self, *keys: str) -> int: ...

    async def get_many(self, keys: Sequence[str]) -> list[bytes | None]: ...

    async def set_many(self, mapping: Mapping[str, bytes], ttl: int | None = None) -> None: ...

    async def incr(self, key: str) -> int:
        """Atomically add one to an integer value (missing counts as 0); keeps any TTL."""
        ...

    async def invalidate_pattern(self, pattern: str) -> int:
        """Delete keys matching a glob; may scan the keyspace, so admin use only."""
        ...

    async def clear(self) -> None:
        """Delete every key this cache owns (never other applications' keys)."""
        ...

    async def ping(self) -> bool: ...

    async def stats(self) -> dict[str, object]:
        """At least `backend`; `hits`, `misses`, `keys`, `bytes` where known."""
        ...

    async def close(self) -> None: ...
