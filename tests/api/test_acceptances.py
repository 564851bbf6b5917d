"""Risk acceptance: requested with a justification and an expiry, decided by someone else
(segregation of duties), above the appetite only by a senior enough approver; ACCEPTED is
reached no other way; revoking and expiry (on an injected clock) make the risk ACTIVE again;
every step is in the history and the audit log."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
from fastapi import FastAPI

from openrisk.core.uow import UnitOfWork
from openrisk.methodology import acceptance, clock
from openrisk.rbac.catalogue import ANALYST, MANAGER
from tests.api.test_risk_model import body_of, current, put
from tests.api.test_risks_helpers import member, new_risk
from tests.conftest import Account

RISKS = "/api/v1/risks"
ACCEPTANCES = "/api/v1/acceptances"


def today() -> date:
    return datetime.now(UTC).date()


async def request_acceptance(
    client: httpx.AsyncClient, account: Account, risk_id: str, days: int = 30, **extra: Any
) -> httpx.Response:
    body = {
        "justification": "Compensated by network monitoring",
        "expires_on": (today() + timedelta(days=days)).isoformat(),
        **extra,
    }
    return await client.post(
        f"{RISKS}/{risk_id}/acceptances", json=body, headers=account.in_tenant()
    )


async def decide(
    client: httpx.AsyncClient, account: Account, acceptance_id: str, verb: str
) -> httpx.Response:
    return await client.post(
        f"{ACCEPTANCES}/{acceptance_id}/{verb}",
        json={"comment": f"{verb} by {account.email}"},
        headers=account.in_tenant(),
    )


async def actions(client: httpx.AsyncClient, admin: Account, risk_id: str) -> list[Any]:
    history = (await client.get(f"{RISKS}/{risk_id}/history", headers=admin.headers)).json()
    return [(h["action"], h["changes"].get("acceptance")) for h in history["items"]]


async def test_request_approve_revoke_with_segregation_of_duties(
    app: FastAPI, client: httpx.AsyncClient, admin: Account
) -> None:
    manager = await member(app, client, admin, MANAGER)
    risk = await new_risk(client, admin, impact=3, probability=4, status="ACTIVE")
    made = await request_acceptance(
        client, admin, risk["id"], compensating_controls="IDS on the segment"
    )
    assert made.status_code == 201, made.text
    submitted = made.json()
    assert submitted["status"] == "submitted" and submitted["requested_by"] == admin.user_id
    again = await request_acceptance(client, admin, risk["id"])
    assert again.status_code == 409
    queue = await client.get(ACCEPTANCES, params={"status": "submitted"}, headers=admin.headers)
    assert [a["id"] for a in queue.json()["items"]] == [submitted["id"]]

    own = await decide(client, admin, submitted["id"], "approve")
    assert own.status_code == 403 and "Segregation of duties" in own.json()["detail"]
    approved = await decide(client, manager, submitted["id"], "approve")
    assert approved.status_code == 200, approved.text
    assert approved.json()["status"] == "approved"
    assert approved.json()["decided_by"] == manager.user_id
    got = (await client.get(f"{RISKS}/{risk['id']}", headers=admin.headers)).json()
    assert (got["status"], got["treatment"]) == ("ACCEPTED", "ACCEPT")
    assert got["acceptance_expires_on"] == submitted["expires_on"]
    twice = await decide(client, manager, submitted["id"], "approve")
    assert twice.status_code == 409

    revoked = await decide(client, manager, submitted["id"], "revoke")
    assert revoked.status_code == 200 and revoked.json()["status"] == "revoked"
    got = (await client.get(f"{RISKS}/{risk['id']}", headers=admin.headers)).json()
    assert got["status"] == "ACTIVE" and got["acceptance_expires_on"] is None
    assert await actions(client, admin, risk["id"]) == [
        ("STATUS_CHANGE", {"before": "approved", "after": "revoked"}),
        ("STATUS_CHANGE", {"before": "submitted", "after": "approved"}),
        ("UPDATE", {"before": "", "after": "submitted"}),
        ("CREATE", None),
    ]
    audit = await client.get(
        "/api/v1/audit-events", params={"resource": "risk_acceptance"}, headers=admin.headers
    )
    assert [e["action"] for e in audit.json()["items"]] == [
        "risk_acceptance.revoke",
        "risk_acceptance.approve",
        "risk_acceptance.submit",
    ]

    rejected_one = (await request_acceptance(client, admin, risk["id"])).json()
    rejected = await decide(client, manager, rejected_one["id"], "reject")
    assert rejected.status_code == 200 and rejected.json()["status"] == "rejected"
    assert (await client.get(f"{RISKS}/{risk['id']}", headers=admin.headers)).json()[
        "status"
    ] == "ACTIVE"


async def test_accepted_is_reached_through_the_workflow_only(
    client: httpx.AsyncClient, admin: Account
) -> None:
    risk = await new_risk(client, admin, impact=2, probability=2)
    for response in (
        await client.patch(
            f"{RISKS}/{risk['id']}", json={"status": "ACCEPTED"}, headers=admin.headers
        ),
        await client.post(
            RISKS,
            json={"title": "x", "impact": 1, "probability": 1, "status": "ACCEPTED"},
            headers=admin.headers,
        ),
        await client.post(
            f"{RISKS}/bulk",
            json={"action": "update", "ids": [risk["id"]], "changes": {"status": "ACCEPTED"}},
            headers=admin.headers,
        ),
    ):
        assert response.status_code == 409, response.text
        assert "/acceptances" in response.json()["detail"]


async def test_expiry_and_appetite_rules(
    app: FastAPI, client: httpx.AsyncClient, admin: Account
) -> None:
    manager = await member(app, client, admin, MANAGER)
    analyst = await member(app, client, admin, ANALYST)
    model = await current(client, admin)
    changed = await put(
        client, admin, body_of(model, acceptance={"max_days": 90, "approver_min_level": 9})
    )
    assert changed.status_code == 200, changed.text
    risk = await new_risk(client, admin, impact=2, probability=3)
    too_far = await request_acceptance(client, admin, risk["id"], days=91)
    assert too_far.status_code == 422
    assert too_far.json()["errors"][0]["field"] == "expires_on" and "90" in too_far.text
    past = await request_acceptance(client, admin, risk["id"], days=0)
    assert past.status_code == 422
    theirs = await request_acceptance(client, analyst, risk["id"])
    assert theirs.status_code == 403  # an Analyst updates only its own risks

    # above the appetite (25 > 14.99) a Manager (level 6) may not approve; an Admin (9) may
    hot = await new_risk(client, admin, impact=5, probability=5, status="ACTIVE")
    asked = (await request_acceptance(client, manager, hot["id"], days=10)).json()
    refused = await decide(client, manager, asked["id"], "approve")
    assert refused.status_code == 403  # the requester, whatever the level
    by_admin = await decide(client, admin, asked["id"], "approve")
    assert by_admin.status_code == 200, by_admin.text
    other = await new_risk(client, admin, impact=5, probability=4, status="ACTIVE")
    asked_other = (await request_acceptance(client, admin, other["id"], days=10)).json()
    low_level = await decide(client, manager, asked_other["id"], "approve")
    assert low_level.status_code == 403 and "at least 9" in low_level.json()["detail"]

    # expiry: not on its last day, the day after (an injected date, no waiting)
    expires_on = date.fromisoformat(asked["expires_on"])
    tenant = uuid.UUID(admin.tenant_id)
    async with app.state.db.session() as session:
        none = await acceptance.expire_due(
            uow=UnitOfWork(session), today=expires_on, tenant_ids=[tenant]
        )
    assert none == []
    async with app.state.db.session() as session:
        expired = await acceptance.expire_due(
            uow=UnitOfWork.for_app(app.state, session),
            today=expires_on + timedelta(days=1),
            tenant_ids=[tenant],
        )
    assert [str(e) for e in expired] == [asked["id"]]
    got = (await client.get(f"{RISKS}/{hot['id']}", headers=admin.headers)).json()
    assert got["status"] == "ACTIVE" and got["acceptance_expires_on"] is None
    ended = (await client.get(f"{ACCEPTANCES}/{asked['id']}", headers=admin.headers)).json()
    assert ended["status"] == "expired"
    assert (await actions(client, admin, hot["id"]))[0] == (
        "STATUS_CHANGE",
        {"before": "approved", "after": "expired"},
    )
    audit = await client.get(
        "/api/v1/audit-events",
        params={"action": "risk_acceptance.expire"},
        headers=admin.headers,
    )
    assert audit.json()["items"][0]["resource_id"] == asked["id"]


async def test_today_comes_from_the_applications_clock(
    app: FastAPI, client: httpx.AsyncClient, admin: Account
) -> None:
    risk = await new_risk(client, admin, impact=2, probability=2)
    clock.set_today(lambda: date(2031, 3, 1))
    try:
        body = {"justification": "j", "expires_on": "2031-04-01"}
        made = await client.post(
            f"{RISKS}/{risk['id']}/acceptances", json=body, headers=admin.headers
        )
        assert made.status_code == 201, made.text
        late = {"justification": "j", "expires_on": "2032-04-01"}
        other = await new_risk(client, admin, impact=2, probability=2)
        refused = await client.post(
            f"{RISKS}/{other['id']}/acceptances", json=late, headers=admin.headers
        )
        assert refused.status_code == 422 and "2032-02-29" in refused.text  # 365 days, a leap year
    finally:
        clock.set_today(None)


async def test_leaving_accepted_another_way_ends_the_acceptance(
    app: FastAPI, client: httpx.AsyncClient, admin: Account
) -> None:
    manager = await member(app, client, admin, MANAGER)
    made = []
    for _ in range(2):
        risk = await new_risk(client, admin, impact=2, probability=2)
        asked = (await request_acceptance(client, admin, risk["id"])).json()
        assert (await decide(client, manager, asked["id"], "approve")).status_code == 200
        made.append((risk, asked))
    (first, _), (second, _) = made
    response = await client.patch(
        f"{RISKS}/{first['id']}", json={"status": "ACTIVE"}, headers=admin.headers
    )
    assert response.status_code == 200, response.text
    assert response.json()["acceptance_expires_on"] is None
    bulk = await client.post(
        f"{RISKS}/bulk",
        json={"action": "update", "ids": [second["id"]], "changes": {"status": "CLOSED"}},
        headers=admin.headers,
    )
    assert bulk.status_code == 200, bulk.text
    for risk, asked in made:
        ended = (await client.get(f"{ACCEPTANCES}/{asked['id']}", headers=admin.headers)).json()
        assert ended["status"] == "revoked" and ended["ended_at"] is not None
        latest = (await actions(client, admin, risk["id"]))[0]
        assert latest == ("STATUS_CHANGE", {"before": "approved", "after": "revoked"})
    audit = await client.get(
        "/api/v1/audit-events", params={"resource": "risk_acceptance"}, headers=admin.headers
    )
    assert [e["action"] for e in audit.json()["items"]][:2] == [
        "risk_acceptance.revoke",
        "risk_acceptance.revoke",
    ]


async def test_the_requester_withdraws_and_only_approvers_revoke(
    app: FastAPI, client: httpx.AsyncClient, admin: Account
) -> None:
    analyst = await member(app, client, admin, ANALYST)
    risk = await new_risk(client, analyst, impact=2, probability=2)
    asked = (await request_acceptance(client, analyst, risk["id"])).json()
    withdrawn = await decide(client, analyst, asked["id"], "revoke")
    assert withdrawn.status_code == 200 and withdrawn.json()["status"] == "revoked"
    again = (await request_acceptance(client, analyst, risk["id"])).json()
    assert (await decide(client, admin, again["id"], "approve")).status_code == 200
    refused = await decide(client, analyst, again["id"], "revoke")
    assert refused.status_code == 403
    assert (await decide(client, admin, again["id"], "revoke")).status_code == 200
