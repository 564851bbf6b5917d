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


# the pages in four groups, so that the browser tests' longest check is split over workers
SIGNED_IN_GROUPS = (SIGNED_IN_PAGES[:7], SIGNED_IN_PAGES[7:13], SIGNED_IN_PAGES[13:])


@pytest.mark.parametrize("group", range(len(SIGNED_IN_GROUPS)))
def test_no_serious_violation_on_the_signed_in_pages(page: Page, site: Site, group: int) -> None:
    login(page)
    problems = _check(page, list(SIGNED_IN_GROUPS[group]))
    assert problems == [], "\n".join(problems)


def test_no_serious_violation_on_detail_pages_phones_and_signed_out_pages(
    page: Page, site: Site
) -> None:
    login(page)
    details = _detail_pages(page)
    problems = _check(page, details)
    page.set_viewport_size(PHONE)
    problems += _check(page, ["/", "/risks", details[0], "/settings/roles"])
    page.context.clear_cookies()
    problems += _check(page, ["/login", "/invitations/not-a-real-token"])
    assert problems == [], "\n".join(problems)
