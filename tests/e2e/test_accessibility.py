"""axe-core in the browser: no serious or critical accessibility violation on any page of the
web UI, on a desktop and on a phone-sized screen."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page

from tests.e2e.conftest import PHONE, Site, login, serious_violations

pytestmark = pytest.mark.browser

SIGNED_IN_PAGES = (
    "/",
    "/risks",
    "/risks?q=nothing-matches-this",
    "/risks/new",
    "/quantitative",
    "/assets",
    "/marketplace",
    "/marketplace/connectors/webhook",
    "/settings/members",
    "/settings/roles",
    "/settings/tokens",
    "/audit",
    "/reports",
    "/risks/import",
    "/risks/bin",
    "/reviews",
    "/acceptances",
    "/settings/risk-model",
    "/no-such-page",
)


def _detail_pages(page: Page) -> list[str]:
    """A risk (the oldest has mitigations), an asset, a member and an installed app."""
    found = []
    for listing, selector in (
        ("/risks?sort=created_at&order=asc", "table.risks tbody a"),
        ("/assets", "table tbody a"),
        ("/settings/members", "table tbody a"),
        ("/marketplace", "a[href^='/marketplace/apps/']"),
    ):
        page.goto(listing)
        href = page.locator(selector).first.get_attribute("href")
        assert href, listing
        found.append(href)
    return found


def _check(page: Page, paths: list[str]) -> list[str]:
    problems: list[str] = []
    for path in paths:
        page.goto(path)
        problems += serious_violations(page)
    return problems


def test_no_serious_violation_on_any_page(page: Page, site: Site) -> None:
    login(page)
    paths = [*SIGNED_IN_PAGES, *_detail_pages(page)]
    problems = _check(page, paths)
    page.set_viewport_size(PHONE)
    problems += _check(page, ["/", "/risks", paths[-4], "/settings/roles"])
    page.context.clear_cookies()
    problems += _check(page, ["/login", "/invitations/not-a-real-token"])
    assert problems == [], "\n".join(problems)
