"""Review cadence: the next review is due the band's review days after the last review (or
the creation), earlier when the owner says so; overdue and due-soon risks are filtered and
sorted; recording a review restarts the clock. Dates from an injected clock."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

import httpx
import pytest

from openrisk.methodology import clock
from tests.api.test_risk_model import body_of, current, put
from tests.api.test_risks_helpers import new_risk
from tests.conftest import Account

RISKS = "/api/v1/risks"


@pytest.fixture
def moved_clock() -> Iterator[list[date]]:
    """``now[0]`` is today for the application while the test runs."""
    now = [datetime.now(UTC).date()]
    clock.set_today(lambda: now[0])
    yield now
    clock.set_today(None)


async def ids(client: httpx.AsyncClient, admin: Account, **params: str) -> list[str]:
    response = await client.get(RISKS, params=params, headers=admin.headers)
    assert response.status_code == 200, response.text
    return [r["id"] for r in response.json()["items"]]


async def test_reviews_fall_due_by_band_and_restart_the_clock(
    client: httpx.AsyncClient, admin: Account, moved_clock: list[date]
) -> None:
    created_on = moved_clock[0]
    critical = await new_risk(client, admin, impact=5, probability=5)  # 30 days
    low = await new_risk(client, admin, impact=1, probability=2)  # 365 days
    early = await new_risk(
        client, admin, impact=1, probability=1, review_date=str(created_on + timedelta(days=5))
    )
    assert critical["next_review_date"] == str(created_on + timedelta(days=30))
    assert low["next_review_date"] == str(created_on + timedelta(days=365))
    assert early["next_review_date"] == str(created_on + timedelta(days=5))
    assert {critical["review_status"], low["review_status"]} == {"ok"}
    assert early["review_status"] == "due_soon"
    assert await ids(client, admin, sort="next_review_date", order="asc") == [
        early["id"],
        critical["id"],
        low["id"],
    ]

    moved_clock[0] = created_on + timedelta(days=20)
    assert await ids(client, admin, review="overdue") == [early["id"]]
    assert await ids(client, admin, review="due_soon") == [critical["id"]]
    got = (await client.get(f"{RISKS}/{early['id']}", headers=admin.headers)).json()
    assert got["review_status"] == "overdue"

    reviewed = await client.post(
        f"{RISKS}/{early['id']}/reviews",
        json={"outcome": "unchanged", "comment": "still fine"},
        headers=admin.headers,
    )
    assert reviewed.status_code == 201, reviewed.text
    assert reviewed.json()["reviewed_on"] == str(moved_clock[0])
    got = (await client.get(f"{RISKS}/{early['id']}", headers=admin.headers)).json()
    assert got["last_reviewed_on"] == str(moved_clock[0])
    assert got["next_review_date"] == str(moved_clock[0] + timedelta(days=365))
    assert got["review_status"] == "ok"
    listed = (await client.get(f"{RISKS}/{early['id']}/reviews", headers=admin.headers)).json()
    assert [r["outcome"] for r in listed["items"]] == ["unchanged"]
    history = (await client.get(f"{RISKS}/{early['id']}/history", headers=admin.headers)).json()
    assert history["items"][0]["changes"]["review"] == {"before": None, "after": "unchanged"}
    bad = await client.post(
        f"{RISKS}/{early['id']}/reviews", json={"outcome": "maybe"}, headers=admin.headers
    )
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "outcome"

    # the model's review days move every next review date
    model = await current(client, admin)
    days = {**model["review_days"], "CRITICAL": 7}
    assert (await put(client, admin, body_of(model, review_days=days))).status_code == 200
    got = (await client.get(f"{RISKS}/{critical['id']}", headers=admin.headers)).json()
    assert got["next_review_date"] == str(created_on + timedelta(days=7))
    assert got["review_status"] == "overdue"
