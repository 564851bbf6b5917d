"""Risk register CRUD, scoring, optimistic locking and history."""

from __future__ import annotations

import uuid

import httpx
import pytest
from fastapi import FastAPI

from openrisk.rbac.catalogue import ANALYST, MANAGER, VIEWER
from tests.api.test_risks_helpers import (
    RISKS,
    assert_problem,
    member,
    new_asset,
    new_risk,
)
from tests.conftest import Account, register

SHAPE = {
    "id",
    "title",
    "description",
    "impact",
    "probability",
    "score",
    "severity",
    "status",
    "treatment",
    "owner_id",
    "tags",
    "frameworks",
    "asset_ids",
    "custom_fields",
    "review_date",
    "version",
    "created_at",
    "updated_at",
}


async def test_create_scores_3_4_as_12_medium(client: httpx.AsyncClient, admin: Account) -> None:
    risk = await new_risk(client, admin, impact=3, probability=4, tags=["PCI", "pci", "Cloud"])
    assert set(risk) >= SHAPE
    assert risk["score"] == 12.0
    assert risk["severity"] == "MEDIUM"
    assert risk["owner_id"] == admin.user_id
    assert risk["version"] == 1
    assert risk["status"] == "DRAFT"
    assert risk["tags"] == ["pci", "cloud"]
    fetched = await client.get(f"{RISKS}/{risk['id']}", headers=admin.headers)
    assert fetched.status_code == 200
    assert fetched.json() == risk


async def test_asset_factors_give_10_25_and_criticality_rescores(
    client: httpx.AsyncClient, admin: Account
) -> None:
    low = await new_asset(client, admin, "LOW")
    high = await new_asset(client, admin, "HIGH")
    risk = await new_risk(client, admin, impact=2, probability=5, asset_ids=[low["id"], high["id"]])
    assert risk["score"] == 10.25
    assert risk["severity"] == "MEDIUM"
    assert sorted(risk["asset_ids"]) == sorted([low["id"], high["id"]])

    raised = await client.patch(
        f"/api/v1/assets/{low['id']}", json={"criticality": "CRITICAL"}, headers=admin.headers
    )
    assert raised.status_code == 200
    rescored = (await client.get(f"{RISKS}/{risk['id']}", headers=admin.headers)).json()
    assert rescored["score"] == 13.75  # 10 × (1.5 + 1.25) / 2
    assert rescored["severity"] == "MEDIUM"
    assert rescored["version"] == 2
    history = (await client.get(f"{RISKS}/{risk['id']}/history", headers=admin.headers)).json()
    assert [h["action"] for h in history["items"]] == ["SCORE_CHANGE", "CREATE"]
    assert history["items"][0]["changes"]["score"] == {"before": 10.25, "after": 13.75}

    # a critical asset pushes a (4, 4) risk from HIGH (16) to CRITICAL (24)
    big = await new_risk(client, admin, impact=4, probability=4, asset_ids=[low["id"]])
    assert (big["score"], big["severity"]) == (24.0, "CRITICAL")

    deleted = await client.delete(f"/api/v1/assets/{low['id']}", headers=admin.headers)
    assert deleted.status_code == 204
    after = (await client.get(f"{RISKS}/{risk['id']}", headers=admin.headers)).json()
    assert after["asset_ids"] == [high["id"]]
    assert after["score"] == 12.5


async def test_validation_names_the_field(client: httpx.AsyncClient, admin: Account) -> None:
    cases = [
        ({"title": "", "impact": 3, "probability": 3}, "title"),
        ({"title": "x", "impact": 6, "probability": 3}, "impact"),
        ({"title": "x", "impact": 3, "probability": 0}, "probability"),
        ({"title": "x", "impact": "high", "probability": 3}, "impact"),
        ({"title": "x" * 256, "impact": 3, "probability": 3}, "title"),
        ({"title": "x", "impact": 3, "probability": 3, "status": "OPEN"}, "status"),
        ({"title": "x", "impact": 3, "probability": 3, "treatment": "IGNORE"}, "treatment"),
        ({"title": "x", "impact": 3, "probability": 3, "score": 99}, "score"),
        ({"title": "x", "impact": 3, "probability": 3, "review_date": "soon"}, "review_date"),
        ({"title": "x", "impact": 3, "probability": 3, "asset_ids": ["nope"]}, "asset_ids.0"),
        ({"impact": 3, "probability": 3}, "title"),
    ]
    for body, field in cases:
        response = await client.post(RISKS, json=body, headers=admin.headers)
        assert_problem(response, 422, field)
    unknown_asset = await client.post(
        RISKS,
        json={"title": "x", "impact": 1, "probability": 1, "asset_ids": [str(uuid.uuid4())]},
        headers=admin.headers,
    )
    assert_problem(unknown_asset, 422, "asset_ids")
    stranger = await register(client, tenant_name="Strangers")
    not_member = await client.post(
        RISKS,
        json={"title": "x", "impact": 1, "probability": 1, "owner_id": stranger.user_id},
        headers=admin.headers,
    )
    assert_problem(not_member, 422, "owner_id")
    bad_json = await client.post(
        RISKS, content=b"{", headers={**admin.headers, "content-type": "application/json"}
    )
    assert bad_json.status_code == 422


async def test_patch_rescores_and_records_history(
    client: httpx.AsyncClient, admin: Account
) -> None:
    risk = await new_risk(client, admin, impact=2, probability=2)
    url = f"{RISKS}/{risk['id']}"
    patched = await client.patch(
        url, json={"impact": 5, "probability": 4, "version": 1}, headers=admin.headers
    )
    assert patched.status_code == 200, patched.text
    body = patched.json()
    assert (body["score"], body["severity"], body["version"]) == (20.0, "CRITICAL", 2)
    status = await client.patch(
        url, json={"status": "ACTIVE"}, headers={**admin.headers, "If-Match": '"2"'}
    )
    assert status.status_code == 200
    assert status.json()["version"] == 3
    noop = await client.patch(url, json={"status": "ACTIVE"}, headers=admin.headers)
    assert noop.json()["version"] == 3
    history = (await client.get(f"{url}/history", headers=admin.headers)).json()
    assert [h["action"] for h in history["items"]] == ["STATUS_CHANGE", "UPDATE", "CREATE"]
    update = history["items"][1]
    assert update["changes"]["score"] == {"before": 4.0, "after": 20.0}
    assert update["changes"]["impact"] == {"before": 2, "after": 5}
    assert history["items"][0]["changes"]["status"] == {"before": "DRAFT", "after": "ACTIVE"}
    assert_problem(
        await client.patch(url, json={"title": None}, headers=admin.headers), 422, "title"
    )
    assert_problem(
        await client.patch(url, json={"impact": 9}, headers=admin.headers), 422, "impact"
    )


async def test_stale_version_is_412(client: httpx.AsyncClient, admin: Account) -> None:
    risk = await new_risk(client, admin)
    url = f"{RISKS}/{risk['id']}"
    assert (await client.patch(url, json={"title": "v2"}, headers=admin.headers)).status_code == 200
    stale_body = await client.patch(url, json={"title": "v3", "version": 1}, headers=admin.headers)
    assert_problem(stale_body, 412)
    stale_header = await client.patch(
        url, json={"title": "v3"}, headers={**admin.headers, "If-Match": 'W/"1"'}
    )
    assert_problem(stale_header, 412)
    garbage = await client.patch(
        url, json={"title": "v3"}, headers={**admin.headers, "If-Match": '"abc"'}
    )
    assert_problem(garbage, 412)
    fresh = await client.patch(
        url, json={"title": "v3"}, headers={**admin.headers, "If-Match": '"2"'}
    )
    assert fresh.status_code == 200
    assert fresh.json()["title"] == "v3"
    anything = await client.patch(
        url, json={"title": "v4"}, headers={**admin.headers, "If-Match": "*"}
    )
    assert anything.status_code == 200


async def test_soft_delete_hides_the_risk(client: httpx.AsyncClient, admin: Account) -> None:
    risk = await new_risk(client, admin)
    url = f"{RISKS}/{risk['id']}"
    assert (await client.delete(url, headers=admin.headers)).status_code == 204
    assert_problem(await client.get(url, headers=admin.headers), 404)
    assert_problem(await client.delete(url, headers=admin.headers), 404)
    assert_problem(await client.patch(url, json={"title": "x"}, headers=admin.headers), 404)
    listed = (await client.get(RISKS, headers=admin.headers)).json()
    assert risk["id"] not in {r["id"] for r in listed["items"]}


async def test_other_tenants_get_404_on_every_route(
    client: httpx.AsyncClient, admin: Account
) -> None:
    risk = await new_risk(client, admin)
    outsider = await register(client, tenant_name="Outsiders")
    url = f"{RISKS}/{risk['id']}"
    for method, path, body in (
        ("GET", url, None),
        ("PATCH", url, {"title": "mine now"}),
        ("DELETE", url, None),
        ("GET", f"{url}/history", None),
        ("GET", f"{url}/mitigations", None),
        ("POST", f"{url}/mitigations", {"title": "m"}),
    ):
        response = await client.request(method, path, json=body, headers=outsider.headers)
        assert_problem(response, 404)
    # naming the other tenant is 404 too
    response = await client.get(RISKS, headers=outsider.in_tenant(admin.tenant_id))
    assert_problem(response, 404)
    listed = (await client.get(RISKS, headers=outsider.headers)).json()
    assert listed["total"] == 0
    bulk = await client.post(
        f"{RISKS}/bulk",
        json={"action": "delete", "ids": [risk["id"]]},
        headers=outsider.headers,
    )
    assert bulk.json()["results"][0]["code"] == 404
    assert (await client.get(url, headers=admin.headers)).status_code == 200


async def test_roles_and_ownership_scopes(
    app: FastAPI, client: httpx.AsyncClient, admin: Account
) -> None:
    analyst = await member(app, client, admin, ANALYST)
    other_analyst = await member(app, client, admin, ANALYST)
    viewer = await member(app, client, admin, VIEWER)
    manager = await member(app, client, admin, MANAGER)

    assert_problem(
        await client.post(
            RISKS, json={"title": "x", "impact": 1, "probability": 1}, headers=viewer.in_tenant()
        ),
        403,
    )
    own = await new_risk(client, analyst)
    assert own["owner_id"] == analyst.user_id
    theirs = await new_risk(client, other_analyst)
    # an Analyst updates and deletes its own risks only
    ok = await client.patch(
        f"{RISKS}/{own['id']}", json={"title": "mine"}, headers=analyst.in_tenant()
    )
    assert ok.status_code == 200
    denied = await client.patch(
        f"{RISKS}/{theirs['id']}", json={"title": "yours"}, headers=analyst.in_tenant()
    )
    assert_problem(denied, 403)
    assert_problem(await client.delete(f"{RISKS}/{theirs['id']}", headers=analyst.in_tenant()), 403)
    # changing the owner needs risk:assign; accepting goes through the acceptance workflow
    assign = await client.patch(
        f"{RISKS}/{own['id']}",
        json={"owner_id": other_analyst.user_id},
        headers=analyst.in_tenant(),
    )
    assert_problem(assign, 403)
    accept = await client.patch(
        f"{RISKS}/{own['id']}", json={"status": "ACCEPTED"}, headers=analyst.in_tenant()
    )
    assert_problem(accept, 409)
    assert "acceptance workflow" in accept.json()["detail"]
    by_manager = await client.patch(
        f"{RISKS}/{own['id']}",
        json={"owner_id": other_analyst.user_id, "status": "ACCEPTED"},
        headers=manager.in_tenant(),
    )
    assert_problem(by_manager, 409)
    by_manager = await client.patch(
        f"{RISKS}/{own['id']}",
        json={"owner_id": other_analyst.user_id},
        headers=manager.in_tenant(),
    )
    assert by_manager.status_code == 200
    assert by_manager.json()["owner_id"] == other_analyst.user_id
    # viewers read
    assert (await client.get(f"{RISKS}/{own['id']}", headers=viewer.in_tenant())).status_code == 200
    assert_problem(
        await client.get(f"{RISKS}/export", headers=viewer.in_tenant()),
        403,
    )
    assert (
        await client.delete(f"{RISKS}/{theirs['id']}", headers=manager.in_tenant())
    ).status_code == 204


async def test_audit_events_are_written(
    app: FastAPI, client: httpx.AsyncClient, admin: Account
) -> None:
    from sqlalchemy import select

    from openrisk.audit.models import AuditEvent

    risk = await new_risk(client, admin)
    await client.patch(f"{RISKS}/{risk['id']}", json={"impact": 5}, headers=admin.headers)
    await client.delete(f"{RISKS}/{risk['id']}", headers=admin.headers)
    async with app.state.db.session() as session:
        actions = list(
            await session.scalars(
                select(AuditEvent.action)
                .where(AuditEvent.resource_id == risk["id"])
                .order_by(AuditEvent.created_at)
            )
        )
    assert actions == ["risk.create", "risk.update", "risk.delete"]


async def test_domain_events_are_published(
    app: FastAPI, client: httpx.AsyncClient, admin: Account, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.conftest import collect_relayed

    relayed = collect_relayed("risk.", monkeypatch)
    risk = await new_risk(client, admin)
    await client.patch(f"{RISKS}/{risk['id']}", json={"impact": 5}, headers=admin.headers)
    await client.delete(f"{RISKS}/{risk['id']}", headers=admin.headers)
    await app.state.jobs.drain()  # the relay hands committed events to the routes
    seen = [e for e in relayed if str(e.tenant_id) == admin.tenant_id]
    assert [e.type for e in seen] == ["risk.created", "risk.updated", "risk.deleted"]
    assert seen[1].data["impact"] == 5
