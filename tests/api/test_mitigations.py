"""Mitigations: CRUD, sub-actions and progress, recommendations, permissions."""

from __future__ import annotations

import uuid
from datetime import date, timedelta

import httpx
from fastapi import FastAPI

from openrisk.rbac.catalogue import ANALYST, MANAGER, VIEWER
from tests.api.test_risks_helpers import RISKS, assert_problem, member, new_risk
from tests.conftest import Account, register

MITIGATIONS = "/api/v1/mitigations"


async def _mitigation(
    client: httpx.AsyncClient, account: Account, risk_id: str, **fields: object
) -> dict[str, object]:
    response = await client.post(
        f"{RISKS}/{risk_id}/mitigations",
        json={"title": f"M {uuid.uuid4().hex[:6]}", **fields},
        headers=account.in_tenant(),
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


async def test_create_list_update_delete(client: httpx.AsyncClient, admin: Account) -> None:
    risk = await new_risk(client, admin, impact=4, probability=3)
    created = await _mitigation(
        client, admin, risk["id"], cost=1, effort_days=3, due_date="2031-01-01"
    )
    assert created["status"] == "PLANNED"
    assert created["priority"] == 3.0  # 12 / (1 + 3)
    assert created["risk_score"] == 12.0
    assert created["sub_actions"] == []
    listed = (await client.get(f"{RISKS}/{risk['id']}/mitigations", headers=admin.headers)).json()
    assert [m["id"] for m in listed["items"]] == [created["id"]]
    url = f"{MITIGATIONS}/{created['id']}"
    patched = await client.patch(url, json={"status": "DONE"}, headers=admin.headers)
    assert patched.status_code == 200
    assert (patched.json()["status"], patched.json()["progress"]) == ("DONE", 100)
    assert (await client.delete(url, headers=admin.headers)).status_code == 204
    assert_problem(await client.get(url, headers=admin.headers), 404)


async def test_validation(client: httpx.AsyncClient, admin: Account) -> None:
    risk = await new_risk(client, admin)
    url = f"{RISKS}/{risk['id']}/mitigations"
    for body, field in (
        ({"title": ""}, "title"),
        ({"title": "x", "cost": 4}, "cost"),
        ({"title": "x", "effort_days": 0}, "effort_days"),
        ({"title": "x", "progress": 101}, "progress"),
        ({"title": "x", "status": "STARTED"}, "status"),
        ({"title": "x", "due_date": "tomorrow"}, "due_date"),
        ({"title": "x", "assignee_id": str(uuid.uuid4())}, "assignee_id"),
        ({"title": "x", "progress": 10, "sub_actions": [{"title": "a"}]}, "progress"),
    ):
        assert_problem(await client.post(url, json=body, headers=admin.headers), 422, field)
    assert_problem(
        await client.post(
            f"{RISKS}/{uuid.uuid4()}/mitigations", json={"title": "x"}, headers=admin.headers
        ),
        404,
    )


async def test_sub_actions_drive_progress(client: httpx.AsyncClient, admin: Account) -> None:
    risk = await new_risk(client, admin)
    created = await _mitigation(
        client, admin, risk["id"], sub_actions=[{"title": "a"}, {"title": "b", "completed": True}]
    )
    assert created["progress"] == 50
    url = f"{MITIGATIONS}/{created['id']}"
    added = await client.post(f"{url}/subactions", json={"title": "c"}, headers=admin.headers)
    assert added.status_code == 201
    body = added.json()
    assert body["progress"] == 33
    assert [s["title"] for s in body["sub_actions"]] == ["a", "b", "c"]
    first = body["sub_actions"][0]["id"]
    toggled = await client.patch(
        f"{url}/subactions/{first}", json={"completed": True}, headers=admin.headers
    )
    assert toggled.json()["progress"] == 67
    last = body["sub_actions"][2]["id"]
    removed = await client.delete(f"{url}/subactions/{last}", headers=admin.headers)
    assert removed.status_code == 200
    assert removed.json()["progress"] == 100
    assert_problem(
        await client.patch(url, json={"progress": 10}, headers=admin.headers), 422, "progress"
    )
    assert_problem(
        await client.patch(
            f"{url}/subactions/{uuid.uuid4()}", json={"completed": True}, headers=admin.headers
        ),
        404,
    )
    assert_problem(
        await client.patch(
            f"{url}/subactions/{first}", json={"completed": None}, headers=admin.headers
        ),
        422,
        "completed",
    )


async def test_recommended_order_follows_priority(
    client: httpx.AsyncClient, admin: Account
) -> None:
    big = await new_risk(client, admin, impact=5, probability=5)  # 25
    small = await new_risk(client, admin, impact=2, probability=2)  # 4
    cheap = await _mitigation(client, admin, big["id"], cost=1, effort_days=1)  # 25 / 2 = 12.5
    costly = await _mitigation(client, admin, big["id"], cost=3, effort_days=20)  # 25 / 23
    quick = await _mitigation(client, admin, small["id"], cost=1, effort_days=1)  # 4 / 2 = 2
    done = await _mitigation(client, admin, big["id"], status="DONE")
    body = (await client.get(f"{MITIGATIONS}/recommended", headers=admin.headers)).json()
    ids = [m["id"] for m in body["items"]]
    assert ids == [cheap["id"], quick["id"], costly["id"]]
    assert done["id"] not in ids
    assert [m["priority"] for m in body["items"]] == [12.5, 2.0, 1.09]
    await client.delete(f"{RISKS}/{big['id']}", headers=admin.headers)
    after = (await client.get(f"{MITIGATIONS}/recommended", headers=admin.headers)).json()
    assert [m["id"] for m in after["items"]] == [quick["id"]]
    assert_problem(await client.get(f"{MITIGATIONS}/{cheap['id']}", headers=admin.headers), 404)


async def test_permissions(app: FastAPI, client: httpx.AsyncClient, admin: Account) -> None:
    analyst = await member(app, client, admin, ANALYST)
    colleague = await member(app, client, admin, ANALYST)
    viewer = await member(app, client, admin, VIEWER)
    manager = await member(app, client, admin, MANAGER)
    risk = await new_risk(client, admin)
    mine = await _mitigation(client, analyst, risk["id"])
    assigned = await _mitigation(client, manager, risk["id"], assignee_id=colleague.user_id)
    assert assigned["assignee_id"] == colleague.user_id
    # viewers read only
    assert (
        await client.get(f"{MITIGATIONS}/{mine['id']}", headers=viewer.in_tenant())
    ).status_code == 200
    assert_problem(
        await client.post(
            f"{RISKS}/{risk['id']}/mitigations", json={"title": "x"}, headers=viewer.in_tenant()
        ),
        403,
    )
    # analysts update what they created or are assigned
    ok = await client.patch(
        f"{MITIGATIONS}/{mine['id']}", json={"title": "mine"}, headers=analyst.in_tenant()
    )
    assert ok.status_code == 200
    ok2 = await client.patch(
        f"{MITIGATIONS}/{assigned['id']}",
        json={"status": "IN_PROGRESS"},
        headers=colleague.in_tenant(),
    )
    assert ok2.status_code == 200
    denied = await client.patch(
        f"{MITIGATIONS}/{assigned['id']}", json={"title": "x"}, headers=analyst.in_tenant()
    )
    assert_problem(denied, 403)
    # assigning someone else needs mitigation:assign
    reassign = await client.patch(
        f"{MITIGATIONS}/{mine['id']}",
        json={"assignee_id": colleague.user_id},
        headers=analyst.in_tenant(),
    )
    assert_problem(reassign, 403)
    to_self = await client.patch(
        f"{MITIGATIONS}/{mine['id']}",
        json={"assignee_id": analyst.user_id},
        headers=analyst.in_tenant(),
    )
    assert to_self.status_code == 200
    assert_problem(
        await client.delete(f"{MITIGATIONS}/{mine['id']}", headers=analyst.in_tenant()), 403
    )
    assert (
        await client.delete(f"{MITIGATIONS}/{mine['id']}", headers=manager.in_tenant())
    ).status_code == 204
    outsider = await register(client, tenant_name="No access")
    for method, path in (
        ("GET", f"{MITIGATIONS}/{assigned['id']}"),
        ("PATCH", f"{MITIGATIONS}/{assigned['id']}"),
        ("DELETE", f"{MITIGATIONS}/{assigned['id']}"),
        ("POST", f"{MITIGATIONS}/{assigned['id']}/subactions"),
    ):
        body = {"title": "x"} if method in ("PATCH", "POST") else None
        assert_problem(await client.request(method, path, json=body, headers=outsider.headers), 404)


async def test_overdue_flag(client: httpx.AsyncClient, admin: Account) -> None:
    risk = await new_risk(client, admin)
    late = await _mitigation(
        client, admin, risk["id"], due_date=(date.today() - timedelta(days=3)).isoformat()
    )
    assert late["overdue"] is True
    done = await client.patch(
        f"{MITIGATIONS}/{late['id']}", json={"status": "DONE"}, headers=admin.headers
    )
    assert done.json()["overdue"] is False
