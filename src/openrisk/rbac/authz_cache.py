"""Process-local cache of resolved memberships and API tokens, kept coherent across workers.

A permission check on the hot path must cost microseconds, yet a role, membership or
token change must be seen on the caller's very next request in every worker and host.
Entries are keyed by a global *authorization generation* kept in the shared cache (Redis in
production): each request reads that one small key, and every authorization change increments
it, which makes every worker's local entries unreachable at once. Entries also expire after a
short TTL, and when the shared cache is unavailable the local cache is bypassed: correctness
over speed.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any, Literal, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from openrisk.core.cache.base import Cache, CacheError
from openrisk.core.cache.generations import GenerationStore
from openrisk.core.cache.resilient import always_tried, usable
from openrisk.rbac.service import ResolvedMembership, resolve_membership

NAMESPACE = "authz"
T = TypeVar("T")
log = logging.getLogger(__name__)


class AuthzCache:
    def __init__(
        self,
        shared: Cache | None,
        *,
        max_entries: int = 10_000,
        ttl_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ):
        self._shared = shared
        self._clock = clock
        self._generations = GenerationStore(shared) if shared is not None else None
        self._generation_key = GenerationStore.key(None, NAMESPACE)
        self._max_entries = max_entries
        self.ttl_s = ttl_s
        self._entries: OrderedDict[tuple[Any, ...], tuple[float, object]] = OrderedDict()

    async def generation(self) -> int | None:
        """The current generation, or None when the shared cache cannot tell (then bypass)."""
        if self._generations is None or self._shared is None:
            return None
        if not await usable(self._shared):  # after an outage: once left-over bumps are applied
            return None
        try:
            [raw] = await self._shared.get_many([self._generation_key])
            if raw is not None:
                return int(raw)
            return (await self._generations.current(None, [NAMESPACE]))[NAMESPACE]  # seeds it
        except (CacheError, ValueError):
            return None

    @property
    def generation_key(self) -> str:
        """The shared-cache key holding the generation (the hot path reads it with others)."""
        return self._generation_key

    async def get_or_load(
        self,
        key: tuple[Any, ...],
        load: Callable[[], Awaitable[T]],
        *,
        generation: int | Literal["read"] | None = "read",
    ) -> T:
        """The cached value of `key` at the current generation, else `load()`'s.

        A request doing several lookups reads the generation once and passes it in; then
        everything it resolves belongs to that one generation.
        """
        if generation == "read":
            generation = await self.generation()
        if generation is None:
            return await load()
        full_key = (generation, *key)
        now = self._clock()
        entry = self._entries.get(full_key)
        if entry is not None and entry[0] > now:
            self._entries.move_to_end(full_key)
            return entry[1]  # type: ignore[return-value]
        value = await load()
        self._entries[full_key] = (now + self.ttl_s, value)
        if len(self._entries) > self._max_entries:
            self._entries.popitem(last=False)
        return value

    def expires_in(self, key: tuple[Any, ...], generation: int) -> float:
        """Seconds the entry of `key` at `generation` stays usable (0 when there is none):
        whatever was decided from it may be reused no longer than that."""
        entry = self._entries.get((generation, *key))
        return max(0.0, entry[0] - self._clock()) if entry is not None else 0.0

    async def bump(self, *, strict: bool = False) -> None:
        """Make every worker's cached authorizations unreachable; ``strict``: raise
        `CacheError` when the shared cache could not take the bump (else only log it)."""
        self._entries.clear()
        if self._generations is not None:
            try:
                with always_tried():
                    await self._generations.bump(None, NAMESPACE)
            except CacheError:
                log.error("authorization change not propagated: shared cache unavailable")
                if strict:
                    raise


def member_key(user_id: uuid.UUID, tenant_ref: str | None) -> tuple[object, ...]:
    return ("member", user_id, tenant_ref)


async def cached_membership(
    authz: AuthzCache,
    session: AsyncSession,
    user_id: uuid.UUID,
    tenant_ref: str | None,
    *,
    generation: int | Literal["read"] | None = "read",
) -> ResolvedMembership:
    """The caller's membership in the named (or default) tenant, through the cache: the API's
    auth dependency and the web UI share this one key and its invalidation."""
    return await authz.get_or_load(
        member_key(user_id, tenant_ref),
        lambda: resolve_membership(session, user_id=user_id, tenant_ref=tenant_ref),
        generation=generation,
    )
