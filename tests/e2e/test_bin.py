"""The bin in the browser: a risk deleted from its page is listed in the bin (reached from the
register) with the mitigations deleted with it, and the Restore button brings it back into the
register with its mitigations, saying so. A Viewer sees no bin."""

from __future__ import annotations

import uuid

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.e2e.conftest import Site, login
from tests.e2e.seed import VIEWER_EMAIL

pytestmark = pytest.mark.browser


def _risk_with_mitigation(site: Site) -> tuple[str, str]:
    title = f"Bin risk {uuid.uuid4().hex[:6]}"
    with httpx.Client(base_url=f"{site.base_url}/api/v1", headers=site.api_headers()) as api:
        risk = api.post("/risks", json={"title": title, "impact": 4, "probability": 3})
        assert risk.status_code == 201, risk.text
        made = api.post(f"/risks/{risk.json()['id']}/mitigations", json={"title": "Patch it"})
        assert made.status_code == 201, made.text
        return risk.json()["id"], title


def test_a_deleted_risk_is_restored_from_the_bin(page: Page, site: Site) -> None:
    risk_id, title = _risk_with_mitigation(site)
    login(page)
    page.goto(f"/risks/{risk_id}")
    page.get_by_role("button", name="Delete").first.click()  # confirm dialog accepted
    expect(page.get_by_role("status")).to_have_text("Risk deleted.")

    page.get_by_role("link", name="Bin", exact=True).click()
    expect(page.get_by_role("heading", name="Bin", exact=True)).to_be_visible()
    row = page.locator("table[data-testid=bin] tbody tr", has_text=title)
    expect(row).to_have_count(1)
    expect(row.locator("td").nth(6)).to_have_text("1")  # its mitigation went with it
    expect(row).to_contain_text("You")  # who deleted it
    row.get_by_role("button", name=f"Restore {title}").click()

    expect(page).to_have_url(f"{site.base_url}/risks/{risk_id}")
    expect(page.get_by_role("status")).to_have_text(f"“{title}” is back in the register.")
    expect(page.locator("#mitigations")).to_contain_text("Patch it")
    expect(page.locator("#history")).to_contain_text("Restore")
    page.goto("/risks/bin")
    expect(page.locator("table[data-testid=bin] tbody tr", has_text=title)).to_have_count(0)
    page.goto(f"/risks?q={title.split()[-1]}")
    expect(page.locator("table.risks tbody tr", has_text=title)).to_have_count(1)


def test_a_viewer_has_no_bin(page: Page) -> None:
    login(page, VIEWER_EMAIL)
    page.goto("/risks")
    expect(page.get_by_role("link", name="Bin", exact=True)).to_have_count(0)
    response = page.goto("/risks/bin")
    assert response is not None and response.status == 403
