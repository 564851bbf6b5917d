"""A planned mitigation whose sub-actions are being done is in progress: at 2 of 3 it reads
"In progress" at 67 %, and the dashboard's mitigation counts follow."""

from __future__ import annotations

import httpx

from tests.conftest import Account


async def test_completing_sub_actions_moves_a_planned_mitigation_in_progress(
    client: httpx.AsyncClient, admin: Account
) -> None:
    h = admin.in_tenant()
    risk = await client.post(
        "/api/v1/risks", json={"title": "Progress risk", "impact": 2, "probability": 2}, headers=h
    )
    made = await client.post(
        f"/api/v1/risks/{risk.json()['id']}/mitigations",
        json={"title": "Three steps", "sub_actions": [{"title": t} for t in ("a", "b", "c")]},
        headers=h,
    )
    assert made.status_code == 201 and made.json()["status"] == "PLANNED"
    url = f"/api/v1/mitigations/{made.json()['id']}"
    before = (await client.get("/api/v1/dashboard/stats", headers=h)).json()["mitigations"]
    for sub in made.json()["sub_actions"][:2]:
        done = await client.patch(
            f"{url}/subactions/{sub['id']}", json={"completed": True}, headers=h
        )
        assert done.status_code == 200, done.text
    body = (await client.get(url, headers=h)).json()
    assert (body["status"], body["progress"]) == ("IN_PROGRESS", 67)
    after = (await client.get("/api/v1/dashboard/stats", headers=h)).json()["mitigations"]
    assert after["planned"] == before["planned"] - 1
    assert after["in_progress"] == before["in_progress"] + 1
