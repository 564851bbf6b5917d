"""The web UI in a real browser: sign-in, dashboard against the API, the risk forms,
permissions as the API applies them, the role matrix, the tenant switcher, screenshots."""

from __future__ import annotations

import re
import uuid

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.e2e.conftest import Site, login, screenshot
from tests.e2e.seed import ANALYST_EMAIL, OTHER_RISK, OTHER_TENANT, PASSWORD, VIEWER_EMAIL

pytestmark = pytest.mark.browser

MAIN_PAGES = {
    "dashboard": "/",
    "risks": "/risks",
    "risk-new": "/risks/new",
    "assets": "/assets",
    "marketplace": "/marketplace",
    "connector-webhook": "/marketplace/connectors/webhook",
    "members": "/settings/members",
    "roles": "/settings/roles",
    "tokens": "/settings/tokens",
    "audit": "/audit",
}


def nav(page: Page, name: str) -> None:
    page.get_by_role("navigation", name="Main").get_by_role("link", name=name, exact=True).click()


def heatmap_counts(page: Page) -> dict[tuple[int, int], int]:
    cells = page.locator("table.heatmap td.cell")
    expect(cells.first).to_be_visible()  # the dashboard has loaded, not the page before it
    values = cells.evaluate_all(
        "cells => cells.map(c => [c.dataset.impact, c.dataset.probability, c.dataset.count])"
    )
    return {(int(i), int(p)): int(n) for i, p, n in values}


def api_matrix(site: Site) -> dict[tuple[int, int], int]:
    response = site.api("/api/v1/dashboard/matrix")
    assert response.status_code == 200, response.text
    return {(c["impact"], c["probability"]): c["count"] for c in response.json()["cells"]}


def test_login_then_dashboard_heatmap_equals_the_matrix_api(page: Page, site: Site) -> None:
    page.goto("/risks")
    expect(page).to_have_url(re.compile(r"/login\?next=%2Frisks$"))
    page.get_by_label("Email").fill("demo@openrisk.local")
    page.get_by_label("Password").fill("not the password")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("Invalid email or password")

    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(r"/risks$"))  # back where the person was going
    nav(page, "Dashboard")
    expect(page.get_by_role("heading", name="Heatmap")).to_be_visible()

    counts = heatmap_counts(page)
    assert len(counts) == 25
    assert counts == api_matrix(site)
    assert sum(counts.values()) > 0
    current = page.get_by_role("navigation", name="Main").locator("[aria-current=page]")
    expect(current).to_have_text("Dashboard")
    expect(page.locator("figure.chart svg polyline.line")).to_have_count(3)  # and the residual


def test_a_risk_created_with_the_form_shows_in_list_detail_and_dashboard(
    page: Page, site: Site
) -> None:
    login(page)
    before = heatmap_counts(page)
    title = f"Browser-made risk {uuid.uuid4().hex[:6]}"

    nav(page, "Risks")
    page.get_by_role("link", name="New risk").click()
    page.get_by_label("Title").fill(title)
    page.get_by_label("Description").fill("Created through the web form.")
    page.get_by_label("Impact").select_option("5")
    page.get_by_label("Probability").select_option("4")
    page.get_by_label("Status").select_option("ACTIVE")
    page.get_by_label("Tags").fill("browser, e2e")
    page.get_by_role("button", name="Create risk").click()

    expect(page.get_by_test_id("risk-title")).to_have_text(title)
    expect(page.get_by_role("status")).to_contain_text("created")
    expect(page.locator("dl.details")).to_contain_text("5 / 5")

    nav(page, "Risks")
    page.get_by_label("Search").fill(title.split()[-1])
    page.get_by_role("button", name="Apply").click()
    expect(page.locator("table.risks tbody tr")).to_have_count(1)
    expect(page.get_by_role("link", name=title)).to_be_visible()

    nav(page, "Dashboard")
    after = heatmap_counts(page)
    assert after[(5, 4)] == before[(5, 4)] + 1
    assert after == api_matrix(site)


def test_a_validation_error_is_shown_next_to_its_field(page: Page) -> None:
    login(page)
    page.goto("/risks/new")
    page.get_by_label("Title").fill("   ")  # passes the browser's `required`, not the server
    page.get_by_label("Review date").fill("2031-02-03")
    page.get_by_role("button", name="Create risk").click()

    title = page.get_by_label("Title")
    expect(title).to_have_attribute("aria-invalid", "true")
    error = page.locator("#f-title-error")
    expect(error).to_have_text("This field is required.")
    assert "f-title-error" in (title.get_attribute("aria-describedby") or "")
    # the message sits right under its input, and the rest of the form was kept
    box_input, box_error = title.bounding_box(), error.bounding_box()
    assert box_input and box_error and 0 <= box_error["y"] - box_input["y"] < 80
    expect(page.get_by_label("Review date")).to_have_value("2031-02-03")
    expect(page.locator(".error-summary")).to_be_focused()
    screenshot(page, "risk-form-validation", full_page=False)


def test_a_viewer_sees_no_write_controls_and_forged_posts_are_refused(
    page: Page, site: Site
) -> None:
    login(page, VIEWER_EMAIL)
    page.goto("/risks")
    expect(page.locator("table.risks")).to_be_visible()
    expect(page.get_by_role("link", name="New risk")).to_have_count(0)
    page.locator("table.risks tbody a").first.click()
    expect(page.get_by_test_id("risk-title")).to_be_visible()
    expect(page.get_by_role("link", name="Edit")).to_have_count(0)
    expect(page.get_by_role("button", name="Delete")).to_have_count(0)
    expect(page.get_by_role("heading", name="Plan a mitigation")).to_have_count(0)
    menu = page.get_by_role("navigation", name="Main")
    for hidden in ("Audit log", "API tokens"):
        expect(menu.get_by_role("link", name=hidden)).to_have_count(0)
    screenshot(page, "viewer-risk-detail")

    risk_id = page.url.rsplit("/", 1)[1]
    token = page.locator("input[name=csrf_token]").first.input_value()
    # a hand-made POST with a valid session and CSRF token: the permission check refuses it
    forged = page.request.post(
        "/risks/new",
        form={"csrf_token": token, "title": "forged", "impact": "3", "probability": "3"},
        max_redirects=0,
    )
    assert forged.status == 403
    assert "Missing permission risk:create" in forged.text()
    deleted = page.request.post(
        f"/risks/{risk_id}/delete", form={"csrf_token": token}, max_redirects=0
    )
    assert deleted.status == 403
    # and without the CSRF token, nothing is even considered
    no_token = page.request.post(f"/risks/{risk_id}/delete", form={}, max_redirects=0)
    assert no_token.status == 403
    page.goto("/risks/new")
    expect(page.get_by_role("heading", name=re.compile("403"))).to_be_visible()
    assert site.api(f"/api/v1/risks/{risk_id}").status_code == 200  # still there


def test_an_admin_creates_a_custom_role_in_the_matrix_and_assigns_it(
    page: Page, site: Site
) -> None:
    login(page)
    nav(page, "Roles")
    name = f"Auditor {uuid.uuid4().hex[:5]}"
    page.get_by_label("New role name").fill(name)
    page.get_by_label("Description", exact=True).fill("Reads the register and the audit log.")
    page.locator("#f-level").select_option("2")
    matrix = page.get_by_test_id("permission-matrix")
    for code, scope in (
        ("risk:read", "all"),
        ("dashboard:read", "all"),
        ("audit:read", "all"),
        ("risk:update", "own"),
    ):
        matrix.get_by_label(f"New role: {code}", exact=True).select_option(scope)
    page.get_by_role("button", name="Create role").click()
    expect(page.get_by_role("status")).to_contain_text(f"Role “{name}” created")
    header = matrix.locator("thead th", has_text=name)
    expect(header).to_have_count(1)

    nav(page, "Members")
    row = page.locator(f"tr[data-email='{ANALYST_EMAIL}']")
    row.get_by_label(f"Role of {ANALYST_EMAIL}").select_option(label=f"{name} (2)")
    row.get_by_role("button", name="Change role").click()
    expect(page.get_by_role("status")).to_contain_text(f"is now {name}")
    expect(page.locator(f"tr[data-email='{ANALYST_EMAIL}'] .role-cell")).to_contain_text(name)

    member = site.api(f"/api/v1/members/{site.data.analyst_id}/permissions")
    assert member.status_code == 200, member.text
    assert member.json()["member"]["role_name"] == name
    granted = {(p["code"], p["scope"]) for p in member.json()["permissions"]}
    assert granted == {
        ("risk:read", "all"),
        ("dashboard:read", "all"),
        ("audit:read", "all"),
        ("risk:update", "own"),
    }
    # the assignee's next page already follows the new role
    analyst = page.context.browser.new_context(base_url=site.base_url)  # type: ignore[union-attr]
    other = analyst.new_page()
    login(other, ANALYST_EMAIL)
    menu = other.get_by_role("navigation", name="Main")
    expect(menu.get_by_role("link", name="Audit log")).to_be_visible()
    expect(menu.get_by_role("link", name="Assets")).to_have_count(0)
    analyst.close()


def test_switching_tenant_shows_only_that_tenants_data(page: Page, site: Site) -> None:
    login(page)
    page.goto("/risks")
    expect(page.get_by_role("link", name=OTHER_RISK)).to_have_count(0)
    demo_total = int(page.locator("table.risks").get_attribute("data-total") or 0)
    assert demo_total > 1

    page.get_by_label("Organisation").select_option(label=f"{OTHER_TENANT} (Admin)")
    page.get_by_role("button", name="Switch").click()
    expect(page).to_have_url(re.compile(r"/risks$"))
    rows = page.locator("table.risks tbody tr")
    expect(rows).to_have_count(1)
    expect(page.get_by_role("link", name=OTHER_RISK)).to_be_visible()
    nav(page, "Dashboard")
    expect(page.get_by_test_id("global-score")).to_be_visible()
    assert sum(heatmap_counts(page).values()) == 1
    # a risk of the first tenant is not found from here
    demo_risks = site.api("/api/v1/risks?page_size=1").json()["items"]
    page.goto(f"/risks/{demo_risks[0]['id']}")
    expect(page.get_by_role("heading", name=re.compile("404"))).to_be_visible()

    page.get_by_label("Organisation").select_option(label="Demo Corp (Admin)")
    page.get_by_role("button", name="Switch").click()
    page.goto("/risks")
    assert int(page.locator("table.risks").get_attribute("data-total") or 0) == demo_total


def test_an_api_token_secret_is_shown_once(page: Page, site: Site) -> None:
    login(page)
    page.goto("/settings/tokens")
    page.get_by_label("Name").fill("nightly export")
    page.get_by_role("button", name="Create token").click()
    secret = page.get_by_label("Token secret").input_value()
    assert secret.startswith("orsk_")
    response = httpx.get(
        f"{site.base_url}/api/v1/risks?page_size=1",
        headers={"Authorization": f"Bearer {secret}"},
        trust_env=False,
    )
    assert response.status_code == 200
    page.goto("/settings/tokens")
    expect(page.get_by_label("Token secret")).to_have_count(0)
    assert secret not in page.content()
    expect(page.locator("td", has_text="nightly export").first).to_be_visible()


def test_logout_ends_the_session(page: Page) -> None:
    login(page)
    cookies = page.context.cookies()
    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(re.compile(r"/login$"))
    page.context.add_cookies(cookies)  # the old cookie, replayed
    page.goto("/risks")
    expect(page).to_have_url(re.compile(r"/login"))


def test_the_pages_are_usable_with_the_keyboard(page: Page) -> None:
    login(page)
    page.keyboard.press("Tab")
    skip = page.get_by_role("link", name="Skip to main content")
    expect(skip).to_be_focused()
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile("#main$"))
    for path in MAIN_PAGES.values():
        page.goto(path)
        unlabelled = page.evaluate(
            """() => [...document.querySelectorAll('input, select, textarea')]
                .filter(e => e.type !== 'hidden')
                .filter(e => !(e.labels && e.labels.length) && !e.getAttribute('aria-label'))
                .map(e => e.name)"""
        )
        assert unlabelled == [], f"{path}: inputs without a label: {unlabelled}"
        duplicated = page.evaluate(
            """() => { const ids = [...document.querySelectorAll('[id]')].map(e => e.id);
                       return ids.filter((id, i) => ids.indexOf(id) !== i); }"""
        )
        assert duplicated == [], f"{path}: duplicated ids {duplicated}"


def test_screenshots_of_the_main_pages(page: Page, site: Site) -> None:
    login(page)
    for name, path in MAIN_PAGES.items():
        response = page.goto(path)
        assert response is not None and response.status == 200, path
        screenshot(page, name)
    page.goto("/risks?sort=created_at&order=asc")  # the oldest has mitigations
    page.locator("table.risks tbody a").first.click()
    screenshot(page, "risk-detail")
    page.goto("/marketplace")
    page.get_by_role("link", name="Quarterly CSV import").click()
    screenshot(page, "marketplace-app")
    page.goto("/login")  # signed in: sent on
    page.context.clear_cookies()
    page.goto("/login")
    screenshot(page, "login")
    page.set_viewport_size({"width": 390, "height": 844})  # a phone
    login(page)
    screenshot(page, "dashboard-phone")
    page.goto("/risks")
    screenshot(page, "risks-phone")
