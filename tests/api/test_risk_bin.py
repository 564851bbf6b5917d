"""The bin: deleted risks listed (paged, newest deletion first) and restored with the
mitigations deleted together with them, on SQLite and PostgreSQL."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import select

from openrisk.rbac.catalogue import ANALYST, VIEWER
from openrisk.risks import rollups
from openrisk.risks.history import rebuild_daily_stats
from openrisk.risks.models import RiskDailyStat
from tests.api.test_dashboard import _rollup_rows
from tests.api.test_risks_helpers import (
    ASSETS,
    RISKS,
    assert_problem,
    count_queries,
    member,
    new_asset,
    new_risk,
)
from tests.conftest import Account

BIN = f"{RISKS}/deleted"


async def _mitigation(client: httpx.AsyncClient, admin: Account, risk_id: str, **body: Any) -> str:
    response = await client.post(
        f"{RISKS}/{risk_id}/mitigations", json={"title": "fix", **body}, headers=admin.headers
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def _aggregates(app: FastAPI, tenant: uuid.UUID) -> list[Any]:
    """The dashboard roll-ups and the timeline's daily aggregates of the tenant."""
    async with app.state.db.session() as session:
        daily = await session.scalars(
            select(RiskDailyStat).where(RiskDailyStat.tenant_id == tenant)
        )
        stats = sorted(
            (r.day, r.total_delta, float(r.score_delta), r.created, r.mitigated) for r in daily
        )
    return [await _rollup_rows(app, tenant), stats]


async def test_a_deleted_risk_comes_back_with_the_mitigations_deleted_with_it(
    app: FastAPI, client: httpx.AsyncClient, admin: Account
) -> None:
    risk = await new_risk(client, admin, title="Ransomware on the file server", tags=["ops"])
    kept = await _mitigation(client, admin, risk["id"], title="Offline backups")
    await _mitigation(client, admin, risk["id"], title="EDR rollout", status="IN_PROGRESS")
    gone_before = await _mitigation(client, admin, risk["id"], title="Abandoned idea")
    assert (
        await client.delete(f"/api/v1/mitigations/{gone_before}", headers=admin.headers)
    ).status_code == 204
    before_stats = (await client.get("/api/v1/dashboard/stats", headers=admin.headers)).json()
    register = (await client.get(RISKS, headers=admin.headers)).json()  # cached from here
    assert [r["id"] for r in register["items"]] == [risk["id"]]

    assert (await client.delete(f"{RISKS}/{risk['id']}", headers=admin.headers)).status_code == 204
    assert (await client.get(RISKS, headers=admin.headers)).json()["total"] == 0
    binned = (await client.get(BIN, headers=admin.headers)).json()
    assert binned["total"] == 1 and binned["page"] == 1
    (item,) = binned["items"]
    assert item["id"] == risk["id"] and item["title"] == "Ransomware on the file server"
    assert item["deleted_by"] == admin.user_id
    assert item["mitigations"] == 2  # the one deleted on its own earlier stays out
    assert item["score"] == risk["score"] and item["severity"] == risk["severity"]

    restored = await client.post(f"{RISKS}/{risk['id']}/restore", headers=admin.headers)
    assert restored.status_code == 200, restored.text
    assert restored.json()["id"] == risk["id"]
    assert restored.json()["version"] == risk["version"] + 2  # deleted, then restored
    fetched = await client.get(f"{RISKS}/{risk['id']}", headers=admin.headers)
    assert fetched.status_code == 200
    assert fetched.headers["ETag"] == restored.headers["ETag"]
    assert (await client.get(BIN, headers=admin.headers)).json() == {
        "items": [],
        "total": 0,
        "page": 1,
        "page_size": 20,
    }

    # back everywhere a live risk shows: register (cache invalidated), search, tags, dashboard
    assert [r["id"] for r in (await client.get(RISKS, headers=admin.headers)).json()["items"]] == [
        risk["id"]
    ]
    search = (await client.get(f"{RISKS}/search?q=ransomware", headers=admin.headers)).json()
    assert [h["id"] for h in search["items"]] == [risk["id"]]
    tagged = (await client.get(f"{RISKS}?tag=ops", headers=admin.headers)).json()
    assert tagged["total"] == 1
    mitigations = (
        await client.get(f"{RISKS}/{risk['id']}/mitigations", headers=admin.headers)
    ).json()
    assert sorted(m["title"] for m in mitigations["items"]) == ["EDR rollout", "Offline backups"]
    assert kept in {m["id"] for m in mitigations["items"]}
    after_stats = (await client.get("/api/v1/dashboard/stats", headers=admin.headers)).json()
    assert after_stats == before_stats

    # a history row and an audit row say who restored it
    history = (await client.get(f"{RISKS}/{risk['id']}/history", headers=admin.headers)).json()
    assert [h["action"] for h in history["items"]][:2] == ["RESTORE", "DELETE"]
    assert history["items"][0]["changed_by"] == admin.user_id
    assert history["items"][0]["changes"]["deleted_at"]["after"] is None
    audit = (
        await client.get("/api/v1/audit-events?action=risk.restore", headers=admin.headers)
    ).json()
    assert [(e["resource_id"], e["actor_user_id"]) for e in audit["items"]] == [
        (risk["id"], admin.user_id)
    ]

    # the incremental roll-ups and daily aggregates equal a rebuild from the tables
    tenant = uuid.UUID(admin.tenant_id)
    incremental = await _aggregates(app, tenant)
    async with app.state.db.session() as session:
        await rollups.rebuild(session, tenant_ids=[tenant])
        await rebuild_daily_stats(session, tenant_ids=[tenant])
        await session.commit()
    assert incremental == await _aggregates(app, tenant)


async def test_a_restored_risk_is_scored_from_its_assets_as_they_are_now(
    client: httpx.AsyncClient, admin: Account
) -> None:
    asset = await new_asset(client, admin, "LOW")
    risk = await new_risk(client, admin, impact=4, probability=4, asset_ids=[asset["id"]])
    await client.delete(f"{RISKS}/{risk['id']}", headers=admin.headers)
    raised = await client.patch(
        f"{ASSETS}/{asset['id']}", json={"criticality": "CRITICAL"}, headers=admin.headers
    )
    assert raised.status_code == 200
    binned = (await client.get(BIN, headers=admin.headers)).json()["items"][0]
    assert binned["score"] == risk["score"]  # what it was when deleted

    restored = (await client.post(f"{RISKS}/{risk['id']}/restore", headers=admin.headers)).json()
    assert restored["score"] > risk["score"]
    assert restored["severity"] == "CRITICAL"
    history = (await client.get(f"{RISKS}/{risk['id']}/history", headers=admin.headers)).json()
    assert history["items"][0]["changes"]["score"]["before"] == risk["score"]


async def test_the_bin_pages_past_one_page_newest_deletion_first(
    app: FastAPI, client: httpx.AsyncClient, admin: Account
) -> None:
    ids = [(await new_risk(client, admin, title=f"Risk {n:02d}"))["id"] for n in range(25)]
    for chunk in (ids[:12], ids[12:]):  # two deletions: the second batch is the newer one
        done = await client.post(
            f"{RISKS}/bulk", json={"action": "delete", "ids": chunk}, headers=admin.headers
        )
        assert done.status_code == 200, done.text
    pages = []
    for number in (1, 2, 3, 4):
        with count_queries(app) as statements:
            response = await client.get(
                BIN, params={"page": number, "page_size": 10}, headers=admin.headers
            )
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["total"] == 25 and body["page_size"] == 10
        pages.append([item["id"] for item in body["items"]])
        assert all(item["mitigations"] == 0 for item in body["items"])
        bin_statements = [s for s in statements if "risks" in s and "deleted_at IS NOT NULL" in s]
        assert len(bin_statements) <= 2, statements  # the count and the page, whatever its size
    assert [len(p) for p in pages] == [10, 10, 5, 0]
    listed = [i for p in pages for i in p]
    assert sorted(listed) == sorted(ids)  # every deleted risk once
    assert set(listed[:13]) == set(ids[12:])  # the later deletion first


async def test_restoring_what_is_not_in_the_bin(client: httpx.AsyncClient, admin: Account) -> None:
    risk = await new_risk(client, admin)
    live = await client.post(f"{RISKS}/{risk['id']}/restore", headers=admin.headers)
    assert_problem(live, 409)
    assert "not deleted" in live.json()["detail"]
    unknown = await client.post(f"{RISKS}/{uuid.uuid4()}/restore", headers=admin.headers)
    assert_problem(unknown, 404)
    await client.delete(f"{RISKS}/{risk['id']}", headers=admin.headers)
    first = await client.post(f"{RISKS}/{risk['id']}/restore", headers=admin.headers)
    again = await client.post(f"{RISKS}/{risk['id']}/restore", headers=admin.headers)
    assert first.status_code == 200
    assert_problem(again, 409)
    bad = await client.get(BIN, params={"page_size": 1000}, headers=admin.headers)
    assert_problem(bad, 422, "page_size")


async def test_own_delete_grants_see_and_restore_only_their_own_risks(
    app: FastAPI, client: httpx.AsyncClient, admin: Account
) -> None:
    analyst = await member(app, client, admin, ANALYST)  # risk:delete:own
    viewer = await member(app, client, admin, VIEWER)
    mine = await new_risk(client, analyst)
    theirs = await new_risk(client, admin)
    for risk in (mine, theirs):
        await client.delete(f"{RISKS}/{risk['id']}", headers=admin.headers)

    seen = (await client.get(BIN, headers=analyst.in_tenant())).json()
    assert [i["id"] for i in seen["items"]] == [mine["id"]] and seen["total"] == 1
    refused = await client.post(f"{RISKS}/{theirs['id']}/restore", headers=analyst.in_tenant())
    assert_problem(refused, 403)
    allowed = await client.post(f"{RISKS}/{mine['id']}/restore", headers=analyst.in_tenant())
    assert allowed.status_code == 200, allowed.text
    for response in (
        await client.get(BIN, headers=viewer.in_tenant()),
        await client.post(f"{RISKS}/{theirs['id']}/restore", headers=viewer.in_tenant()),
    ):
        assert_problem(response, 403)
    everything = (await client.get(BIN, headers=admin.headers)).json()
    assert [i["id"] for i in everything["items"]] == [theirs["id"]]
