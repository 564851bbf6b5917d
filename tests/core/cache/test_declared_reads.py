"""The declared cache model: every cached answer is a declared read whose key covers what it
varies on, the routes answering one take nothing the hot path's fingerprint leaves out, and the
API and the web pages share one entry."""

from __future__ import annotations

import inspect
import uuid
from collections.abc import Iterator
from datetime import date, timedelta

import httpx
import pytest
from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from tests.conftest import Account
from tests.web.helpers import sign_in

from openrisk.app import iter_api_routes
from openrisk.config import Settings, ttl_field
from openrisk.core.cache import invalidation
from openrisk.core.cache.http import served_read
from openrisk.core.cache.reads import REGISTRY, cached_read
from openrisk.core.events import DomainEvent
from openrisk.methodology import clock

# headers the hot path's fingerprint carries (with the path and the query string)
FINGERPRINT_HEADERS = {"authorization", "x-tenant-id"}
# every (tenant-scoped or global) namespace some write bumps
BUMPED = {
    name
    for resource in (
        "risk",
        "asset",
        "mitigation",
        "quantification",
        "risk_acceptance",
        "custom_field",
        "risk_model",
        "connector",
        "app",
    )
    for _, names in invalidation.namespaces_for(
        DomainEvent(
            type=f"{resource}.updated",
            tenant_id=uuid.uuid4(),
            resource_id=uuid.uuid4(),
            data={"risk_id": str(uuid.uuid4())},
        )
    )
    for name in names
}


def test_every_cached_route_answers_a_declared_read() -> None:
    marked = {served_read(route.endpoint) for route in iter_api_routes()} - {None}
    assert marked == set(REGISTRY.values())
    for route in iter_api_routes():
        source = inspect.getsource(route.endpoint)
        if "respond(" in source:
            assert served_read(route.endpoint) is not None, route.path


def _walk(dependant: Dependant) -> Iterator[Dependant]:
    yield dependant
    for sub in dependant.dependencies:
        yield from _walk(sub)


@pytest.mark.parametrize(
    "route",
    [r for r in iter_api_routes() if served_read(r.endpoint) is not None],
    ids=lambda r: r.path,
)
def test_a_cached_route_takes_nothing_its_fingerprint_leaves_out(route: object) -> None:
    """The hot path answers a remembered request by path, query string, Authorization and
    X-Tenant-ID: a cached route may take no other header, no cookie and no body."""
    for node in _walk(route.dependant):  # type: ignore[attr-defined]
        headers = {(p.alias or p.name).lower() for p in node.header_params}
        assert headers <= FINGERPRINT_HEADERS, (route.path, headers)  # type: ignore[attr-defined]
        assert not node.cookie_params and not node.body_params, route.path  # type: ignore[attr-defined]


@pytest.mark.parametrize("namespace", sorted(REGISTRY))
def test_every_declared_read_has_a_ttl_setting_and_is_invalidated(namespace: str) -> None:
    read = REGISTRY[namespace]
    assert ttl_field(namespace) in Settings.model_fields, namespace
    assert read.ttl > 0
    if not callable(read.depends_on):
        assert set(read.depends_on) <= BUMPED, (namespace, read.depends_on)
        assert read.depends_on, namespace  # never cached forever


def test_a_read_whose_key_leaves_out_an_argument_cannot_be_declared() -> None:
    async def by_owner(session: object, *, tenant_id: uuid.UUID, owner: str) -> bytes:
        return b""

    async def on_a_day(session: object, *, tenant_id: uuid.UUID, today: date) -> bytes:
        return b""

    def declare(function: object, *varies_on: str) -> None:
        cached_read(
            function,  # type: ignore[arg-type]
            namespace="test:undeclared",
            ttl=1,
            varies_on=varies_on,
            depends_on=("risks",),
            encode=bytes,
            decode=bytes,
        )

    with pytest.raises(TypeError, match="owner"):
        declare(by_owner, "tenant")
    with pytest.raises(TypeError, match="today"):
        declare(on_a_day, "tenant")  # the date must be declared, with its clock
    with pytest.raises(TypeError, match="today"):
        declare(on_a_day, "tenant", "today")  # ... and the clock given
    assert "test:undeclared" not in REGISTRY


async def test_a_dated_answer_is_never_served_on_the_next_day(
    app: FastAPI, client: httpx.AsyncClient, admin: Account
) -> None:
    """Stats and timeline depend on today: a new day is a new key, on the hot path too."""
    day = date(2026, 6, 1)
    clock.set_today(lambda: day)
    try:
        h = admin.in_tenant()
        url = "/api/v1/dashboard/timeline?days=7"
        first = await client.get(url, headers=h)
        again = await client.get(url, headers=h)
        assert (first.headers["x-cache"], again.headers["x-cache"]) == ("MISS", "HIT")
        hits = app.state.hot_path.hits
        day += timedelta(days=1)
        next_day = await client.get(url, headers=h)
        assert next_day.headers["x-cache"] == "MISS"
        assert app.state.hot_path.hits == hits  # the remembered request looked up today's key
        assert next_day.json()["points"][-1]["date"] == "2026-06-02"
    finally:
        clock.set_today(None)


async def test_the_web_dashboard_and_the_api_share_one_cache_entry(
    client: httpx.AsyncClient, admin: Account
) -> None:
    h = admin.in_tenant()
    created = await client.post(
        "/api/v1/risks", json={"title": "Shared", "impact": 4, "probability": 4}, headers=h
    )
    assert created.status_code == 201, created.text
    browser = await sign_in(client, admin)
    page = await browser.get("/?period=all&days=30")
    assert page.status_code == 200 and "Shared" in page.text
    for url in (
        "/api/v1/dashboard/stats?period=all",
        "/api/v1/dashboard/matrix",
        "/api/v1/dashboard/timeline?days=30",
        "/api/v1/dashboard/top-risks?limit=10",
    ):
        answer = await client.get(url, headers=h)
        assert answer.headers["x-cache"] == "HIT", url
