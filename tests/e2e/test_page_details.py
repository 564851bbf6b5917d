"""What a person notices on the pages: an HTML page for an unknown address, the roles matrix
without an inner scroll box, names instead of ids, dates that do not wrap, a pager with first
and last, labels in one case, and the dashboard saying what its numbers count."""

from __future__ import annotations

import re
import uuid

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.e2e.conftest import Site, login

pytestmark = pytest.mark.browser


def test_an_unknown_address_is_an_html_page_in_the_browser(page: Page, site: Site) -> None:
    response = page.goto("/nope")
    assert response is not None and response.status == 404
    assert response.headers["content-type"].startswith("text/html")
    expect(page.get_by_role("heading", name="404 — Not Found")).to_be_visible()
    expect(page.get_by_role("link", name="Go to the dashboard")).to_be_visible()
    api = httpx.get(f"{site.base_url}/nope", headers={"Accept": "application/json"})
    assert api.status_code == 404
    assert api.headers["content-type"] == "application/problem+json"
    icon = httpx.get(f"{site.base_url}/favicon.ico")
    assert icon.status_code == 200 and icon.headers["content-type"] == "image/x-icon"
    assert icon.content[:4] == b"\x00\x00\x01\x00"  # an ICO file


def test_the_roles_matrix_scrolls_with_the_page(page: Page) -> None:
    login(page)
    page.goto("/settings/roles")
    box = page.locator(".matrix-wrap").evaluate(
        "e => ({inner: e.scrollHeight - e.clientHeight,"
        " bottom: e.getBoundingClientRect().bottom + window.scrollY,"
        " footer: document.querySelector('footer').getBoundingClientRect().top + window.scrollY})"
    )
    assert box["inner"] <= 1, box  # the whole matrix is laid out: no scroll box inside
    assert box["footer"] - box["bottom"] < 150, box  # and no empty space under it


def _api(site: Site) -> httpx.Client:
    return httpx.Client(base_url=f"{site.base_url}/api/v1", headers=site.api_headers())


def test_history_and_audit_log_name_what_they_mention(page: Page, site: Site) -> None:
    name = f"Payroll server {uuid.uuid4().hex[:4]}"
    with _api(site) as api:
        asset = api.post("/assets", json={"name": name, "type": "server", "criticality": "LOW"})
        assert asset.status_code == 201, asset.text
        asset_id = asset.json()["id"]
        risk = api.post(
            "/risks",
            json={
                "title": f"Payroll fraud {name}",
                "impact": 4,
                "probability": 5,
                "asset_ids": [asset_id],
                "status": "ACTIVE",
            },
        )
        assert risk.status_code == 201, risk.text
        risk_id = risk.json()["id"]
        raised = api.patch(f"/assets/{asset_id}", json={"criticality": "CRITICAL"})
        assert raised.status_code == 200, raised.text

    login(page)
    page.goto(f"/risks/{risk_id}")
    history = page.locator("#history")
    expect(history).to_contain_text(f"asset “{name}” criticality Low → Critical")
    expect(history).to_contain_text("16.00 → 30.00")  # scores as the page shows them
    expect(history).not_to_contain_text(asset_id[:8])
    expect(history).not_to_contain_text("16.0 →")

    page.goto("/audit?resource=asset")
    row = page.locator("[data-testid=audit-events] tbody tr", has_text=name).first
    link = row.get_by_role("link", name=name)
    expect(link).to_have_attribute("href", f"/assets/{asset_id}")
    page.goto("/audit?resource=risk")
    link = page.get_by_role("link", name=f"Payroll fraud {name}").first
    expect(link).to_have_attribute("href", f"/risks/{risk_id}")


def test_register_dates_and_owners_stay_on_one_line(page: Page) -> None:
    login(page)
    page.set_viewport_size({"width": 1024, "height": 800})
    page.goto("/risks?page_size=50")
    heights = page.locator("table.risks td.nowrap").evaluate_all(
        """cells => cells.map(c => {
             const range = document.createRange(); range.selectNodeContents(c);
             const line = parseFloat(getComputedStyle(c).lineHeight);
             return range.getBoundingClientRect().height / line;
           })"""
    )
    assert len(heights) >= 2 * 20
    assert max(heights) < 1.6, heights  # one line each: dates and owner names do not wrap


def test_the_pager_has_first_and_last(page: Page) -> None:
    login(page)
    page.goto("/risks?page=2")
    pager = page.get_by_role("navigation", name="Risk pages")
    expect(pager.get_by_role("link", name="First page")).to_have_attribute(
        "href", re.compile(r"page=1(&|$)")
    )
    pager.get_by_role("link", name=re.compile("^Last page")).click()
    current = page.get_by_role("navigation", name="Risk pages").locator("[aria-current=page]")
    last = int(current.inner_text())
    assert last >= 3
    expect(page.get_by_role("navigation", name="Risk pages")).to_contain_text(
        f"page {last} of {last}"
    )
    expect(page.get_by_role("link", name=re.compile("^Last page"))).to_have_count(0)


def test_labels_read_alike_everywhere(page: Page) -> None:
    login(page)
    page.goto("/assets")
    options = page.locator("#f-criticality option").all_inner_texts()
    assert options == ["Low", "Medium", "High", "Critical"]
    page.goto("/audit")
    resources = page.get_by_label("Resource").locator("option").all_inner_texts()
    assert "Custom field" in resources and "custom_field" not in resources


def test_the_dashboard_says_what_its_numbers_count(page: Page) -> None:
    login(page)
    expect(page.locator("#cards-help")).to_contain_text("criticality factor of its assets")
    expect(page.locator("#heatmap-help")).to_contain_text("impact × probability alone")
    expect(page.locator("#global-score-help")).to_contain_text("Higher is safer")
    expect(page.get_by_test_id("count-critical").locator("xpath=..")).to_contain_text(
        "scored 20 or more"
    )
