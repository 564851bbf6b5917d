"""The methodology in a real browser: the risk model editor previews a change (nothing saved)
then saves it; a risk's owner asks for its acceptance and another person approves it from
the approvals queue; the review queue records a review. axe finds nothing serious."""

from __future__ import annotations

import uuid

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from tests.e2e.conftest import DESKTOP, Site, login, serious_violations
from tests.e2e.seed import OWNER_EMAIL

pytestmark = pytest.mark.browser


def _post(site: Site, path: str, body: dict[str, object], headers: dict[str, str]) -> dict:  # type: ignore[type-arg]
    response = httpx.post(f"{site.base_url}{path}", json=body, headers=headers, trust_env=False)
    assert response.status_code in (200, 201), response.text
    return dict(response.json())


def test_the_model_editor_previews_then_saves(page: Page, site: Site) -> None:
    """In an organisation of its own, so that the other browser tests keep the default model."""
    headers = site.api_headers()
    name = f"Model lab {uuid.uuid4().hex[:6]}"
    tenant = _post(site, "/api/v1/tenants", {"name": name}, headers)
    in_tenant = {**headers, "X-Tenant-ID": str(tenant["id"])}
    risk = _post(
        site, "/api/v1/risks", {"title": "Scored 12", "impact": 3, "probability": 4}, in_tenant
    )
    login(page)
    page.get_by_label("Organisation").select_option(label=f"{name} (Admin)")
    page.get_by_role("button", name="Switch").click()
    expect(page.get_by_role("status")).to_have_text(f"You are now working in {name}.")
    page.goto("/settings/risk-model")
    problems = serious_violations(page)
    page.locator("#f-band_min_2").fill("12")  # HIGH from 12: the risk moves up
    page.get_by_role("button", name="Preview").click()
    expect(page.get_by_test_id("preview-summary")).to_contain_text("1 would change band")
    assert site.api("/api/v1/risk-model", in_tenant).json()["version"] == 1
    problems += serious_violations(page)
    page.get_by_role("button", name="Save and re-score").click()
    expect(page.get_by_role("status")).to_contain_text("Risk model saved (version 2)")
    assert site.api(f"/api/v1/risks/{risk['id']}", in_tenant).json()["severity"] == "HIGH"
    page.get_by_label("Organisation").select_option(label="Demo Corp (Admin)")  # remembered
    page.get_by_role("button", name="Switch").click()
    expect(page.get_by_role("status")).to_have_text("You are now working in Demo Corp.")
    assert problems == [], "\n".join(problems)


def test_an_acceptance_asked_by_the_owner_is_approved_by_someone_else(
    browser: Browser, page: Page, site: Site
) -> None:
    analyst = site.api_headers(OWNER_EMAIL)
    risk = _post(
        site,
        "/api/v1/risks",
        {"title": f"Accept me {uuid.uuid4().hex[:6]}", "impact": 2, "probability": 2},
        analyst,
    )
    login(page, OWNER_EMAIL)
    page.goto(f"/risks/{risk['id']}")
    panel = page.locator("section#acceptance")
    panel.get_by_label("Justification").fill("Too cheap to matter")
    panel.get_by_role("button", name="Ask for approval").click()
    expect(page.get_by_role("status")).to_contain_text("Acceptance requested")
    expect(panel.locator("[data-status='submitted']")).to_have_count(1)

    context = browser.new_context(base_url=site.base_url, viewport=DESKTOP)
    approver = context.new_page()
    login(approver)
    approver.goto("/acceptances")
    row = approver.locator("[data-testid='approvals-queue'] tr", has_text=risk["title"])
    row.get_by_label("Comment").fill("Agreed")
    row.get_by_role("button", name="Approve").click()
    expect(approver.get_by_role("status")).to_contain_text("Acceptance approved")
    problems = serious_violations(approver)
    context.close()
    assert site.api(f"/api/v1/risks/{risk['id']}").json()["status"] == "ACCEPTED"
    page.reload()
    expect(panel.locator("[data-status='approved']")).to_have_count(1)
    assert problems == [], "\n".join(problems)


def test_the_review_queue_records_a_review(page: Page, site: Site) -> None:
    long_ago = "2001-01-01"  # overdue the longest: first in the queue
    title = f"Review me {uuid.uuid4().hex[:6]}"
    risk = _post(
        site,
        "/api/v1/risks",
        {"title": title, "impact": 2, "probability": 2, "review_date": long_ago},
        site.api_headers(),
    )
    login(page)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Reviews").click()
    row = page.locator("[data-testid='reviews-overdue'] tr", has_text=title)
    row.get_by_role("button", name=f"Mark reviewed: {title}").click()
    expect(page.get_by_role("status")).to_contain_text(f"Review of “{title}” recorded")
    expect(page.locator("[data-testid='reviews-overdue'] tr", has_text=title)).to_have_count(0)
    assert site.api(f"/api/v1/risks/{risk['id']}").json()["review_status"] == "ok"
