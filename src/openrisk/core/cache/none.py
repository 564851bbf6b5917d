"""Pass-through cache: stores nothing, so every read misses."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence


class NullCache:
    """Stores nothing. `incr` keeps a process-local counter so generation logic still works."""

    def __init__(self) -> None:
        self._counters: Counter[str] = Counter()

    async def get(self, key: str) -> bytes | None:
        return None

    async def set(self, key: str, value: bytes, ttl: int | None = None) -> None:
        return None

    async def add(self, key: str, value: bytes, ttl: int | None = None) -> bool:
        return True

    async def delete(self, *keys: str) -> int:
        return 0

    async def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        return [None] * len(keys)

    async def set_many(self, mapping: Mapping[str, bytes], ttl: int | None = None) -> None:
        return None

    async def incr(self, key: str) -> int:
        self._counters[key] += 1
        return self._counters[key]

    async def invalidate_pattern(self, pattern: str) -> int:
        return 0

    async def clear(self) -> None:
        self._counters.clear()

    async def ping(self) -> bool:
        return True

    async def stats(self) -> dict[str, object]:
        return {"backend": "none", "hits": 0, "misses": 0, "keys": 0, "bytes": 0}

    async def close(self) -> None:
        return None
