"""In-process LRU cache bounded by entry count and total bytes, with per-entry TTL."""

from __future__ import annotations

import fnmatch
import re
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from openrisk.core.cache.base import CacheError


@dataclass(slots=True)
class _Entry:
    value: bytes
    expires_at: float | None
    size: int


class MemoryCache:
    """Bounded LRU: evicts least recently used entries until both limits hold.

    Expiry is lazy (checked on access) against a monotonic clock, so expired entries only
    occupy room until they are touched or pushed out by LRU eviction. An entry's size is
    its key length plus its value length.
    """

    def __init__(
        self,
        max_entries: int = 10_000,
        max_bytes: int = 64 * 1024 * 1024,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_entries < 1 or max_bytes < 1:
            raise ValueError("max_entries and max_bytes must be positive")
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self._clock = clock
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self._bytes = 0
        self._hits = 0
        self._misses = 0
        self._evictions = 0

    @property
    def size_bytes(self) -> int:
        return self._bytes

    def __len__(self) -> int:
        return len(self._entries)

    async def get(self, key: str) -> bytes | None:
        entry = self._live_entry(key)
        if entry is None:
            self._misses += 1
            return None
        self._hits += 1
        return entry.value

    async def set(self, key: str, value: bytes, ttl: int | None = None) -> None:
        self._store(key, value, ttl)

    async def add(self, key: str, value: bytes, ttl: int | None = None) -> bool:
        if self._live_entry(key) is not None:
            return False
        self._store(key, value, ttl)
        return True

    async def delete(self, *keys: str) -> int:
        return sum(self._remove(key) for key in keys)

    async def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        return [await self.get(key) for key in keys]

    async def set_many(self, mapping: Mapping[str, bytes], ttl: int | None = None) -> None:
        for key, value in mapping.items():
            self._store(key, value, ttl)

    async def incr(self, key: str) -> int:
        entry = self._live_entry(key)
        try:
            current = int(entry.value) if entry else 0
        except ValueError as exc:
            raise CacheError(f"value at {key!r} is not an integer") from exc
        new_value = current + 1
        self._store_entry(key, str(new_value).encode(), entry.expires_at if entry else None)
        return new_value

    async def invalidate_pattern(self, pattern: str) -> int:
        matches = re.compile(fnmatch.translate(pattern)).match
        doomed = [key for key in self._entries if matches(key)]
        return sum(self._remove(key) for key in doomed)

    async def clear(self) -> None:
        self._entries.clear()
        self._bytes = 0

    async def ping(self) -> bool:
        return True

    async def stats(self) -> dict[str, object]:
        return {
            "backend": "memory",
            "hits": self._hits,
            "misses": self._misses,
            "keys": len(self._entries),
            "bytes": self._bytes,
            "evictions": self._evictions,
            "max_entries": self.max_entries,
            "max_bytes": self.max_bytes,
        }

    async def close(self) -> None:
        return None

    def _live_entry(self, key: str) -> _Entry | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry.expires_at is not None and entry.expires_at <= self._clock():
            self._remove(key)
            return None
        self._entries.move_to_end(key)
        return entry

    def _store(self, key: str, value: bytes, ttl: int | None) -> None:
        if ttl is not None and ttl <= 0:
            self._remove(key)
            return
        expires_at = None if ttl is None else self._clock() + ttl
        self._store_entry(key, bytes(value), expires_at)

    def _store_entry(self, key: str, value: bytes, expires_at: float | None) -> None:
        self._remove(key)
        size = len(key) + len(value)
        if size > self.max_bytes:
            return  # could never fit; storing it would only flush everything else
        self._entries[key] = _Entry(value, expires_at, size)
        self._bytes += size
        self._evict_over_limits()

    def _evict_over_limits(self) -> None:
        while len(self._entries) > self.max_entries or self._bytes > self.max_bytes:
            _, entry = self._entries.popitem(last=False)
            self._bytes -= entry.size
            self._evictions += 1

    def _remove(self, key: str) -> int:
        entry = self._entries.pop(key, None)
        if entry is None:
            return 0
        self._bytes -= entry.size
        return 1
