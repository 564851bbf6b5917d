"""The cache's Prometheus metrics, on the default registry."""

from __future__ import annotations

from prometheus_client import Counter

CACHE_REQUESTS = Counter(
    "openrisk_cache_requests_total",
    "Response cache lookups by namespace and result (hit|miss)",
    ["namespace", "result"],
)
CACHE_ERRORS = Counter(
    "openrisk_cache_errors_total",
    "Cache backend failures by backend and operation",
    ["backend", "operation"],
)
CACHE_INVALIDATIONS = Counter(
    "openrisk_cache_invalidations_total",
    "Generation bumps (O(1) invalidations) by namespace",
    ["namespace"],
)


def namespace_label(namespace: str) -> str:
    """At most the first two segments, so per-entity namespaces (`risk:id:<uuid>`) stay bounded."""
    return ":".join(namespace.split(":", 2)[:2])
