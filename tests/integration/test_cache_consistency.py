"""Never stale, never a point of failure, on real components:
two app instances sharing PostgreSQL and Redis, and a redis-server this test kills."""

from __future__ import annotations

import asyncio
import random
import shutil
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path

import pytest
import pytest_asyncio
from fastapi import FastAPI
from prometheus_client import REGISTRY

from openrisk.app import create_app
from openrisk.rbac.catalogue import VIEWER
from tests.api.test_risks_helpers import member, new_risk
from tests.conftest import Account, client_for, make_settings, register
from tests.core.cache.conftest import LocalCluster, RedisProcess
from tests.services import need, redis_available

SHARED_REDIS = "redis://127.0.0.1:6379/14"
RISKS = "/api/v1/risks"


@pytest_asyncio.fixture
async def two_apps(postgres_url: str) -> AsyncIterator[tuple[FastAPI, FastAPI]]:
    need(redis_available(), "Redis at 127.0.0.1:6379")
    settings = make_settings(postgres_url, cache_backend="redis", redis_url=SHARED_REDIS)
    apps = (create_app(settings), create_app(settings))
    async with AsyncExitStack() as stack:
        for app in apps:
            await stack.enter_async_context(app.router.lifespan_context(app))
        yield apps


@pytest.mark.redis
async def test_no_stale_answer_is_ever_observed_across_two_instances(
    two_apps: tuple[FastAPI, FastAPI],
) -> None:
    """Writers and readers race on both instances; a read that starts after a write was
    acknowledged must show that write (or a later one), in the detail and in the list."""
    rng = random.Random(20261126)
    async with client_for(two_apps[0]) as a, client_for(two_apps[1]) as b:
        clients = (a, b)
        admin = await register(a)
        h = admin.in_tenant()
        ids = []
        for n in range(8):
            created = await a.post(
                RISKS, json={"title": f"r{n}", "impact": 1, "probability": 1}, headers=h
            )
            ids.append(created.json()["id"])
        acked: dict[str, int] = {risk_id: 1 for risk_id in ids}
        stale: list[str] = []
        operations = 0

        async def writer(worker: int) -> None:
            nonlocal operations
            for step in range(60):
                risk_id = rng.choice(ids)
                http = rng.choice(clients)
                impact = rng.randint(1, 5)
                response = await http.patch(
                    f"{RISKS}/{risk_id}",
                    json={"impact": impact, "title": f"w{worker}-{step}"},
                    headers=h,
                )
                operations += 1
                if response.status_code == 412:  # a concurrent writer won: not acknowledged
                    continue
                assert response.status_code == 200, response.text
                version = response.json()["version"]
                acked[risk_id] = max(acked[risk_id], version)

        async def reader() -> None:
            nonlocal operations
            for _ in range(150):
                http = rng.choice(clients)
                risk_id = rng.choice(ids)
                floor = acked[risk_id]
                detail = await http.get(f"{RISKS}/{risk_id}", headers=h)
                if detail.json()["version"] < floor:
                    stale.append(f"detail {risk_id} v{detail.json()['version']} < {floor}")
                floors = dict(acked)
                listed = await http.get(f"{RISKS}?page_size=100", headers=h)
                for item in listed.json()["items"]:
                    if item["version"] < floors[item["id"]]:
                        stale.append(f"list {item['id']} v{item['version']} < {floors[item['id']]}")
                operations += 2

        await asyncio.gather(*(writer(n) for n in range(4)), *(reader() for _ in range(4)))
    assert stale == []
    assert operations >= 1400
    # the race went through every level: the hot path and the process-memory copies answered
    assert all(app.state.hot_path.hits > 0 for app in two_apps)
    local_hits = [(await app.state.response_cache.local.stats())["hits"] for app in two_apps]
    assert all(hits > 0 for hits in local_hits), local_hits


def _errors(backend: str = "redis") -> float:
    total = 0.0
    for metric in REGISTRY.collect():
        if metric.name == "openrisk_cache_errors":
            for sample in metric.samples:
                if sample.name.endswith("_total") and sample.labels.get("backend") == backend:
                    total += sample.value
    return total


@pytest.mark.redis
async def test_killing_redis_never_fails_a_request_and_caching_resumes(
    sqlite_url: str, tmp_path: Path
) -> None:
    binary = shutil.which("redis-server")
    need(binary is not None, "redis-server binary")
    assert binary is not None
    server = RedisProcess(binary, tmp_path, [])
    server.start()
    settings = make_settings(
        sqlite_url, cache_backend="redis", redis_url=f"redis://127.0.0.1:{server.port}/0"
    )
    app = create_app(settings)
    try:
        async with app.router.lifespan_context(app), client_for(app) as http:
            admin: Account = await register(http)
            h = admin.in_tenant()
            risk = (
                await http.post(
                    RISKS, json={"title": "Steady", "impact": 2, "probability": 2}, headers=h
                )
            ).json()
            url = f"{RISKS}/{risk['id']}"
            assert [(await http.get(url, headers=h)).headers["x-cache"] for _ in range(2)] == [
                "MISS",
                "HIT",
            ]
            errors_before = _errors()

            server.kill()
            during = [await http.get(url, headers=h) for _ in range(20)]
            assert {r.status_code for r in during} == {200}
            assert {r.json()["title"] for r in during} == {"Steady"}
            assert {r.headers["x-cache"] for r in during} == {"BYPASS"}
            assert _errors() > errors_before
            assert app.state.cache.state == "open"
            ready = await http.get("/api/v1/health/ready")
            assert ready.status_code == 200 and ready.json()["status"] == "degraded"

            server.start()
            deadline = time.monotonic() + 15
            status = "BYPASS"
            while status != "HIT" and time.monotonic() < deadline:
                await asyncio.sleep(0.5)
                status = (await http.get(url, headers=h)).headers["x-cache"]
            assert status == "HIT"
            assert app.state.cache.state == "closed"
    finally:
        server.kill()


@pytest.mark.redis
async def test_two_instances_on_a_redis_cluster_read_each_others_writes(
    sqlite_url: str, redis_cluster: LocalCluster
) -> None:
    """The same promises on a local 3-master Redis Cluster: a write or a revocation through
    one instance is seen on the other's very next request (its answers were cached: hot path
    and process-memory copies)."""
    settings = make_settings(sqlite_url, cache_backend="redis", redis_url=redis_cluster.url)
    apps = (create_app(settings), create_app(settings))
    async with AsyncExitStack() as stack:
        for app in apps:
            await stack.enter_async_context(app.router.lifespan_context(app))
        a = await stack.enter_async_context(client_for(apps[0]))
        b = await stack.enter_async_context(client_for(apps[1]))
        admin = await register(a)
        h = admin.in_tenant()
        viewer = await member(apps[0], a, admin, VIEWER)
        risk = await new_risk(a, admin, title="Before")
        urls = [f"{RISKS}/{risk['id']}", f"{RISKS}?sort=title", "/api/v1/dashboard/top-risks"]
        for _ in range(3):
            for url in urls:
                assert (await b.get(url, headers=h)).status_code == 200
            assert (await b.get(urls[0], headers=viewer.in_tenant())).status_code == 200
        assert apps[1].state.hot_path.hits > 0
        patched = await a.patch(urls[0], json={"title": "After"}, headers={**h, "If-Match": '"1"'})
        assert patched.status_code == 200, patched.text
        assert (await b.get(urls[0], headers=h)).json()["title"] == "After"
        assert [r["title"] for r in (await b.get(urls[1], headers=h)).json()["items"]] == ["After"]
        assert [r["title"] for r in (await b.get(urls[2], headers=h)).json()["items"]] == ["After"]
        removed = await a.delete(f"/api/v1/members/{viewer.user_id}", headers=h)
        assert removed.status_code == 204, removed.text
        assert (await b.get(urls[0], headers=viewer.in_tenant())).status_code in (403, 404)
