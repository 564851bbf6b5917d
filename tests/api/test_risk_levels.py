"""Four levels per risk: inherent, current, residual (current less the open mitigations'
reductions) and target, stored, filtered and sorted; a done mitigation's reduction moves into
current with a history row naming it; the appetite flags follow the tenant's model."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import httpx

from openrisk.methodology.store import to_scoring
from tests.api.test_risk_model import body_of, current, put
from tests.api.test_risks_helpers import new_risk
from tests.conftest import Account

RISKS = "/api/v1/risks"


async def get(client: httpx.AsyncClient, admin: Account, risk_id: str) -> dict[str, Any]:
    response = await client.get(f"{RISKS}/{risk_id}", headers=admin.headers)
    assert response.status_code == 200, response.text
    return dict(response.json())


async def mitigate(
    client: httpx.AsyncClient, admin: Account, risk_id: str, **fields: Any
) -> dict[str, Any]:
    response = await client.post(
        f"{RISKS}/{risk_id}/mitigations", json={"title": "fix", **fields}, headers=admin.headers
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


def level(impact: int, probability: int, score: float, severity: str) -> dict[str, Any]:
    return {"impact": impact, "probability": probability, "score": score, "severity": severity}


async def ids(client: httpx.AsyncClient, admin: Account, **params: Any) -> list[str]:
    response = await client.get(RISKS, params=params, headers=admin.headers)
    assert response.status_code == 200, response.text
    return [r["id"] for r in response.json()["items"]]


async def test_a_new_risk_has_its_four_levels(client: httpx.AsyncClient, admin: Account) -> None:
    plain = await new_risk(client, admin, impact=4, probability=4)
    assert plain["inherent"] == plain["residual"] == level(4, 4, 16.0, "HIGH")
    assert plain["target"] is None
    assert plain["within_appetite"] is False and plain["residual_within_appetite"] is False
    full = await new_risk(
        client,
        admin,
        impact=3,
        probability=3,
        inherent={"impact": 5, "probability": 5},
        target={"impact": 1, "probability": 2},
    )
    assert full["inherent"] == level(5, 5, 25.0, "CRITICAL")
    assert full["target"] == level(1, 2, 2.0, "LOW")
    assert full["within_appetite"] is True
    bad = await client.post(
        RISKS,
        json={
            "title": "x",
            "impact": 1,
            "probability": 1,
            "target": {"impact": 6, "probability": 1},
        },
        headers=admin.headers,
    )
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "target.impact"
    patched = await client.patch(
        f"{RISKS}/{full['id']}",
        json={"target": None, "inherent": {"impact": 4, "probability": 5}},
        headers=admin.headers,
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["target"] is None
    assert patched.json()["inherent"] == level(4, 5, 20.0, "CRITICAL")
    history = (await client.get(f"{RISKS}/{full['id']}/history", headers=admin.headers)).json()
    assert history["items"][0]["changes"]["target_impact"] == {"before": 1, "after": None}


async def test_open_mitigations_lower_the_residual_and_done_moves_it_into_current(
    client: httpx.AsyncClient, admin: Account
) -> None:
    risk = await new_risk(client, admin, impact=5, probability=4, status="ACTIVE")
    other = await new_risk(client, admin, impact=2, probability=3)
    await get(client, admin, risk["id"])  # cached before the mitigations change it
    planned = await mitigate(client, admin, risk["id"], impact_reduction=2)
    assert planned["impact_reduction"] == 2 and planned["probability_reduction"] == 0
    progress = await mitigate(
        client, admin, risk["id"], status="IN_PROGRESS", probability_reduction=1
    )
    got = await get(client, admin, risk["id"])
    assert (got["impact"], got["probability"], got["score"]) == (5, 4, 20.0)
    assert got["residual"] == level(3, 3, 9.0, "LOW")
    assert got["within_appetite"] is False and got["residual_within_appetite"] is True
    assert await ids(client, admin, residual_above_appetite="false") == [other["id"], risk["id"]]
    assert await ids(client, admin, above_appetite="true") == [risk["id"]]
    assert await ids(client, admin, sort="residual_score", order="asc") == [
        other["id"],
        risk["id"],
    ]
    # a reduction beyond level 1 stops at 1
    await client.patch(
        f"/api/v1/mitigations/{planned['id']}", json={"impact_reduction": 9}, headers=admin.headers
    )
    assert (await get(client, admin, risk["id"]))["residual"]["impact"] == 1
    await client.patch(
        f"/api/v1/mitigations/{planned['id']}", json={"impact_reduction": 2}, headers=admin.headers
    )

    done = await client.patch(
        f"/api/v1/mitigations/{planned['id']}", json={"status": "DONE"}, headers=admin.headers
    )
    assert done.status_code == 200, done.text
    got = await get(client, admin, risk["id"])
    assert (got["impact"], got["probability"], got["score"], got["severity"]) == (
        3,
        4,
        12.0,
        "MEDIUM",
    )
    assert got["residual"] == level(3, 3, 9.0, "LOW")  # the other one is still open
    assert got["inherent"] == level(5, 4, 20.0, "CRITICAL")
    history = (await client.get(f"{RISKS}/{risk['id']}/history", headers=admin.headers)).json()
    latest = history["items"][0]
    assert latest["action"] == "SCORE_CHANGE"
    assert latest["changes"]["mitigation_id"] == planned["id"]
    assert "fix" in latest["changes"]["reason"]
    assert latest["changes"]["impact"] == {"before": 5, "after": 3}

    cancelled = await client.patch(
        f"/api/v1/mitigations/{progress['id']}", json={"status": "CANCELLED"}, headers=admin.headers
    )
    assert cancelled.status_code == 200
    assert (await get(client, admin, risk["id"]))["residual"] == level(3, 4, 12.0, "MEDIUM")
    deleted_one = await mitigate(client, admin, risk["id"], probability_reduction=2)
    assert (await get(client, admin, risk["id"]))["residual"]["probability"] == 2
    await client.delete(f"/api/v1/mitigations/{deleted_one['id']}", headers=admin.headers)
    assert (await get(client, admin, risk["id"]))["residual"]["probability"] == 4


async def test_a_model_change_rescores_every_level_like_the_python_scoring(
    client: httpx.AsyncClient, admin: Account
) -> None:
    assets = []
    for crit in ("LOW", "HIGH", "CRITICAL"):
        response = await client.post(
            "/api/v1/assets",
            json={"name": f"A {crit}", "type": "server", "criticality": crit},
            headers=admin.headers,
        )
        assets.append((response.json()["id"], crit))
    risk = await new_risk(
        client,
        admin,
        impact=5,
        probability=5,
        asset_ids=[a for a, _ in assets],
        inherent={"impact": 5, "probability": 4},
        target={"impact": 4, "probability": 2},
    )
    await mitigate(client, admin, risk["id"], impact_reduction=1, probability_reduction=3)
    model = await current(client, admin)
    body = body_of(
        model,
        impact_levels=model["impact_levels"][:4],
        asset_factors={"LOW": 0.71, "HIGH": 1.37, "CRITICAL": 2.03},
        appetite_score=9,
        level_mapping={"impact": {"5": 4}},
    )
    response = await put(client, admin, body)
    assert response.status_code == 200, response.text
    scoring = to_scoring(response.json())
    crits = [c for _, c in assets]
    got = await get(client, admin, risk["id"])
    for name, (i, p) in {
        "inherent": (4, 4),
        "residual": (3, 2),
        "target": (4, 2),
    }.items():
        score = scoring.score(i, p, crits)
        assert got[name] == level(i, p, float(score), scoring.severity(score)), name
    assert (got["impact"], got["probability"]) == (4, 5)
    assert Decimal(str(got["score"])) == scoring.score(4, 5, crits)
    assert got["within_appetite"] is False
    assert got["residual_within_appetite"] is (scoring.score(3, 2, crits) <= 9)
    assert await ids(client, admin, above_appetite="true") == [risk["id"]]


async def test_a_reopened_done_mitigation_gives_back_the_levels_it_took(
    client: httpx.AsyncClient, admin: Account
) -> None:
    risk = await new_risk(client, admin, impact=2, probability=4, status="ACTIVE")
    # 3 impact levels of reduction, but impact 2 can only lose 1 level
    mitigation = await mitigate(client, admin, risk["id"], impact_reduction=3)
    done = await client.patch(
        f"/api/v1/mitigations/{mitigation['id']}", json={"status": "DONE"}, headers=admin.headers
    )
    assert done.status_code == 200, done.text
    got = await get(client, admin, risk["id"])
    assert (got["impact"], got["score"]) == (1, 4.0)
    reopened = await client.patch(
        f"/api/v1/mitigations/{mitigation['id']}",
        json={"status": "IN_PROGRESS"},
        headers=admin.headers,
    )
    assert reopened.status_code == 200, reopened.text
    got = await get(client, admin, risk["id"])
    assert (got["impact"], got["score"]) == (2, 8.0)  # the one level it took, not three
    assert got["residual"] == level(1, 4, 4.0, "LOW")  # open again: it lowers the residual
    history = (await client.get(f"{RISKS}/{risk['id']}/history", headers=admin.headers)).json()
    latest = history["items"][0]
    assert latest["action"] == "SCORE_CHANGE"
    assert latest["changes"]["impact"] == {"before": 1, "after": 2}
    assert latest["changes"]["mitigation_id"] == mitigation["id"]
    assert "reopened" in latest["changes"]["reason"]
