"""Quantitative risk in a real browser: a risk quantified with its form shows its curve, the
demo's quantified risks show their ROSI, the loss exposure page judges the register against
the appetite and exports it; axe finds nothing serious on these pages, desktop and phone."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.conftest import PHONE, Site, login, serious_violations

pytestmark = pytest.mark.browser


def _risks(site: Site) -> tuple[str, tuple[str, str]]:
    """A risk without an estimate, and (id, a mitigation's title) of one the demo quantified
    whose mitigations have a cost."""
    headers = site.api_headers()
    risks = site.api("/api/v1/risks?sort=created_at&order=asc&page_size=100", headers).json()
    bare, costed = None, None
    for risk in risks["items"]:
        found = site.api(f"/api/v1/risks/{risk['id']}/quantification", headers).json()
        if found["quantification"] is None:
            bare = bare or str(risk["id"])
        elif found["results"]["controls"] and costed is None:
            costed = (str(risk["id"]), found["results"]["controls"][0]["title"])
        if bare and costed:
            return bare, costed
    raise AssertionError("no unquantified risk, or no quantified one with a mitigation")


def test_a_risk_is_quantified_and_the_register_judged(page: Page, site: Site) -> None:
    login(page)
    problems: list[str] = []
    risk_id, (costed_id, mitigation) = _risks(site)
    page.goto(f"/risks/{risk_id}")
    panel = page.locator("section#quantification")
    expect(panel).to_contain_text("Not quantified.")
    panel.get_by_text("Quantify this risk").click()  # the form unfolds
    problems += serious_violations(page)
    panel.get_by_label("At least (per year)").fill("0.5")
    panel.get_by_label("Most likely (per year)").fill("2")
    panel.get_by_label("At most (per year)").fill("6")
    panel.get_by_label("Interval: low (5th percentile)").fill("20000")
    panel.get_by_label("Interval: high (95th percentile)").fill("900000")
    panel.get_by_role("button", name="Save and simulate").click()
    expect(page.get_by_text("Quantification saved: expected annual loss")).to_be_visible()
    expect(panel.locator("svg[data-testid='risk-lec'] polyline.line-inherent")).to_have_count(1)
    ale = site.api(f"/api/v1/risks/{risk_id}/quantification").json()["results"]
    assert ale["inherent"]["mean"] > 0
    problems += serious_violations(page)

    page.goto(f"/risks/{costed_id}")
    expect(page.locator("table[data-testid='rosi']")).to_contain_text(mitigation)

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Loss exposure").click()
    expect(page.get_by_role("heading", name="Loss exposure", level=1)).to_be_visible()
    register = site.api("/api/v1/dashboard/quantitative").json()
    verdict = "Within" if register["appetite"]["verdict"] == "within" else "Above"
    expect(page.get_by_test_id("appetite-verdict")).to_have_text(verdict)
    expect(page.locator("svg[data-testid='portfolio-lec'] circle.appetite-point")).to_have_count(1)
    expect(page.get_by_test_id("contributors").locator("tbody tr")).to_have_count(
        len(register["contributors"])
    )
    problems += serious_violations(page)
    with page.expect_download() as download:
        page.get_by_role("link", name="Export XLSX").click()
    assert download.value.suggested_filename.endswith(".xlsx")

    page.set_viewport_size(PHONE)
    page.goto("/quantitative")
    problems += serious_violations(page)
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 1, f"the loss exposure page scrolls sideways by {overflow} px"
    page.goto(f"/risks/{risk_id}")
    problems += serious_violations(page)
    assert problems == [], "\n".join(problems)
