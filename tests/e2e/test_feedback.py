"""Every action says what it did: sub-actions added, toggled and removed, a tenant switch,
signing out and accepting an invitation show a message; after a toggle the focus is on the
sub-action, not on the page's top."""

from __future__ import annotations

import re
import uuid

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.e2e.conftest import Site, login
from tests.e2e.seed import OTHER_TENANT

pytestmark = pytest.mark.browser


def _risk_with_mitigation(site: Site) -> tuple[str, str]:
    with httpx.Client(base_url=f"{site.base_url}/api/v1", headers=site.api_headers()) as api:
        risk = api.post(
            "/risks",
            json={"title": f"Feedback risk {uuid.uuid4().hex[:5]}", "impact": 3, "probability": 3},
        )
        assert risk.status_code == 201, risk.text
        made = api.post(
            f"/risks/{risk.json()['id']}/mitigations",
            json={
                "title": "Harden the laptops",
                "sub_actions": [{"title": "Encrypt disks"}, {"title": "Enable MFA"}],
            },
        )
        assert made.status_code == 201, made.text
        return risk.json()["id"], made.json()["id"]


def test_sub_action_changes_are_announced_and_keep_the_focus(page: Page, site: Site) -> None:
    risk_id, mitigation_id = _risk_with_mitigation(site)
    login(page)
    page.goto(f"/risks/{risk_id}")
    article = page.locator(f"#mitigation-{mitigation_id}")
    article.get_by_label("New sub-action").fill("Rotate recovery keys")
    article.get_by_role("button", name="Add").click()
    expect(page.get_by_role("status")).to_have_text("Sub-action “Rotate recovery keys” added.")

    article = page.locator(f"#mitigation-{mitigation_id}")
    item = article.locator("li", has_text="Encrypt disks")
    item.get_by_role("button", name="Mark done").click()
    expect(page.get_by_role("status")).to_contain_text("“Encrypt disks” marked done")
    expect(page.get_by_role("status")).to_contain_text("33 % done")
    focused = page.evaluate("document.activeElement.id")
    assert focused.startswith("sub-"), focused
    expect(page.locator(f"#{focused}")).to_contain_text("Encrypt disks")

    page.locator(f"#mitigation-{mitigation_id} li", has_text="Enable MFA").get_by_role(
        "button", name="Remove"
    ).click()
    expect(page.get_by_role("status")).to_have_text("Sub-action removed.")
    expect(page.locator(f"#mitigation-{mitigation_id}")).not_to_contain_text("Enable MFA")
    assert page.evaluate("document.activeElement.id") == f"mitigation-{mitigation_id}"


def test_switching_tenant_and_signing_out_are_announced(page: Page) -> None:
    login(page)
    page.get_by_label("Organisation").select_option(label=f"{OTHER_TENANT} (Admin)")
    page.get_by_role("button", name="Switch").click()
    expect(page.get_by_role("status")).to_have_text(f"You are now working in {OTHER_TENANT}.")
    page.get_by_label("Organisation").select_option(label="Demo Corp (Admin)")
    page.get_by_role("button", name="Switch").click()
    expect(page.get_by_role("status")).to_have_text("You are now working in Demo Corp.")
    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(re.compile(r"/login$"))
    expect(page.get_by_role("status")).to_have_text("You are signed out.")


def test_accepting_an_invitation_is_announced(page: Page, site: Site) -> None:
    login(page)
    page.goto("/settings/members")
    email = f"new-{uuid.uuid4().hex[:6]}@example.com"
    page.get_by_label("Email").fill(email)
    page.get_by_role("button", name="Invite").click()
    link = page.get_by_label("Invitation link").input_value()
    invitee = page.context.browser.new_context(base_url=site.base_url)  # type: ignore[union-attr]
    other = invitee.new_page()
    other.goto(link)
    other.get_by_label("Your name").fill("Nina New")
    other.locator("#f-password").fill("a-long-enough-password")
    other.locator("#f-password_confirm").fill("a-long-enough-password")
    other.get_by_role("button", name="Create my account").click()
    expect(other.get_by_role("status")).to_contain_text("your account is ready")
    invitee.close()
