"""O(1) invalidation with per-tenant, per-namespace generation numbers.

Cached answers embed the current generation of every namespace they depend on in their
key. A write bumps the generation, so old keys are never read again and simply expire by
TTL: one INCR per namespace instead of a key scan.

A generation never restarts from a small, predictable number: a missing generation key
(never written, or evicted by an LRU) is seeded with a random 60-bit value (set-if-absent,
so concurrent readers agree on one), and a bump that finds the key missing (INCR answered 1)
re-seeds it. Otherwise a lost key could bring a generation back to a value whose old
entries are still cached.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from openrisk.core.cache.base import Cache, CacheError, CacheUnavailable
from openrisk.core.cache.keys import PREFIX, tenant_scope, validate_namespace
from openrisk.core.cache.metrics import CACHE_INVALIDATIONS, namespace_label

_SEED_BITS = 60


class GenerationStore:
    def __init__(self, cache: Cache) -> None:
        self._cache = cache

    @staticmethod
    def key(tenant_id: str | None, namespace: str) -> str:
        # "_gen" can't clash with a value key: namespaces must start with a letter.
        scope = "" if tenant_id is None else tenant_scope(tenant_id)
        return f"{PREFIX}{scope}_gen:{validate_namespace(namespace)}"

    async def current(self, tenant_id: str | None, namespaces: Sequence[str]) -> dict[str, int]:
        """Generation of each namespace, in one `get_many`; raises `CacheUnavailable`."""
        names = list(dict.fromkeys(namespaces))
        if not names:
            return {}
        keys = [self.key(tenant_id, name) for name in names]
        with _unavailable_on_error():
            raw_values = await self._cache.get_many(keys)
        parsed = [_parse(raw) for raw in raw_values]
        missing = [key for key, generation in zip(keys, parsed, strict=True) if generation is None]
        seeds = dict(zip(missing, await self._seed_all(missing), strict=True))
        return {
            name: seeds[key] if generation is None else generation
            for name, key, generation in zip(names, keys, parsed, strict=True)
        }

    async def bump(self, tenant_id: str | None, *namespaces: str) -> None:
        """Invalidate everything cached under these namespaces; raises `CacheUnavailable`."""
        names = list(dict.fromkeys(namespaces))
        with _unavailable_on_error():
            await asyncio.gather(*(self._bump_one(tenant_id, name) for name in names))

    async def _seed_all(self, keys: Sequence[str]) -> list[int]:
        if not keys:
            return []
        with _unavailable_on_error():
            return list(await asyncio.gather(*(self._seed(key) for key in keys)))

    async def _seed(self, key: str) -> int:
        """Start a missing generation at a random value; every racing reader gets the winner."""
        seed = _fresh_generation()
        if await self._cache.add(key, str(seed).encode()):
            return seed
        # Lost the race: use the winner's seed. If it vanished meanwhile, our own seed is
        # still safe - nobody else uses it, so we merely cache under an unread key.
        winner = _parse(await self._cache.get(key))
        return seed if winner is None else winner

    async def _bump_one(self, tenant_id: str | None, namespace: str) -> None:
        key = self.key(tenant_id, namespace)
        if await self._cache.incr(key) == 1:
            await self._cache.set(key, str(_fresh_generation()).encode())
        CACHE_INVALIDATIONS.labels(namespace=namespace_label(namespace)).inc()


@contextmanager
def _unavailable_on_error() -> Iterator[None]:
    try:
        yield
    except CacheUnavailable:
        raise
    except CacheError as exc:
        raise CacheUnavailable(str(exc)) from exc


def _parse(raw: bytes | None) -> int | None:
    if raw is None:
        return None
    try:
        return int(raw)
    except ValueError:
        return None


def _fresh_generation() -> int:
    return secrets.randbits(_SEED_BITS)
