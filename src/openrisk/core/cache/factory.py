"""Build the configured cache backend (`OPENRISK_CACHE_BACKEND`)."""

from __future__ import annotations

import importlib
import inspect
import logging
from dataclasses import dataclass

from openrisk.config import Settings
from openrisk.core.cache.base import Cache
from openrisk.core.cache.memory import MemoryCache
from openrisk.core.cache.none import NullCache
from openrisk.core.cache.redis_backend import DEFAULT_PREFIX, RedisCache
from openrisk.core.cache.resilient import ResilientCache
from openrisk.core.cache.response import ResponseCache

log = logging.getLogger(__name__)


def build_cache(
    backend: str,
    *,
    redis_url: str = "redis://127.0.0.1:6379/0",
    memory_max_entries: int = 50_000,
    memory_max_bytes: int = 256 * 1024 * 1024,
    redis_prefix: str = DEFAULT_PREFIX,
    redis_socket_timeout: float = 0.25,
    redis_max_connections: int = 100,
) -> Cache:
    """A raw backend; wrap it in `ResilientCache` (ResponseCache does) to survive outages.

    `backend` is "memory", "redis", "none", or "package.module:Class" for a custom class.
    A custom class is instantiated with no arguments when its constructor allows that,
    otherwise as `Class(url=redis_url)`; it must implement the `Cache` protocol.
    """
    match backend.strip().lower():
        case "memory":
            return MemoryCache(max_entries=memory_max_entries, max_bytes=memory_max_bytes)
        case "redis":
            return RedisCache(
                redis_url,
                prefix=redis_prefix,
                socket_timeout=redis_socket_timeout,
                socket_connect_timeout=redis_socket_timeout,
                max_connections=redis_max_connections,
                # waiting for a free client connection is not a Redis failure: allow longer
                pool_timeout=max(redis_socket_timeout, 1.0),
            )
        case "none":
            return NullCache()
    if ":" in backend:
        return _custom_backend(backend.strip(), redis_url)
    raise ValueError(
        f"unknown cache backend {backend!r}: use memory, redis, none or package.module:Class"
    )


def _custom_backend(dotted_path: str, redis_url: str) -> Cache:
    cls = _import_class(dotted_path)
    instance = cls() if _accepts_no_arguments(cls) else cls(url=redis_url)
    if not isinstance(instance, Cache):
        raise TypeError(f"cache backend {dotted_path} does not implement the Cache interface")
    return instance


def _accepts_no_arguments(cls: type) -> bool:
    try:
        inspect.signature(cls).bind()
    except TypeError:
        return False
    except ValueError:  # no introspectable signature (a builtin type): just try without
        return True
    return True


def _import_class(dotted_path: str) -> type:
    module_name, _, class_name = dotted_path.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ValueError(f"cannot import cache backend module {module_name!r}: {exc}") from exc
    cls = getattr(module, class_name, None)
    if not isinstance(cls, type):
        raise ValueError(f"cache backend {dotted_path!r}: {class_name!r} is not a class there")
    return cls


def _is_remote(settings: Settings) -> bool:
    """Redis or a custom backend: reads cost a round trip."""
    return settings.cache_backend.strip().lower() not in ("memory", "none")


def _local_layer(settings: Settings) -> MemoryCache | None:
    """Process memory in front of a shared backend; pointless for memory, wrong for none."""
    if not _is_remote(settings) or settings.cache_local_max_bytes <= 0:
        return None
    return MemoryCache(
        max_entries=settings.cache_local_max_entries, max_bytes=settings.cache_local_max_bytes
    )


@dataclass(frozen=True)
class AppCaches:
    """The shared cache behind its circuit breaker, and the response cache built on it."""

    shared: ResilientCache
    responses: ResponseCache
    coherent: bool  # False for the "none" backend: nothing may be cached locally either


def memory_per_worker(settings: Settings) -> bool:
    """The memory cache backend with several workers: each worker's memory is its own."""
    return settings.cache_backend.strip().lower() == "memory" and settings.workers > 1


def build_app_caches(settings: Settings) -> AppCaches:
    raw = build_cache(
        settings.cache_backend,
        redis_url=settings.redis_url,
        memory_max_entries=settings.cache_memory_max_entries,
        memory_max_bytes=settings.cache_memory_max_bytes,
    )
    shared = ResilientCache(
        raw,
        backend_name=settings.cache_backend.split(":")[-1].lower(),
        failure_threshold=settings.cache_breaker_threshold,
        reset_after_s=settings.cache_breaker_reset_s,
    )
    per_worker = memory_per_worker(settings)
    if per_worker and settings.cache_enabled:
        log.warning(
            "OPENRISK_CACHE_BACKEND=memory with %d workers: each worker's memory is its own, so "
            "a write in one would leave the others' cached answers stale; response caching is "
            "off. Set OPENRISK_CACHE_BACKEND=redis to cache with several workers.",
            settings.workers,
        )
    responses = ResponseCache(
        shared,
        enabled=settings.cache_enabled and not per_worker,
        ttl_override=settings.cache_ttl,
        local=_local_layer(settings),
    )
    return AppCaches(
        shared=shared, responses=responses, coherent=settings.cache_backend.strip() != "none"
    )
