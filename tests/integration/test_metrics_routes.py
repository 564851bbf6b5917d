"""`/metrics` content: every named metric, bounded labels, live pool gauges."""

from __future__ import annotations

import asyncio
import random
import re
import uuid

import httpx
from fastapi import FastAPI
from prometheus_client.parser import text_string_to_metric_families

from openrisk.core.metrics import HTTP_METHODS, OTHER_METHOD
from openrisk.core.middleware import UNMATCHED_ROUTE
from tests.integration.server_process import label_values, metric_value

DOCUMENTED_METRICS = (
    "openrisk_http_requests_total",
    "openrisk_http_request_duration_seconds",
    "openrisk_http_requests_in_progress",
    "openrisk_cache_requests_total",
    "openrisk_cache_errors_total",
    "openrisk_cache_invalidations_total",
    "openrisk_db_pool_connections",
    "openrisk_db_pool_max_connections",
    "openrisk_db_query_duration_seconds",
    "openrisk_db_up",
    "openrisk_permission_checks_total",
    "openrisk_build_info",
)
TENANT_TEMPLATE = "/api/v1/tenants/{tenant_id}"
# A route label is a template: literal segments and {parameters}, nothing request-specific.
TEMPLATE = re.compile(r"/|(/([A-Za-z0-9_.-]+|\{[a-z_]+(:[a-z]+)?\}))+")


async def _scrape(client: httpx.AsyncClient) -> str:
    response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return response.text


def _counts_by_route(text: str) -> dict[str, float]:
    """Requests counted per route label, from one parse of the scrape (a scrape late in a
    long-lived process holds thousands of samples)."""
    counts: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "openrisk_http_requests_total" and "route" in sample.labels:
                route = sample.labels["route"]
                counts[route] = counts.get(route, 0.0) + sample.value
    return counts


async def test_every_spec_metric_is_exported(client: httpx.AsyncClient) -> None:
    text = await _scrape(client)
    missing = [name for name in DOCUMENTED_METRICS if f"# TYPE {name} " not in text]
    assert not missing, f"/metrics lacks {missing}"
    assert "# TYPE openrisk_http_request_duration_seconds histogram" in text
    assert "# TYPE openrisk_db_query_duration_seconds histogram" in text
    # Pre-initialised series, so that rate() sees the first increment.
    for result in ("allow", "deny"):
        assert metric_value(text, "openrisk_permission_checks_total", result=result) is not None
    for result in ("hit", "miss"):
        assert metric_value(text, "openrisk_cache_requests_total", result=result) is not None
    assert "risk:list" in label_values(text, "openrisk_cache_requests_total", "namespace")


async def test_pool_gauges_are_read_from_the_live_pool(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    database = app.state.db

    async def scrape_in_use() -> tuple[float | None, int]:
        """The scraped in-use gauge and the live pool's count (retried while a background
        task, such as the health check, checks a connection out or in meanwhile)."""
        for _ in range(20):
            before = database.stats().in_use
            text = await _scrape(client)
            if database.stats().in_use == before:
                assert metric_value(text, "openrisk_db_up") == 1
                assert metric_value(text, "openrisk_db_pool_max_connections") == (
                    database.profile.max_open
                )
                return metric_value(text, "openrisk_db_pool_connections", state="in_use"), before
            await asyncio.sleep(0.05)
        raise AssertionError("the pool never stood still")

    async with database.engine.connect(), database.engine.connect():  # hold two connections
        held, live = await scrape_in_use()
        assert held == live >= 2
    released, live = await scrape_in_use()
    assert released == live


async def test_route_labels_stay_bounded_under_random_paths(client: httpx.AsyncClient) -> None:
    rng = random.Random(7)
    tokens: list[str] = []

    def token() -> str:
        value = uuid.UUID(int=rng.getrandbits(128)).hex
        tokens.append(value)
        return value

    requests: list[tuple[str, str]] = []
    for i in range(300):
        method = rng.choice(["GET", "GET", "POST", "DELETE", "PURGE", f"X{token()[:8].upper()}"])
        path = [
            lambda: f"/api/v1/tenants/{uuid.UUID(token())}",
            lambda: f"/random/{token()}",
            lambda: f"/api/v1/{token()}/{token()}?q={token()}",
            lambda: f"/api/v1/tenants/{uuid.UUID(token())}/{token()}",
        ][i % 4]()
        requests.append((method, path))

    before = _counts_by_route(await _scrape(client))
    for method, path in requests:
        response = await client.request(method, path)
        assert response.status_code < 500, (method, path, response.text)
    text = await _scrape(client)
    after = _counts_by_route(text)

    grown = {route for route in after if after[route] > before.get(route, 0)}
    # the one scrape between the two snapshots is the only other request
    assert grown <= {TENANT_TEMPLATE, UNMATCHED_ROUTE, "/metrics"}, grown
    counted = sum(after.get(r, 0) - before.get(r, 0) for r in (TENANT_TEMPLATE, UNMATCHED_ROUTE))
    assert counted == len(requests)

    routes = label_values(text, "openrisk_http_requests_total", "route")
    routes |= label_values(text, "openrisk_http_request_duration_seconds_bucket", "route")
    bad = [r for r in routes if r != UNMATCHED_ROUTE and not TEMPLATE.fullmatch(r)]
    assert not bad, f"route labels that are not templates: {bad}"
    leaked = [t for t in tokens if t in text or str(uuid.UUID(t)) in text]
    assert not leaked, "request-specific values leaked into labels"
    methods = label_values(text, "openrisk_http_requests_total", "method")
    assert methods <= HTTP_METHODS | {OTHER_METHOD}, methods
    assert OTHER_METHOD in methods
