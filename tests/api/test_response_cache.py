"""Response caching through the API: hits, ETags, read-your-writes, tenant keys,
single flight. Runs on both databases with the memory backend."""

from __future__ import annotations

import asyncio
import uuid

import httpx
from fastapi import FastAPI
from sqlalchemy import event

from openrisk.rbac.service import ResolvedMembership
from openrisk.risks import answers
from tests.access.world import Tenant
from tests.conftest import Account, register

RISKS = "/api/v1/risks"


async def new_risk(client: httpx.AsyncClient, account: Account, title: str) -> dict[str, object]:
    body = {"title": title, "impact": 3, "probability": 4}
    response = await client.post(RISKS, json=body, headers=account.in_tenant())
    assert response.status_code == 201
    return dict(response.json())


async def test_second_read_is_a_hit_with_the_same_etag_and_304(
    client: httpx.AsyncClient, admin: Account
) -> None:
    await new_risk(client, admin, "Cached risk")
    first = await client.get(RISKS, headers=admin.in_tenant())
    second = await client.get(RISKS, headers=admin.in_tenant())
    assert (first.headers["x-cache"], second.headers["x-cache"]) == ("MISS", "HIT")
    assert first.headers["etag"] == second.headers["etag"]
    assert first.content == second.content
    not_modified = await client.get(
        RISKS, headers={**admin.in_tenant(), "If-None-Match": first.headers["etag"]}
    )
    assert not_modified.status_code == 304 and not_modified.content == b""


async def test_parameters_are_normalised_into_the_key(
    client: httpx.AsyncClient, admin: Account
) -> None:
    await new_risk(client, admin, "Normalised")
    h = admin.in_tenant()
    first = await client.get(f"{RISKS}?page=1&sort=created_at&order=desc", headers=h)
    reordered = await client.get(f"{RISKS}?order=desc&sort=created_at&page=1", headers=h)
    defaults = await client.get(RISKS, headers=h)
    other = await client.get(f"{RISKS}?sort=title", headers=h)
    assert first.headers["x-cache"] == "MISS"
    assert reordered.headers["x-cache"] == defaults.headers["x-cache"] == "HIT"
    assert other.headers["x-cache"] == "MISS"


async def test_a_write_is_visible_on_the_next_read(
    client: httpx.AsyncClient, admin: Account
) -> None:
    h = admin.in_tenant()
    risk = await new_risk(client, admin, "Before")
    detail_url = f"{RISKS}/{risk['id']}"
    for url in (RISKS, detail_url, "/api/v1/dashboard/stats", "/api/v1/dashboard/matrix"):
        await client.get(url, headers=h)  # warm
        assert (await client.get(url, headers=h)).headers["x-cache"] == "HIT"

    patched = await client.patch(detail_url, json={"title": "After", "impact": 5}, headers=h)
    assert patched.status_code == 200
    assert (await client.get(detail_url, headers=h)).json()["title"] == "After"
    assert [r["title"] for r in (await client.get(RISKS, headers=h)).json()["items"]] == ["After"]
    cells = (await client.get("/api/v1/dashboard/matrix", headers=h)).json()["cells"]
    assert {(c["impact"], c["probability"]) for c in cells if c["count"]} == {(5, 4)}

    await new_risk(client, admin, "Second")
    stats = (await client.get("/api/v1/dashboard/stats", headers=h)).json()
    assert stats["total_risks"] == 2
    assert (await client.delete(detail_url, headers=h)).status_code == 204
    assert (await client.get(detail_url, headers=h)).status_code == 404
    assert (await client.get(RISKS, headers=h)).json()["total"] == 1


async def test_a_mitigation_write_refreshes_the_statistics_and_nothing_else(
    client: httpx.AsyncClient, admin: Account
) -> None:
    """Writes invalidate what they change. Of the dashboard, only the statistics
    report mitigations; the heatmap, timeline and top risks stay cached."""
    h = admin.in_tenant()
    risk = await new_risk(client, admin, "Mitigated soon")
    others = [
        "/api/v1/dashboard/matrix",
        "/api/v1/dashboard/timeline",
        "/api/v1/dashboard/top-risks",
    ]
    stats_url = "/api/v1/dashboard/stats"
    for url in (stats_url, *others):
        await client.get(url, headers=h)
    before = (await client.get(stats_url, headers=h)).json()["mitigations"]
    created = await client.post(
        f"{RISKS}/{risk['id']}/mitigations",
        json={"title": "Patch it", "status": "IN_PROGRESS", "progress": 40},
        headers=h,
    )
    assert created.status_code == 201, created.text
    stats = await client.get(stats_url, headers=h)
    assert stats.headers["x-cache"] == "MISS"
    assert stats.json()["mitigations"] != before
    assert [(await client.get(url, headers=h)).headers["x-cache"] for url in others] == ["HIT"] * 3


async def test_asset_criticality_change_refreshes_cached_scores(
    client: httpx.AsyncClient, admin: Account
) -> None:
    h = admin.in_tenant()
    asset = (
        await client.post(
            "/api/v1/assets",
            json={"name": "db", "type": "server", "criticality": "MEDIUM"},
            headers=h,
        )
    ).json()
    risk = (
        await client.post(
            RISKS,
            json={"title": "Scored", "impact": 3, "probability": 4, "asset_ids": [asset["id"]]},
            headers=h,
        )
    ).json()
    url = f"{RISKS}/{risk['id']}"
    assert (await client.get(url, headers=h)).json()["score"] == 12.0
    await client.patch(f"/api/v1/assets/{asset['id']}", json={"criticality": "CRITICAL"}, headers=h)
    assert (await client.get(url, headers=h)).json()["score"] == 18.0
    assert (await client.get(RISKS, headers=h)).json()["items"][0]["score"] == 18.0


async def test_tenants_never_share_cached_answers(app: FastAPI, client: httpx.AsyncClient) -> None:
    alpha = await register(client, tenant_name="Alpha")
    beta = await register(client, tenant_name="Beta")
    await new_risk(client, alpha, "Alpha secret")
    for account in (alpha, beta, alpha, beta):
        await client.get(RISKS, headers=account.in_tenant())
    seen = (await client.get(RISKS, headers=beta.in_tenant())).json()
    assert seen["total"] == 0 and "Alpha secret" not in str(seen)


def test_differently_permitted_readers_get_different_keys() -> None:
    def reader(grants: tuple[str, ...]) -> str:
        membership = ResolvedMembership(
            user_id=uuid.uuid4(),
            email="x@example.com",
            is_superuser=False,
            tenant_id=uuid.uuid4(),
            tenant_slug="t",
            tenant_status="active",
            role_id=uuid.uuid4(),
            role_name="custom",
            role_level=1,
            grants=grants,
        )
        bound = answers.DETAIL.bind(
            session=None, context=membership.context(), tenant_id=uuid.uuid4(), risk_id=uuid.uuid4()
        )
        return bound.place.variant

    assert reader(("risk:read",)) == reader(("risk:read",)) == "all"
    own_one, own_two = reader(("risk:read:own",)), reader(("risk:read:own",))
    assert own_one.startswith("own-") and own_one != own_two


async def test_concurrent_misses_on_one_key_compute_once(
    app: FastAPI, client: httpx.AsyncClient, admin: Account
) -> None:
    world = Tenant(app, client, admin, "flight")
    for _ in range(3):
        await world.risk()
    statements: list[str] = []

    def count(conn: object, cursor: object, statement: str, *args: object) -> None:
        if "risk" in statement.lower():
            statements.append(statement)

    engine = app.state.db.engine.sync_engine
    event.listen(engine, "before_cursor_execute", count)
    try:
        single = await client.get("/api/v1/dashboard/stats?period=7d", headers=admin.in_tenant())
        per_computation = len(statements)
        statements.clear()
        answers = await asyncio.gather(
            *(
                client.get("/api/v1/dashboard/stats?period=30d", headers=admin.in_tenant())
                for _ in range(100)
            )
        )
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert single.headers["x-cache"] == "MISS" and per_computation > 0
    assert len(statements) == per_computation  # 100 requests, one computation
    assert {a.status_code for a in answers} == {200}
    assert len({a.content for a in answers}) == 1
