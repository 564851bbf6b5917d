"""A tiny third-party-style backend, loaded by dotted path in the contract tests."""

from __future__ import annotations

import fnmatch
import time
from collections.abc import Mapping, Sequence


class DictCache:
    def __init__(self) -> None:
        self._data: dict[str, tuple[bytes, float | None]] = {}

    async def get(self, key: str) -> bytes | None:
        item = self._data.get(key)
        if item is None or (item[1] is not None and item[1] <= time.monotonic()):
            self._data.pop(key, None)
            return None
        return item[0]

    async def set(self, key: str, value: bytes, ttl: int | None = None) -> None:
        self._data[key] = (value, None if ttl is None else time.monotonic() + ttl)

    async def add(self, key: str, value: bytes, ttl: int | None = None) -> bool:
        if await self.get(key) is not None:
            return False
        await self.set(key, value, ttl)
        return True

    async def delete(self, *keys: str) -> int:
        return sum(self._data.pop(key, None) is not None for key in keys)

    async def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        return [await self.get(key) for key in keys]

    async def set_many(self, mapping: Mapping[str, bytes], ttl: int | None = None) -> None:
        for key, value in mapping.items():
            await self.set(key, value, ttl)

    async def incr(self, key: str) -> int:
        value = int(await self.get(key) or 0) + 1
        expires_at = self._data[key][1] if key in self._data else None
        self._data[key] = (str(value).encode(), expires_at)
        return value

    async def invalidate_pattern(self, pattern: str) -> int:
        return await self.delete(*fnmatch.filter(list(self._data), pattern))

    async def clear(self) -> None:
        self._data.clear()

    async def ping(self) -> bool:
        return True

    async def stats(self) -> dict[str, object]:
        return {"backend": "dict", "keys": len(self._data)}

    async def close(self) -> None:
        return None
