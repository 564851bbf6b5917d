"""The methodology in the web UI, through httpx: the dashboard follows the tenant's risk model
(its bands, grid, appetite, reviews and acceptances); the model editor previews, refuses next
to the field and saves; an acceptance asked on the risk page is decided by someone else; the
review queue and the register's appetite and review filters."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from openrisk.methodology.models import RiskModelJob
from openrisk.rbac.catalogue import MANAGER
from tests.api.test_dashboard_methodology import four_by_three
from tests.api.test_risk_model_jobs import async_above, run
from tests.api.test_risks_helpers import member, new_risk
from tests.conftest import Account, client_for
from tests.web.helpers import sign_in

CELL = re.compile(
    r'<td class="cell ([^"]*)"(?: style="([^"]*)")? data-impact="(\d+)" '
    r'data-probability="(\d+)" data-count="(\d+)" data-band="(\w+)"'
)


async def test_the_dashboard_draws_the_models_bands_and_grid(
    client: httpx.AsyncClient, admin: Account
) -> None:
    await four_by_three(client, admin)
    risk = await new_risk(client, admin, impact=4, probability=3)  # 12 SEVERE, above appetite
    await client.post(
        f"/api/v1/risks/{risk['id']}/mitigations",
        json={"title": "Segment", "impact_reduction": 3},
        headers=admin.in_tenant(),
    )
    browser = await sign_in(client, admin)
    page = (await browser.get("/")).text
    cells = {
        (int(i), int(p)): (css, style, int(n), band)
        for css, style, i, p, n, band in CELL.findall(page)
    }
    assert len(cells) == 12  # 4 impact levels × 3 probability levels
    css, style, count, band = cells[(4, 3)]
    assert (count, band) == (1, "SEVERE") and "band" in css
    assert style == "background: #c62828; color: #ffffff"
    assert "Extreme" in page and "Likely" in page  # the levels' names
    assert 'data-testid="count-severe">1<' in page
    assert 'data-testid="count-critical"' not in page  # only the model's bands
    assert re.search(
        r'data-testid="above-appetite">\s*<h2>Above appetite</h2>\s*<p class="big">1<', page
    )
    residual = (await browser.get("/?basis=residual")).text
    moved = {(int(i), int(p)): int(n) for _, _, i, p, n, _ in CELL.findall(residual)}
    assert moved[(1, 3)] == 1 and moved[(4, 3)] == 0
    assert 'data-basis="residual"' in residual


@asynccontextmanager
async def saved_in_background(
    app: FastAPI,
    monkeypatch: pytest.MonkeyPatch,
    browser: httpx.AsyncClient,
    form: dict[str, str],
    **changes: str,
) -> AsyncIterator[None]:
    """Save the model editor's form with ``changes`` as a background job, and start no job
    until the block ends: commits do not wake the outbox relay, which polls once in five
    minutes here, so the block sees the job still queued (with SQLite the web process's own
    worker would otherwise run it as soon as it is committed)."""
    relay = getattr(app.state, "outbox_relay", None)
    with monkeypatch.context() as patch:
        if relay is not None:
            patch.setattr(relay, "wake", lambda: None)
        with async_above(app, 0):
            saved = await browser.post(
                "/settings/risk-model", {**form, **changes, "action": "save"}
            )
        assert saved.status_code == 303, saved.text
        yield


async def test_the_model_editor_previews_refuses_and_saves(
    app: FastAPI, client: httpx.AsyncClient, admin: Account, monkeypatch: pytest.MonkeyPatch
) -> None:
    risk = await new_risk(client, admin, impact=3, probability=4)  # 12 MEDIUM
    browser = await sign_in(client, admin)
    page = await browser.get("/settings/risk-model")
    assert page.status_code == 200 and 'data-testid="model-grid"' in page.text
    form = {
        "version": "1",
        "impact_levels": "Negligible\nMinor\nModerate\nMajor\nSevere — stops the business",
        "probability_levels": "Rare\nUnlikely\nPossible\nLikely\nAlmost certain",
        "band_name_0": "LOW",
        "band_min_0": "0",
        "band_color_0": "#2e7d32",
        "band_review_0": "365",
        "band_name_1": "MEDIUM",
        "band_min_1": "10",
        "band_color_1": "#f9a825",
        "band_name_2": "HIGH",
        "band_min_2": "12",  # 12 is HIGH now
        "band_color_2": "#ef6c00",
        "band_name_3": "CRITICAL",
        "band_min_3": "20",
        "band_color_3": "#c62828",
        "appetite_score": "14.99",
        "max_days": "365",
        "approver_min_level": "6",
    }
    preview = await browser.post("/settings/risk-model", {**form, "action": "preview"})
    assert preview.status_code == 200, preview.text
    assert re.search(r"Of 1 risk, 1 would be re-scored and 1 would change band", preview.text)
    model = (await client.get("/api/v1/risk-model", headers=admin.in_tenant())).json()
    assert model["version"] == 1  # a preview writes nothing

    refused = await browser.post(
        "/settings/risk-model", {**form, "band_min_2": "9", "action": "save"}
    )
    assert refused.status_code == 422
    assert re.search(r'id="f-band_min_2-error">bands must be in ascending min_score<', refused.text)
    shrunk = await browser.post(
        "/settings/risk-model", {**form, "impact_levels": "Low\nMid\nHigh\nTop", "action": "save"}
    )
    assert shrunk.status_code == 422 and 'id="f-mapping_impact-error"' in shrunk.text

    saved = await browser.post("/settings/risk-model", {**form, "action": "save"})
    assert saved.status_code == 303, saved.text
    model = (await client.get("/api/v1/risk-model", headers=admin.in_tenant())).json()
    assert model["version"] == 2
    assert model["impact_levels"][4]["description"] == "stops the business"
    got = (await client.get(f"/api/v1/risks/{risk['id']}", headers=admin.in_tenant())).json()
    assert got["severity"] == "HIGH"
    stale = await browser.post("/settings/risk-model", {**form, "action": "save"})
    assert stale.status_code == 409 and "changed meanwhile" in stale.text

    # a large register's change is applied in the background, as the page says
    async with saved_in_background(app, monkeypatch, browser, form, version="2", band_min_2="15"):
        shown = await browser.get("/settings/risk-model")
    assert "being applied in the background" in shown.text
    assert 'data-testid="model-job"' in shown.text and "(queued)" in shown.text
    assert '<meta http-equiv="refresh" content="5">' in shown.text  # it watches the job
    async with app.state.db.session() as session:
        job_id = await session.scalar(
            select(RiskModelJob.id).where(RiskModelJob.tenant_id == uuid.UUID(admin.tenant_id))
        )
    assert job_id is not None and await run(app, str(job_id)) == "done"
    got = (await client.get(f"/api/v1/risks/{risk['id']}", headers=admin.in_tenant())).json()
    assert got["severity"] == "MEDIUM"
    ended = await browser.get("/settings/risk-model")
    assert "version 3" in ended.text and 'data-testid="model-job"' not in ended.text
    assert 'http-equiv="refresh"' not in ended.text

    # a job that failed against the model still in force says so, and why
    async with (
        saved_in_background(app, monkeypatch, browser, form, version="3", band_min_2="12"),
        app.state.db.session() as session,
    ):
        job = await session.scalar(
            select(RiskModelJob).where(
                RiskModelJob.status == "queued",
                RiskModelJob.tenant_id == uuid.UUID(admin.tenant_id),
            )
        )
        assert job is not None
        job.status, job.error = "failed", "The change took longer than its time limit."
        await session.commit()
    failed = await browser.get("/settings/risk-model")
    assert 'data-testid="model-job"' in failed.text and "was not applied" in failed.text
    assert "longer than its time limit" in failed.text and 'http-equiv="refresh"' not in failed.text


async def test_acceptance_requested_on_the_risk_page_is_decided_by_someone_else(
    app: FastAPI, client: httpx.AsyncClient, admin: Account
) -> None:
    manager = await member(app, client, admin, MANAGER)
    risk = await new_risk(client, manager, impact=2, probability=2)
    asker = await sign_in(client_for(app), manager)
    refused = await asker.post(
        f"/risks/{risk['id']}/acceptances", {"justification": "", "expires_on": "2000-01-01"}
    )
    assert refused.status_code == 422
    assert 'id="f-justification-error"' in refused.text
    asked = await asker.post(
        f"/risks/{risk['id']}/acceptances",
        {"justification": "Cheaper to live with", "expires_on": _in_days(30)},
    )
    assert asked.status_code == 303, asked.text
    own = await asker.get("/acceptances")
    assert 'data-testid="own-request"' in own.text and "/approve" not in own.text
    selfish = await asker.post(f"/acceptances/{_acceptance_id(own.text)}/approve", {})
    assert selfish.status_code == 303  # refused, with the reason as a message
    still = (await client.get(f"/api/v1/risks/{risk['id']}", headers=admin.in_tenant())).json()
    assert still["status"] != "ACCEPTED"

    approver = await sign_in(client, admin)
    queue = await approver.get("/acceptances")
    acceptance_id = _acceptance_id(queue.text)
    assert (
        "Cheaper to live with" in queue.text
        and f"/acceptances/{acceptance_id}/approve" in queue.text
    )
    decided = await approver.post(f"/acceptances/{acceptance_id}/approve", {"comment": "Fine"})
    assert decided.status_code == 303
    got = (await client.get(f"/api/v1/risks/{risk['id']}", headers=admin.in_tenant())).json()
    assert got["status"] == "ACCEPTED" and got["acceptance_expires_on"] == _in_days(30)
    page = await approver.get(f"/risks/{risk['id']}")
    assert 'data-status="approved"' in page.text and 'data-testid="levels"' in page.text


async def test_the_review_queue_and_the_register_filters(
    client: httpx.AsyncClient, admin: Account
) -> None:
    late = await new_risk(client, admin, title="Late review", review_date=_in_days(-3))
    soon = await new_risk(client, admin, title="Soon review", review_date=_in_days(5))
    high = await new_risk(client, admin, title="High one", impact=4, probability=4)
    browser = await sign_in(client, admin)
    queue = await browser.get("/reviews")
    overdue = queue.text.split('data-testid="reviews-overdue"')[1].split("</table>")[0]
    assert late["id"] in overdue and soon["id"] not in overdue
    assert soon["id"] in queue.text.split('data-testid="reviews-due-soon"')[1]
    done = await browser.post(
        f"/risks/{late['id']}/reviews", {"outcome": "unchanged", "back": "/reviews"}
    )
    assert done.status_code == 303
    assert late["id"] not in (await browser.get("/reviews")).text

    listed = await browser.get("/risks?above_appetite=true&sort=residual_score&col=residual")
    assert high["id"] in listed.text and late["id"] not in listed.text
    reviews = await browser.get("/risks?review=due_soon&sort=next_review_date&order=asc")
    assert soon["id"] in reviews.text and high["id"] not in reviews.text
    bad = await browser.get("/risks?review=someday")
    assert bad.status_code == 422


def _in_days(days: int) -> str:
    return (datetime.now(UTC).date() + timedelta(days=days)).isoformat()


def _acceptance_id(html: str) -> str:
    found = re.search(r'data-acceptance="([0-9a-f-]{36})"', html)
    assert found, "no acceptance in the queue"
    return found.group(1)
