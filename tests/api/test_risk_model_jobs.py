"""A large register's risk model change is a job: 202 with the job's status resource, the
job applies exactly what the dry run previewed (history rows, stored levels, caches), a second
change waits for the first, a stale job fails without writing, and a job run again does
nothing."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import func, select

from openrisk.core.uow import UnitOfWork
from openrisk.methodology import jobs
from openrisk.methodology.models import RiskModelJob
from openrisk.methodology.store import to_scoring
from openrisk.risks import rollups
from openrisk.risks.models import RiskHistory
from tests.api.test_dashboard import _rollup_rows
from tests.api.test_risk_levels import mitigate
from tests.api.test_risk_model import body_of, current, levels, put
from tests.api.test_risks_helpers import new_asset, new_risk
from tests.conftest import Account, make_settings

RISKS = "/api/v1/risks"


@contextmanager
def async_above(app: FastAPI, threshold: int) -> Iterator[None]:
    before = app.state.settings
    app.state.settings = make_settings(before.database_url, risk_model_async_threshold=threshold)
    try:
        yield
    finally:
        app.state.settings = before


def now() -> datetime:
    return datetime.now(UTC)


async def run(app: FastAPI, job_id: str) -> str:
    """The job, run here (with SQLite the web process's worker may have run it already)."""
    return await jobs.apply(
        database=app.state.db,
        job_id=uuid.UUID(job_id),
        now=now,
        uow=lambda session: UnitOfWork.for_app(app.state, session),
    )


async def score_changes(app: FastAPI, risk_id: str) -> int:
    async with app.state.db.session() as session:
        count = await session.scalar(
            select(func.count())
            .select_from(RiskHistory)
            .where(RiskHistory.risk_id == uuid.UUID(risk_id), RiskHistory.action == "SCORE_CHANGE")
        )
    return int(count or 0)


def four_by_four(model: dict[str, Any]) -> dict[str, Any]:
    """New axes (impact 5 → 4), bands, factors and review days: every stored value moves."""
    return body_of(
        model,
        impact_levels=levels("Low", "Medium", "High", "Very high"),
        bands=[
            {"name": "LOW", "min_score": 0, "color": "#00aa00"},
            {"name": "MEDIUM", "min_score": 6, "color": "#ffaa00"},
            {"name": "HIGH", "min_score": 12, "color": "#ff5500"},
        ],
        asset_factors={"LOW": 0.5, "MEDIUM": 1.1, "HIGH": 1.4, "CRITICAL": 2.0},
        review_days={"HIGH": 20, "MEDIUM": 60, "LOW": 400},
        appetite_score=9,
        level_mapping={"impact": {"5": 4}},
    )


async def test_a_large_registers_change_is_a_job_applying_the_preview(
    app: FastAPI, client: httpx.AsyncClient, admin: Account
) -> None:
    asset = await new_asset(client, admin, criticality="HIGH")
    low = await new_risk(client, admin, impact=2, probability=2)
    linked = await new_risk(client, admin, impact=5, probability=3, asset_ids=[asset["id"]])
    targeted = await new_risk(
        client, admin, impact=4, probability=4, target={"impact": 5, "probability": 1}
    )
    await mitigate(client, admin, targeted["id"], impact_reduction=2)
    targeted = (await client.get(f"{RISKS}/{targeted['id']}", headers=admin.headers)).json()
    assert targeted["residual"]["impact"] == 2
    # cached answers, to be made stale by the change
    assert (await client.get(f"{RISKS}/{linked['id']}", headers=admin.headers)).status_code == 200
    stats = (await client.get("/api/v1/dashboard/stats", headers=admin.headers)).json()
    assert stats["by_severity"]["HIGH"] == 2
    model = await current(client, admin)
    body = four_by_four(model)

    with async_above(app, 2):
        preview = await put(client, admin, body, dry_run=True)  # a dry run stays a request
        asked = await put(client, admin, body)
        again = await put(client, admin, body)
    assert preview.status_code == 200, preview.text
    assert asked.status_code == 202, asked.text
    job = asked.json()
    assert asked.headers["location"] == job["status_url"] == f"/api/v1/risk-model/jobs/{job['id']}"
    assert job["status"] in ("queued", "running", "done")
    # a second change waits for the first (or, once it is done, sends a stale version)
    assert again.status_code == 409, again.text

    assert await run(app, job["id"]) == "done"
    status = await client.get(job["status_url"], headers=admin.headers)
    assert status.status_code == 200, status.text
    done = status.json()
    assert done["status"] == "done" and done["version"] == 2 and done["finished_at"]
    assert done["remapping"] == preview.json()["remapping"]  # the preview is what it did
    assert (await current(client, admin))["version"] == 2

    scoring = to_scoring(body)
    risks = {r["id"]: r for r in (await client.get(RISKS, headers=admin.headers)).json()["items"]}
    got = risks[linked["id"]]  # impact 5 → 4, one HIGH asset (1.4)
    assert (got["impact"], got["probability"]) == (4, 3)
    assert Decimal(str(got["score"])) == scoring.score(4, 3, ["HIGH"]) == Decimal("16.80")
    assert got["severity"] == "HIGH" and got["within_appetite"] is False
    assert got["version"] == linked["version"] + 1
    got = risks[targeted["id"]]  # target 5 → 4; residual 4 - 2 = 2
    assert got["target"] == {"impact": 4, "probability": 1, "score": 4.0, "severity": "LOW"}
    assert got["residual"] == {"impact": 2, "probability": 4, "score": 8.0, "severity": "MEDIUM"}
    assert got["residual_within_appetite"] is True and got["severity"] == "HIGH"
    assert got["version"] == targeted["version"] + 1  # its other levels moved
    got = risks[low["id"]]
    assert (got["score"], got["severity"]) == (4.0, "LOW")
    # LOW reviews every 400 days now: its next review moved, not its level
    assert got["version"] == low["version"] + 1
    assert got["next_review_date"] > low["next_review_date"]
    # a history row for each risk whose current level moved (not: 16 HIGH, 4 LOW as before)
    assert await score_changes(app, linked["id"]) == 1
    assert await score_changes(app, targeted["id"]) == 0
    assert await score_changes(app, low["id"]) == 0
    history = (await client.get(f"{RISKS}/{linked['id']}/history", headers=admin.headers)).json()
    changes = history["items"][0]["changes"]
    assert changes["impact"] == {"before": 5, "after": 4}
    assert "risk model version 2" in changes["reason"]
    # the cached answers are stale at once
    cached = (await client.get(f"{RISKS}/{linked['id']}", headers=admin.headers)).json()
    assert cached["severity"] == "HIGH" and cached["impact"] == 4
    stats = (await client.get("/api/v1/dashboard/stats", headers=admin.headers)).json()
    assert stats["by_severity"]["HIGH"] == 2 and stats["by_severity"]["MEDIUM"] == 0
    assert stats["above_appetite"]["current"] == 2
    # the dashboard roll-ups moved exactly as a rebuild computes them
    tenant = uuid.UUID(admin.tenant_id)
    incremental = await _rollup_rows(app, tenant)
    async with app.state.db.session() as session:
        await rollups.rebuild(session, tenant_ids=[tenant])
        await session.commit()
    assert incremental == await _rollup_rows(app, tenant)
    audit = await client.get(
        "/api/v1/audit-events", params={"action": "risk_model.update"}, headers=admin.headers
    )
    assert audit.json()["items"][0]["changes"]["version"] == {"before": 1, "after": 2}

    # run again (at least once delivery): nothing more happens
    assert await run(app, job["id"]) == "done"
    assert await score_changes(app, linked["id"]) == 1
    assert (await current(client, admin))["version"] == 2


async def test_a_job_for_a_model_changed_meanwhile_fails_and_writes_nothing(
    app: FastAPI, client: httpx.AsyncClient, admin: Account
) -> None:
    risk = await new_risk(client, admin, impact=4, probability=4)
    model = await current(client, admin)
    body = body_of(
        model, bands=[{"name": "ALL", "min_score": 0, "color": "#999999"}], review_days={}
    )
    with async_above(app, 0):
        asked = await put(client, admin, body)
    assert asked.status_code == 202, asked.text
    assert await run(app, asked.json()["id"]) == "done"
    # a job left from before (e.g. queued twice): its version is no longer current
    async with app.state.db.session() as session:
        stale = RiskModelJob(
            id=uuid.uuid4(),
            tenant_id=uuid.UUID(admin.tenant_id),
            status=jobs.QUEUED,
            requested_by=uuid.UUID(admin.user_id),
            request=body,
        )
        session.add(stale)
        await session.commit()
    assert await run(app, str(stale.id)) == "failed"
    shown = (await client.get(f"/api/v1/risk-model/jobs/{stale.id}", headers=admin.headers)).json()
    assert shown["status"] == "failed" and "changed meanwhile" in shown["error"]
    assert (await current(client, admin))["version"] == 2
    assert await score_changes(app, risk["id"]) == 1
    other = await client.get(f"/api/v1/risk-model/jobs/{uuid.uuid4()}", headers=admin.headers)
    assert other.status_code == 404
