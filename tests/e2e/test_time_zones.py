"""Times on the pages are in the person's time zone: the browser tells the server its zone
(app.js), and every ``<time>`` then reads as local time with the zone's abbreviation, while its
``datetime`` attribute keeps the UTC instant."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import Browser

from tests.e2e.conftest import DESKTOP, Site, login

pytestmark = pytest.mark.browser


@pytest.mark.parametrize(
    ("zone", "abbreviations"), [("Asia/Tokyo", {"JST"}), ("America/New_York", {"EST", "EDT"})]
)
def test_times_are_shown_in_the_browsers_time_zone(
    browser: Browser, site: Site, zone: str, abbreviations: set[str]
) -> None:
    context = browser.new_context(base_url=site.base_url, viewport=DESKTOP, timezone_id=zone)
    try:
        page = context.new_page()
        login(page)
        page.goto("/audit")  # the first page tells the server the zone; the next uses it
        page.reload()
        times = page.locator("table time")
        assert times.count() > 0
        for index in range(min(times.count(), 5)):
            element = times.nth(index)
            instant = datetime.fromisoformat(str(element.get_attribute("datetime")))
            local = instant.astimezone(ZoneInfo(zone))
            text = element.inner_text()
            assert text == local.strftime("%Y-%m-%d %H:%M ") + str(local.tzname()), text
            assert text.rsplit(" ", 1)[1] in abbreviations
    finally:
        context.close()
