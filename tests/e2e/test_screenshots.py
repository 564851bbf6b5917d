"""Screenshots of the main pages on a desktop (1366 px) and a phone (390 px) screen.

``make screenshots`` runs this file with ``SCREENSHOTS_DIR=docs/screenshots`` to refresh the
pictures in the documentation; the suite writes them under reports/screenshots instead.
"""

from __future__ import annotations

import pytest
from playwright.sync_api import Page

from tests.e2e.conftest import DESKTOP, PHONE, SCREENSHOTS, Site, login, screenshot

pytestmark = pytest.mark.browser

PAGES = {
    "dashboard": "/",
    "register": "/risks",
    "roles": "/settings/roles",
    "marketplace": "/marketplace",
    "loss-exposure": "/quantitative",
}


def _risk_detail(site: Site) -> str:
    """A high-scored risk with mitigations and sub-actions (quantified if one is), so the page
    shows all it can."""
    headers = site.api_headers()
    risks = site.api("/api/v1/risks?sort=score&order=desc&page_size=50", headers).json()
    found = []
    for risk in risks["items"]:
        planned = site.api(f"/api/v1/risks/{risk['id']}/mitigations", headers).json()["items"]
        if any(m["sub_actions"] for m in planned):
            found.append(f"/risks/{risk['id']}")
            estimate = site.api(f"/api/v1/risks/{risk['id']}/quantification", headers).json()
            if estimate["quantification"] is not None:  # its loss curve and ROSI too
                return found[-1]
    assert found, "no risk with mitigations and sub-actions in the seeded data"
    return found[0]


def test_screenshots_at_desktop_and_phone_widths(page: Page, site: Site) -> None:
    login(page)
    pages = {**PAGES, "risk-detail": _risk_detail(site)}
    written = []
    sideways: dict[str, int] = {}
    for width, viewport in (("1366", DESKTOP), ("390", PHONE)):
        page.set_viewport_size(viewport)
        for name, path in pages.items():
            response = page.goto(path)
            assert response is not None and response.status == 200, path
            page.evaluate("document.fonts.ready")
            written.append(screenshot(page, f"{name}-{width}"))
            overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
            if overflow > 1:
                sideways[f"{name}-{width}"] = overflow
    assert all(p.stat().st_size > 10_000 and p.parent == SCREENSHOTS for p in written)
    assert sideways == {}, f"pages that scroll sideways (px): {sideways}"
