"""Caching: backends, circuit breaker, keys, generations and the response cache."""

from openrisk.core.cache.base import Cache, CacheError, CacheUnavailable
from openrisk.core.cache.factory import build_cache
from openrisk.core.cache.generations import GenerationStore
from openrisk.core.cache.keys import (
    global_key,
    normalise_params,
    params_digest,
    permission_variant,
    tenant_key,
)
from openrisk.core.cache.memory import MemoryCache
from openrisk.core.cache.none import NullCache
from openrisk.core.cache.redis_backend import RedisCache
from openrisk.core.cache.resilient import ResilientCache
from openrisk.core.cache.response import (
    CachedAnswer,
    ResponseCache,
    compute_etag,
    etag_matches,
)

__all__ = [
    "Cache",
    "CacheError",
    "CacheUnavailable",
    "CachedAnswer",
    "GenerationStore",
    "MemoryCache",
    "NullCache",
    "RedisCache",
    "ResilientCache",
    "ResponseCache",
    "build_cache",
    "compute_etag",
    "etag_matches",
    "global_key",
    "normalise_params",
    "params_digest",
    "permission_variant",
    "tenant_key",
]
