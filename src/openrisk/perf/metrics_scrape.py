"""Read the server's ``/metrics`` before and after a run and derive what the reports show.

Cache hit rate = Δhits / (Δhits + Δmisses) of ``openrisk_cache_requests_total``; database
queries per request = Δ``openrisk_db_queries_total`` / Δ``openrisk_http_requests_total``
(scrapes of ``/metrics`` itself excluded). With several workers ``/metrics`` already merges
every worker's samples, so one scrape sees the whole server.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

import httpx
from prometheus_client.parser import text_string_to_metric_families

METRICS_PATH = "/metrics"
_EXCLUDED_ROUTES = frozenset({METRICS_PATH})


@dataclass(frozen=True)
class Snapshot:
    http_requests: float = 0.0
    http_errors: float = 0.0  # 5xx
    http_duration_sum: float = 0.0
    http_duration_count: float = 0.0
    db_queries: float = 0.0
    db_query_seconds: float = 0.0
    pool_waits: float = 0.0
    pool_timeouts: float = 0.0
    cache: dict[str, dict[str, float]] = field(default_factory=dict)  # namespace → result → n
    requests_by_route: dict[str, float] = field(default_factory=dict)

    @property
    def cache_hits(self) -> float:
        return sum(r.get("hit", 0.0) for r in self.cache.values())

    @property
    def cache_misses(self) -> float:
        return sum(r.get("miss", 0.0) for r in self.cache.values())


def parse(text: str) -> Snapshot:
    http = errors = duration_sum = duration_count = queries = query_seconds = 0.0
    waits = timeouts = 0.0
    cache: defaultdict[str, dict[str, float]] = defaultdict(dict)
    by_route: defaultdict[str, float] = defaultdict(float)
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            name, labels, value = sample.name, sample.labels, sample.value
            route = labels.get("route", "")
            if name == "openrisk_http_requests_total" and route not in _EXCLUDED_ROUTES:
                http += value
                by_route[f"{labels.get('method', '')} {route}"] += value
                if labels.get("status", "").startswith("5"):
                    errors += value
            elif name == "openrisk_http_request_duration_seconds_sum":
                if route not in _EXCLUDED_ROUTES:
                    duration_sum += value
            elif name == "openrisk_http_request_duration_seconds_count":
                if route not in _EXCLUDED_ROUTES:
                    duration_count += value
            elif name == "openrisk_db_queries_total":
                queries += value
            elif name == "openrisk_db_query_duration_seconds_sum":
                query_seconds += value
            elif name == "openrisk_db_pool_waits_total":
                waits += value
            elif name == "openrisk_db_pool_timeouts_total":
                timeouts += value
            elif name == "openrisk_cache_requests_total":
                namespace, result = labels.get("namespace", ""), labels.get("result", "")
                cache[namespace][result] = cache[namespace].get(result, 0.0) + value
    return Snapshot(
        http_requests=http,
        http_errors=errors,
        http_duration_sum=duration_sum,
        http_duration_count=duration_count,
        db_queries=queries,
        db_query_seconds=query_seconds,
        pool_waits=waits,
        pool_timeouts=timeouts,
        cache=dict(cache),
        requests_by_route=dict(by_route),
    )


def scrape(base_url: str, *, timeout: float = 10) -> Snapshot:
    response = httpx.get(base_url + METRICS_PATH, timeout=timeout, trust_env=False)
    response.raise_for_status()
    return parse(response.text)


async def scrape_async(client: httpx.AsyncClient) -> Snapshot:
    response = await client.get(METRICS_PATH)
    response.raise_for_status()
    return parse(response.text)


@dataclass(frozen=True)
class Delta:
    """What happened on the server between two snapshots."""

    http_requests: float
    http_errors: float
    server_mean_ms: float | None
    db_queries: float
    db_query_mean_ms: float | None
    cache_hits: float
    cache_misses: float
    cache_by_namespace: dict[str, dict[str, float]]
    pool_waits: float = 0.0
    pool_timeouts: float = 0.0

    @property
    def cache_hit_rate(self) -> float | None:
        lookups = self.cache_hits + self.cache_misses
        return self.cache_hits / lookups if lookups else None

    @property
    def db_queries_per_request(self) -> float | None:
        return self.db_queries / self.http_requests if self.http_requests else None

    def as_dict(self) -> dict[str, object]:
        return {
            "http_requests": self.http_requests,
            "http_5xx": self.http_errors,
            "server_mean_ms": _round(self.server_mean_ms),
            "db_queries": self.db_queries,
            "db_queries_per_request": _round(self.db_queries_per_request, 3),
            "db_query_mean_ms": _round(self.db_query_mean_ms, 3),
            "cache_hits": self.cache_hits,
            "cache_misses": self.cache_misses,
            "cache_hit_rate": _round(self.cache_hit_rate, 4),
            "cache_by_namespace": self.cache_by_namespace,
            "db_pool_waits": self.pool_waits,
            "db_pool_timeouts": self.pool_timeouts,
        }


def _round(value: float | None, digits: int = 2) -> float | None:
    return None if value is None else round(value, digits)


def delta(before: Snapshot, after: Snapshot) -> Delta:
    count = after.http_duration_count - before.http_duration_count
    queries = after.db_queries - before.db_queries
    query_seconds = after.db_query_seconds - before.db_query_seconds
    namespaces: dict[str, dict[str, float]] = {}
    for namespace, results in after.cache.items():
        previous = before.cache.get(namespace, {})
        changed = {r: v - previous.get(r, 0.0) for r, v in results.items()}
        if any(changed.values()):
            namespaces[namespace] = changed
    return Delta(
        http_requests=after.http_requests - before.http_requests,
        http_errors=after.http_errors - before.http_errors,
        server_mean_ms=(
            (after.http_duration_sum - before.http_duration_sum) / count * 1000 if count else None
        ),
        db_queries=queries,
        db_query_mean_ms=query_seconds / queries * 1000 if queries else None,
        cache_hits=after.cache_hits - before.cache_hits,
        cache_misses=after.cache_misses - before.cache_misses,
        cache_by_namespace=namespaces,
        pool_waits=after.pool_waits - before.pool_waits,
        pool_timeouts=after.pool_timeouts - before.pool_timeouts,
    )
