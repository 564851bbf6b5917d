"""One email rule everywhere: sign-up, sign-in, members and invitations refuse the same
addresses with the same human message (the CLI's ``create-admin`` is in tests/cli)."""

from __future__ import annotations

import httpx
import pytest

from openrisk.auth.emails import MESSAGE, InvalidEmail, normalise_email
from openrisk.rbac.catalogue import VIEWER
from tests.conftest import TEST_PASSWORD, Account

BAD = ["notanemail", "a@b", "two@@example.com", "spaced out@example.com", "x@example.com.", ""]
GOOD = {
    "demo@openrisk.local": "demo@openrisk.local",  # internal domains are real logins
    " Mixed.Case@Example.COM ": "mixed.case@example.com",
    "ops+alerts@corp.test": "ops+alerts@corp.test",
}


@pytest.mark.parametrize("address", BAD)
def test_the_rule_refuses_what_is_not_an_address(address: str) -> None:
    with pytest.raises(InvalidEmail, match=r"name@example\.com"):
        normalise_email(address)


@pytest.mark.parametrize(("address", "stored"), GOOD.items())
def test_the_rule_accepts_and_lower_cases_addresses(address: str, stored: str) -> None:
    assert normalise_email(address) == stored


def _email_error(response: httpx.Response) -> str:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    [entry] = [e for e in response.json()["errors"] if e["field"] == "email"]
    return str(entry["message"])


async def test_register_and_login_give_the_same_human_message(
    client: httpx.AsyncClient,
) -> None:
    registered = await client.post(
        "/api/v1/auth/register",
        json={"email": "notanemail", "password": TEST_PASSWORD, "tenant_name": "Acme"},
    )
    login = await client.post(
        "/api/v1/auth/login", json={"email": "notanemail", "password": TEST_PASSWORD}
    )
    assert _email_error(registered) == _email_error(login) == MESSAGE
    assert "pattern" not in login.text and "^" not in login.text


async def test_inviting_a_non_address_is_refused_with_the_message(
    client: httpx.AsyncClient, admin: Account
) -> None:
    response = await client.post(
        "/api/v1/members",
        json={"email": "bob@", "role_id": str(VIEWER.id)},
        headers=admin.in_tenant(),
    )
    assert _email_error(response) == MESSAGE
    listed = await client.get("/api/v1/members", headers=admin.in_tenant())
    assert all(m["email"] != "bob@" for m in listed.json()["items"])


async def test_an_address_differing_only_in_case_signs_in(
    client: httpx.AsyncClient, admin: Account
) -> None:
    response = await client.post(
        "/api/v1/auth/login", json={"email": admin.email.upper(), "password": TEST_PASSWORD}
    )
    assert response.status_code == 200, response.text
