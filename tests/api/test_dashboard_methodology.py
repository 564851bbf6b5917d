"""The dashboards follow the tenant's risk model: its bands (high risks, severity counts), its
appetite (current and residual), its review cadence and its acceptances; the matrix is the
model's N×M grid for any of the four levels; the timeline carries the mean residual score.
Every answer is read once (cached) before the change that must make it stale."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from openrisk.methodology import clock
from openrisk.rbac.catalogue import MANAGER
from tests.api.test_risk_model import body_of, current, levels, put
from tests.api.test_risks_helpers import RISKS, assert_problem, member, new_risk
from tests.conftest import Account

DASH = "/api/v1/dashboard"
ACCEPTANCES = "/api/v1/acceptances"
BANDS = [
    {"name": "MINOR", "min_score": 0, "color": "#2e7d32"},
    {"name": "SERIOUS", "min_score": 4, "color": "#f9a825"},
    {"name": "SEVERE", "min_score": 9, "color": "#c62828"},
]


@pytest.fixture
def moved_clock() -> Iterator[list[date]]:
    now = [datetime.now(UTC).date()]
    clock.set_today(lambda: now[0])
    yield now
    clock.set_today(None)


async def four_by_three(client: httpx.AsyncClient, admin: Account) -> None:
    body = body_of(
        await current(client, admin),
        impact_levels=levels("Low", "Medium", "High", "Extreme"),
        probability_levels=levels("Unlikely", "Possible", "Likely"),
        bands=BANDS,
        appetite_score=5.99,
        review_days={"MINOR": 365, "SERIOUS": 60, "SEVERE": 20},
        level_mapping={"impact": {"5": 4}, "probability": {"4": 3, "5": 3}},
    )
    response = await put(client, admin, body)
    assert response.status_code == 200, response.text


async def stats(client: httpx.AsyncClient, admin: Account, **params: str) -> dict[str, Any]:
    response = await client.get(f"{DASH}/stats", params=params, headers=admin.headers)
    assert response.status_code == 200, response.text
    return dict(response.json())


async def step(client: httpx.AsyncClient, account: Account, path: str, **body: Any) -> Any:
    response = await client.post(path, json=body, headers=account.in_tenant())
    assert response.status_code in (200, 201), response.text
    return response.json()


async def test_stats_count_by_the_model_appetite_reviews_and_acceptances(
    app: FastAPI, client: httpx.AsyncClient, admin: Account, moved_clock: list[date]
) -> None:
    await four_by_three(client, admin)
    severe = await new_risk(client, admin, impact=4, probability=3)  # 12 SEVERE
    serious = await new_risk(client, admin, impact=3, probability=2)  # 6 SERIOUS
    minor = await new_risk(client, admin, impact=1, probability=1)  # 1 MINOR
    within = await new_risk(client, admin, impact=2, probability=2)  # 4 SERIOUS, within
    before = await stats(client, admin)  # cached: the mitigation below must make it stale
    assert before["above_appetite"] == {"current": 2, "residual": 2}
    await step(
        client, admin, f"{RISKS}/{severe['id']}/mitigations", title="Patch", impact_reduction=3
    )
    figures = await stats(client, admin)
    assert figures["by_severity"] == {
        "CRITICAL": 0,
        "HIGH": 0,
        "MEDIUM": 0,
        "LOW": 0,
        "SEVERE": 1,
        "SERIOUS": 2,
        "MINOR": 1,
    }
    assert figures["high_risks"] == 1  # SEVERE alone starts above the appetite
    assert figures["above_appetite"] == {"current": 2, "residual": 1}  # severe's residual: 3
    assert figures["reviews"] == {"overdue": 0, "due_soon": 0}
    assert figures["acceptances"] == {"submitted": 0, "expiring_30d": 0, "expired": 0}
    listed = await client.get(RISKS, params={"above_appetite": "true"}, headers=admin.headers)
    assert listed.json()["total"] == figures["above_appetite"]["current"]

    # the acceptance workflow: each step is counted at once
    manager = await member(app, client, admin, MANAGER)
    expires = (moved_clock[0] + timedelta(days=20)).isoformat()
    made = await step(
        client,
        manager,
        f"{RISKS}/{minor['id']}/acceptances",
        justification="Cheaper to live with",
        expires_on=expires,
    )
    assert (await stats(client, admin))["acceptances"]["submitted"] == 1
    await step(client, admin, f"{ACCEPTANCES}/{made['id']}/approve", comment="ok")
    assert (await stats(client, admin))["acceptances"] == {
        "submitted": 0,
        "expiring_30d": 1,
        "expired": 0,
    }
    other = await step(
        client,
        manager,
        f"{RISKS}/{within['id']}/acceptances",
        justification="Within appetite",
        expires_on=expires,
    )
    assert (await stats(client, admin))["acceptances"]["submitted"] == 1
    await step(client, admin, f"{ACCEPTANCES}/{other['id']}/reject", comment="no")
    assert (await stats(client, admin))["acceptances"]["submitted"] == 0

    # fifty days on: SEVERE (20 days) is overdue, SERIOUS (60 days) due within 14 days
    # (another query string: the hot path keeps an identical request's answer till midnight)
    moved_clock[0] += timedelta(days=50)
    later = await stats(client, admin, period="all")
    assert later["reviews"] == {"overdue": 1, "due_soon": 2}
    assert later["acceptances"] == {"submitted": 0, "expiring_30d": 0, "expired": 1}
    overdue = await client.get(RISKS, params={"review": "overdue"}, headers=admin.headers)
    assert [r["id"] for r in overdue.json()["items"]] == [severe["id"]]
    await step(client, admin, f"{RISKS}/{severe['id']}/reviews", outcome="unchanged")
    assert (await stats(client, admin, period="all"))["reviews"] == {"overdue": 0, "due_soon": 2}
    assert serious["severity"] == "SERIOUS"


async def test_the_matrix_is_the_models_grid_for_each_level(
    client: httpx.AsyncClient, admin: Account
) -> None:
    await four_by_three(client, admin)
    risk = await new_risk(
        client,
        admin,
        impact=4,
        probability=3,
        inherent={"impact": 4, "probability": 3},
        target={"impact": 1, "probability": 2},
    )
    await new_risk(client, admin, impact=2, probability=1, inherent={"impact": 3, "probability": 3})
    await step(client, admin, f"{RISKS}/{risk['id']}/mitigations", title="x", impact_reduction=2)

    async def matrix(basis: str) -> dict[str, Any]:
        response = await client.get(
            f"{DASH}/matrix", params={"basis": basis}, headers=admin.headers
        )
        assert response.status_code == 200, response.text
        return dict(response.json())

    def counts(body: dict[str, Any]) -> dict[tuple[int, int], int]:
        return {(c["impact"], c["probability"]): c["count"] for c in body["cells"] if c["count"]}

    grid = await matrix("current")
    assert grid["basis"] == "current"
    assert [lv["name"] for lv in grid["impact_levels"]] == ["Low", "Medium", "High", "Extreme"]
    assert [lv["name"] for lv in grid["probability_levels"]] == ["Unlikely", "Possible", "Likely"]
    assert [(c["impact"], c["probability"]) for c in grid["cells"]] == [
        (i, p) for i in range(1, 5) for p in range(1, 4)
    ]
    top = grid["cells"][-1]
    assert (top["band"], top["color"]) == ("SEVERE", "#c62828")
    assert (grid["cells"][0]["band"], grid["cells"][0]["color"]) == ("MINOR", "#2e7d32")
    assert counts(grid) == {(4, 3): 1, (2, 1): 1}
    assert counts(await matrix("inherent")) == {(4, 3): 1, (3, 3): 1}
    assert counts(await matrix("residual")) == {(2, 3): 1, (2, 1): 1}
    target = await matrix("target")
    assert counts(target) == {(1, 2): 1} and target["total"] == 1
    assert_problem(
        await client.get(f"{DASH}/matrix", params={"basis": "planned"}, headers=admin.headers),
        422,
        "basis",
    )

    # a model change (here only a colour) is seen at once by the cached grid
    body = body_of(await current(client, admin))
    body["bands"][2]["color"] = "#000000"
    assert (await put(client, admin, body)).status_code == 200
    assert (await matrix("current"))["cells"][-1]["color"] == "#000000"


async def test_the_timeline_carries_the_mean_residual_score(
    client: httpx.AsyncClient, admin: Account
) -> None:
    risk = await new_risk(client, admin, impact=5, probability=4)  # 20
    await new_risk(client, admin, impact=2, probability=2)  # 4
    before = (await client.get(f"{DASH}/timeline?days=2", headers=admin.headers)).json()
    assert before["points"][-1]["mean_residual_score"] == 12.0
    # a mitigation moves the residual level without a history row of the risk
    await step(client, admin, f"{RISKS}/{risk['id']}/mitigations", title="m", impact_reduction=3)
    points = (await client.get(f"{DASH}/timeline?days=2", headers=admin.headers)).json()["points"]
    assert points[-1]["mean_score"] == 12.0
    assert points[-1]["mean_residual_score"] == 6.0  # (2 × 4 + 4) / 2
    assert points[0]["mean_residual_score"] == 0.0  # no risks the day before
