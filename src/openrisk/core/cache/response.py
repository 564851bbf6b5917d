"""Response cache: serialised answers (bytes) with ETag, X-Cache status and invalidation.

What is cached, under which key, is declared by the cached reads (``core/cache/reads.py``);
this is the engine they answer through. Writes bump generations through the unit of work.

Read-your-writes: a reader never gets an answer older than its own last write. A key embeds
the generation of every namespace the answer depends on, and the generations are read
*before* computing. After computing, the body is stored under the key built from those
earlier generations, never from fresh ones. A writer
commits first and bumps the generation second, so:
- a read that starts after the bump sees the new generation and computes from committed data;
- a slow read that started before the write may compute an old answer, but it stores it under
  the old generation, which no reader looks up any more: the stale answer is unreachable and
  just expires by TTL.
If a bump fails (cache down), the invalidation is kept pending and retried before this
process uses the cache again; until then this process bypasses the cache. Other processes'
failed bumps are in the outbox: after any failure of the shared cache this process serves
nothing cached until it has applied them (`ResilientCache.recover`).

Single flight: concurrent misses on one full key in a process compute once; the others wait
for that result. (The key includes the generations, so a reader that already saw a newer
generation never joins an older computation.)

Two levels (`local`): with a shared backend (Redis), answers are also kept in this process's
memory under the same versioned key. That is coherent without any message: a versioned key
only ever names answers computed at those generations, and the generations themselves are
always read from the shared cache, so a hit from process memory is exactly as fresh as one
from Redis; it only saves moving the body. (Coherence through pub/sub messages instead would
let a worker serve an old answer until the message arrives, breaking read-your-writes.)

`peek` is the hot path's lookup (`core.cache.hot_path`): it answers hits only, reading the
generations and any guard generations (the caller's authorization) in one `get_many`.

A cache failure never fails a request: it yields status BYPASS (computed, not cached).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from openrisk.core.cache.base import Cache, CacheUnavailable
from openrisk.core.cache.generations import GenerationStore
from openrisk.core.cache.keys import joined_parts, scoped_key
from openrisk.core.cache.memory import MemoryCache
from openrisk.core.cache.metrics import CACHE_REQUESTS, namespace_label
from openrisk.core.cache.resilient import ResilientCache, always_tried, usable

CacheStatus = Literal["HIT", "MISS", "BYPASS"]
Compute = Callable[[], Awaitable[bytes]]
logger = logging.getLogger(__name__)

DEFAULT_TTL = 300
_MAGIC = b"orc1"
_ETAG_HEX_LEN = 32
_HEADER_LEN = len(_MAGIC) + _ETAG_HEX_LEN
# Process-memory copies live at most this long, so an answer changed outside any domain
# event (an operator's SQL) outlives its TTL in the shared cache by at most a minute.
LOCAL_TTL_MAX_S = 60


@dataclass(frozen=True, slots=True)
class CachedAnswer:
    body: bytes
    etag: str
    status: CacheStatus

    @property
    def headers(self) -> dict[str, str]:
        return {"ETag": self.etag, "X-Cache": self.status}

    def not_modified(self, if_none_match: str | None) -> bool:
        return etag_matches(if_none_match, self.etag)


@dataclass(frozen=True, slots=True)
class Lookup:
    """Where one answer lives: its key without the generations, and the generations it needs.

    The key is `<scoped key of namespace>:g<generation>.<generation>...:<parts>`, the
    generations (hex) in the order of `names` (the sorted dependency namespaces).
    """

    tenant_id: str | None
    namespace: str
    names: tuple[str, ...]
    generation_keys: tuple[str, ...]
    head: str
    tail: str

    @classmethod
    def build(
        cls,
        *,
        tenant_id: str | None,
        namespace: str,
        key_parts: Sequence[str],
        depends_on: Sequence[str],
    ) -> Lookup:
        names = tuple(sorted(set(depends_on)))
        return cls(
            tenant_id=tenant_id,
            namespace=namespace,
            names=names,
            generation_keys=tuple(GenerationStore.key(tenant_id, name) for name in names),
            head=scoped_key(tenant_id, namespace) + ":g",
            tail=joined_parts(key_parts),
        )

    def key(self, generations: Sequence[int]) -> str:
        return self.head + ".".join(f"{generation:x}" for generation in generations) + self.tail


def compute_etag(body: bytes) -> str:
    """Strong ETag: the quoted blake2b-128 of the body."""
    return f'"{_etag_hex(body)}"'


def etag_matches(if_none_match: str | None, etag: str) -> bool:
    """If-None-Match evaluation (weak comparison, as RFC 9110 prescribes for it)."""
    if not if_none_match:
        return False
    if if_none_match.strip() == "*":
        return True
    candidates = (tag.strip().removeprefix("W/") for tag in if_none_match.split(","))
    return etag.removeprefix("W/") in candidates


class ResponseCache:
    """Caches serialised answers; see the module docstring for the consistency argument.

    `cache` is wrapped in a `ResilientCache` unless it already is one. A read's TTL is the one
    it declares unless `ttls` (a namespace's override) or `ttl_override` (a function of the
    namespace: ``Settings.cache_ttl``) says otherwise; a TTL of 0 turns caching off for a
    namespace. `local` keeps a copy of answers in this process's memory (the two-level
    option; see the module docstring).
    """

    def __init__(
        self,
        cache: Cache,
        *,
        enabled: bool = True,
        ttls: Mapping[str, int] | None = None,
        ttl_override: Callable[[str], int | None] | None = None,
        local: MemoryCache | None = None,
    ) -> None:
        self.cache = cache if isinstance(cache, ResilientCache) else ResilientCache(cache)
        self.local = local
        self.enabled = enabled
        self.generations = GenerationStore(self.cache)
        self._ttls: dict[str, int] = dict(ttls or {})
        self._ttl_override = ttl_override
        self._in_flight: dict[str, asyncio.Future[CachedAnswer]] = {}
        self._pending_bumps: set[tuple[str | None, str]] = set()
        self._results: defaultdict[str, Counter[str]] = defaultdict(Counter)
        self._counters: dict[tuple[str, str], Any] = {}

    def ttl_for(self, namespace: str, default: int = DEFAULT_TTL) -> int:
        """The namespace's TTL: an override if there is one, else `default` (the declared)."""
        found = self._ttls.get(namespace)
        if found is None:
            override = self._ttl_override(namespace) if self._ttl_override else None
            found = self._ttls[namespace] = default if override is None else override
        return found

    async def answer(
        self, lookup: Lookup, compute: Compute, *, ttl: int | None = None
    ) -> CachedAnswer:
        """The answer stored at `lookup`, or `compute()`'s, stored for `ttl` seconds.

        Exceptions raised by `compute` propagate and nothing is stored.
        """
        namespace = lookup.namespace
        ttl = self.ttl_for(namespace) if ttl is None else ttl
        if not self.enabled or ttl <= 0 or not await usable(self.cache):
            return await self._bypass(namespace, compute)
        try:
            key = await self._versioned_key(lookup)
        except CacheUnavailable:
            return await self._bypass(namespace, compute)
        stored = _unpack(await self._read(key, ttl))
        if stored is not None:
            self._record(namespace, "hit")
            return CachedAnswer(body=stored[0], etag=stored[1], status="HIT")
        self._record(namespace, "miss")
        return await self._single_flight(key, lambda: self._compute_and_store(key, compute, ttl))

    async def peek(self, lookup: Lookup, *, guards: Mapping[str, int]) -> CachedAnswer | None:
        """The stored answer if there is one and every guard key still holds its generation.

        One `get_many` reads the guards and the answer's generations together; a miss, a
        changed guard, a missing generation or an unavailable cache all answer None (the
        caller then takes the full path, which seeds, computes and counts the miss).
        """
        if not self.enabled or self._pending_bumps or not self.cache.consistent:
            return None
        keys = [*guards, *lookup.generation_keys]
        try:
            raw_values = await self.cache.get_many(keys)
        except CacheUnavailable:
            return None
        generations = [_generation(raw) for raw in raw_values]
        for expected, found in zip(guards.values(), generations, strict=False):
            if found != expected:
                return None
        own = [generation for generation in generations[len(guards) :] if generation is not None]
        if len(own) != len(lookup.names):
            return None
        stored = _unpack(await self._read(lookup.key(own), self.ttl_for(lookup.namespace)))
        if stored is None:
            return None
        self._record(lookup.namespace, "hit")
        return CachedAnswer(body=stored[0], etag=stored[1], status="HIT")

    async def invalidate(self, tenant_id: str | None, *namespaces: str) -> None:
        """Bump the generations of `namespaces`; call after the write has committed.

        Never raises: if the cache is unreachable the bump stays pending (see module doc).
        """
        await self.bump(tenant_id, *namespaces)

    async def bump(self, tenant_id: str | None, *namespaces: str) -> bool:
        """`invalidate`, telling whether these bumps were applied (False: pending, bypassing).

        They are tried even while the breaker is open: on a cluster the failures that opened
        it may be another master's, and other processes read these generations where they
        are. Earlier writes' leftovers follow when the breaker lets them.
        """
        self._pending_bumps.update((tenant_id, namespace) for namespace in namespaces)
        try:
            with always_tried():
                await self._apply_pending_bumps([tenant_id])
        except CacheUnavailable as exc:
            logger.warning("cache invalidation deferred, cache unavailable: %s", exc)
            return False
        with contextlib.suppress(CacheUnavailable):
            await self._apply_pending_bumps()
        return True

    async def stats(self) -> dict[str, object]:
        """Per-process hit/miss/bypass counts plus the backend's own statistics."""
        totals: Counter[str] = Counter()
        for counts in self._results.values():
            totals.update(counts)
        lookups = totals["hit"] + totals["miss"]
        return {
            "enabled": self.enabled,
            "hits": totals["hit"],
            "misses": totals["miss"],
            "bypasses": totals["bypass"],
            "hit_ratio": round(totals["hit"] / lookups, 4) if lookups else None,
            "namespaces": {name: dict(counts) for name, counts in sorted(self._results.items())},
            "in_flight": len(self._in_flight),
            "pending_invalidations": len(self._pending_bumps),
            "local": await self.local.stats() if self.local is not None else None,
            "backend": await self.cache.stats(),
        }

    async def _versioned_key(self, lookup: Lookup) -> str:
        await self._apply_pending_bumps()
        generations = await self.generations.current(lookup.tenant_id, lookup.names)
        return lookup.key([generations[name] for name in lookup.names])

    async def _read(self, key: str, ttl: int) -> bytes | None:
        """From process memory, else from the shared cache (then kept in process memory)."""
        if self.local is None:
            return await self.cache.get(key)
        raw = await self.local.get(key)
        if raw is None:
            raw = await self.cache.get(key)
            if raw is not None:
                await self.local.set(key, raw, min(ttl, LOCAL_TTL_MAX_S))
        return raw

    async def _write(self, key: str, raw: bytes, ttl: int) -> None:
        await self.cache.set(key, raw, ttl)
        if self.local is not None:
            await self.local.set(key, raw, min(ttl, LOCAL_TTL_MAX_S))

    async def _apply_pending_bumps(self, tenants: Sequence[str | None] | None = None) -> None:
        """The pending bumps (of ``tenants`` only, if given)."""
        by_tenant: defaultdict[str | None, list[str]] = defaultdict(list)
        for tenant_id, namespace in self._pending_bumps:
            if tenants is None or tenant_id in tenants:
                by_tenant[tenant_id].append(namespace)
        for tenant_id, namespaces in by_tenant.items():
            await self.generations.bump(tenant_id, *namespaces)
            self._pending_bumps.difference_update((tenant_id, name) for name in namespaces)

    async def _compute_and_store(self, key: str, compute: Compute, ttl: int) -> CachedAnswer:
        body = await compute()
        etag_hex = _etag_hex(body)
        await self._write(key, _MAGIC + etag_hex.encode() + body, ttl)
        return CachedAnswer(body=body, etag=f'"{etag_hex}"', status="MISS")

    async def _single_flight(
        self, key: str, produce: Callable[[], Awaitable[CachedAnswer]]
    ) -> CachedAnswer:
        while (leader := self._in_flight.get(key)) is not None:
            try:
                return await asyncio.shield(leader)
            except asyncio.CancelledError:
                if not _leader_gave_up(leader):
                    raise
                # The leader was cancelled (client went away): retry, possibly as leader.
        future: asyncio.Future[CachedAnswer] = asyncio.get_running_loop().create_future()
        self._in_flight[key] = future
        try:
            answer = await produce()
        except asyncio.CancelledError:
            future.cancel()
            raise
        except Exception as exc:
            future.set_exception(exc)
            future.exception()  # mark retrieved: with no followers nobody else will
            raise
        finally:
            del self._in_flight[key]
        future.set_result(answer)
        return answer

    async def _bypass(self, namespace: str, compute: Compute) -> CachedAnswer:
        self._results[namespace]["bypass"] += 1
        body = await compute()
        return CachedAnswer(body=body, etag=compute_etag(body), status="BYPASS")

    def _record(self, namespace: str, result: Literal["hit", "miss"]) -> None:
        self._results[namespace][result] += 1
        counter = self._counters.get((namespace, result))
        if counter is None:  # resolving the labelled child costs more than the increment
            counter = CACHE_REQUESTS.labels(namespace=namespace_label(namespace), result=result)
            self._counters[namespace, result] = counter
        counter.inc()


def _leader_gave_up(leader: asyncio.Future[CachedAnswer]) -> bool:
    """True when the awaited leader was cancelled rather than the waiting task itself."""
    task = asyncio.current_task()
    return leader.cancelled() and (task is None or task.cancelling() == 0)


def _etag_hex(body: bytes) -> str:
    return hashlib.blake2b(body, digest_size=_ETAG_HEX_LEN // 2).hexdigest()


def _generation(raw: bytes | None) -> int | None:
    if raw is None:
        return None
    try:
        return int(raw)
    except ValueError:
        return None


def _unpack(raw: bytes | None) -> tuple[bytes, str] | None:
    """(body, etag) from a stored value, or None for a miss or an unrecognised value."""
    if raw is None or len(raw) < _HEADER_LEN or not raw.startswith(_MAGIC):
        return None
    etag_hex = raw[len(_MAGIC) : _HEADER_LEN].decode("ascii", errors="replace")
    return raw[_HEADER_LEN:], f'"{etag_hex}"'
