"""The API documentation pages work without internet: Swagger UI and ReDoc load nothing from
another site, and Swagger's Authorize button signs in through the password flow."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import pytest
from playwright.sync_api import Page, Request, expect

from tests.e2e.conftest import DEMO_EMAIL, Site
from tests.e2e.seed import PASSWORD

pytestmark = pytest.mark.browser
RENDERING_MS = 30_000  # both bundles lay out the whole OpenAPI document first: slow on a busy host


@dataclass
class Outgoing:
    """URLs of other sites a page asked for, and those its Content-Security-Policy stopped
    in the browser (those never leave the machine)."""

    asked: list[str] = field(default_factory=list)
    blocked: list[str] = field(default_factory=list)

    def left_the_machine(self) -> list[str]:
        return [url for url in self.asked if url not in self.blocked]


def _watch(page: Page, site: Site) -> Outgoing:
    seen = Outgoing()

    def record(request: Request) -> None:
        if not request.url.startswith((site.base_url, "data:", "blob:")):
            seen.asked.append(request.url)

    page.on("request", record)
    page.on("requestfailed", lambda r: seen.blocked.append(r.url) if r.failure == "csp" else None)
    # anything else that tries to leave fails at once instead of waiting for a timeout
    page.route(re.compile(r"^(?!" + re.escape(site.base_url) + r").*"), lambda r: r.abort())
    return seen


def test_swagger_ui_loads_only_local_files_and_authorize_works(page: Page, site: Site) -> None:
    outgoing = _watch(page, site)
    page.goto("/docs")
    heading = page.get_by_role("heading", name=re.compile("^OpenRisk")).first
    expect(heading).to_be_visible(timeout=RENDERING_MS)
    expect(page.locator(".opblock").first).to_be_visible()

    page.get_by_role("button", name=re.compile("^Authorize")).first.click()
    dialog = page.locator(".modal-ux")
    dialog.get_by_label("username:").fill(DEMO_EMAIL)
    dialog.get_by_label("password:", exact=True).fill(PASSWORD)
    with page.expect_response(re.compile(r"/api/v1/auth/token$")) as answer:
        dialog.get_by_role("button", name="Apply given OAuth2 credentials").click()
    assert answer.value.status == 200
    expect(
        dialog.get_by_role("button", name=re.compile("Logout|Remove authorization"))
    ).to_be_visible()
    dialog.get_by_role("button", name="Close", exact=True).click()

    # the token is sent: "GET /auth/me" answers the signed-in user
    operation = page.locator("#operations-auth-me_api_v1_auth_me_get")
    operation.locator(".opblock-summary").click()
    with page.expect_response(re.compile(r"/api/v1/auth/me$")) as me:
        operation.get_by_role("button", name="Execute").click()
    assert me.value.status == 200 and me.value.json()["email"] == DEMO_EMAIL
    assert outgoing.left_the_machine() == []


def test_redoc_loads_only_local_files(page: Page, site: Site) -> None:
    outgoing = _watch(page, site)
    page.goto("/redoc")
    heading = page.get_by_role("heading", name=re.compile("OpenRisk")).first
    expect(heading).to_be_visible(timeout=RENDERING_MS)
    expect(page.get_by_text("Multi-tenant risk register API.").first).to_be_visible()
    assert outgoing.left_the_machine() == []
