"""Marketplace: catalogue, reviews, installed apps, secrets, isolation."""

from __future__ import annotations

import dataclasses
import logging
import uuid
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from jsonschema import Draft202012Validator
from sqlalchemy import delete, select

from openrisk.core.uow import UnitOfWork
from openrisk.marketplace.catalogue import load_catalogue
from openrisk.marketplace.configuration import MASK
from openrisk.marketplace.models import App, Connector
from openrisk.marketplace.service import sync_catalogue
from openrisk.rbac.catalogue import ANALYST, MANAGER, VIEWER
from tests.api.rbac_helpers import member_with_role
from tests.api.test_risks_helpers import count_queries
from tests.conftest import Account, register

API = "/api/v1/marketplace"
# a public address literal: passes the SSRF guard without DNS, never contacted by these tests
PUBLIC_URL = "https://93.184.215.14/openrisk-hook"
SECRET = "sup3r-s3cret-Value-0123456789-xyz"


def webhook_config(**overrides: Any) -> dict[str, Any]:
    return {"url": PUBLIC_URL, "secret": "webhook-signing-secret-0001", **overrides}


async def install(
    client: httpx.AsyncClient, account: Account, connector_id: str, config: dict[str, Any]
) -> httpx.Response:
    return await client.post(
        f"{API}/apps",
        json={"connector_id": connector_id, "configuration": config},
        headers=account.in_tenant(),
    )


def fields(response: httpx.Response) -> set[str]:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    return {e["field"] for e in response.json()["errors"]}


# --------------------------------------------------------------------------- catalogue


async def test_catalogue_has_at_least_eight_connectors_with_valid_schemas(
    client: httpx.AsyncClient, admin: Account
) -> None:
    listed = await client.get(f"{API}/connectors?page_size=100", headers=admin.in_tenant())
    assert listed.status_code == 200
    body = listed.json()
    assert body["total"] >= 8
    ids = {c["id"] for c in body["items"]}
    assert {"webhook", "slack", "jira", "thehive", "csv-import", "email-digest"} <= ids
    assert {"opencti", "aws-security-hub"} <= ids
    for item in body["items"]:
        assert item["version"] and item["category"] and item["capabilities"]
        assert item["status"] in {"active", "beta", "deprecated"}
        detail = await client.get(f"{API}/connectors/{item['id']}", headers=admin.in_tenant())
        assert detail.status_code == 200
        schema = detail.json()["config_schema"]
        Draft202012Validator.check_schema(schema)
        for name in detail.json()["secret_fields"]:
            assert schema["properties"][name].get("writeOnly") is True


async def test_catalogue_filters_and_search(client: httpx.AsyncClient, admin: Account) -> None:
    h = admin.in_tenant()
    notif = (await client.get(f"{API}/connectors?category=notification", headers=h)).json()
    assert notif["total"] >= 3
    assert {c["category"] for c in notif["items"]} == {"notification"}

    deprecated = (await client.get(f"{API}/connectors?status=deprecated", headers=h)).json()
    assert [c["id"] for c in deprecated["items"]] == ["jira-server"]

    found = (await client.get(f"{API}/connectors?q=SLACK", headers=h)).json()
    assert [c["id"] for c in found["items"]] == ["slack"]

    ranked = (await client.get(f"{API}/connectors?q=jira&sort=relevance", headers=h)).json()
    assert [c["id"] for c in ranked["items"]][:2] == ["jira", "jira-server"]

    none = (await client.get(f"{API}/connectors?q=%25_nothing", headers=h)).json()
    assert none["total"] == 0

    bad = await client.get(f"{API}/connectors?status=bogus", headers=h)
    assert fields(bad) == {"status"}
    missing = await client.get(f"{API}/connectors/no-such-connector", headers=h)
    assert missing.status_code == 404


# --------------------------------------------------------------------------- reviews


async def test_reviews_one_per_user_rating_is_the_mean(
    app: FastAPI, client: httpx.AsyncClient, admin: Account
) -> None:
    url = f"{API}/connectors/opencti/reviews"
    before = (await client.get(f"{API}/connectors/opencti", headers=admin.in_tenant())).json()

    first = await client.post(url, json={"rating": 2, "comment": "meh"}, headers=admin.headers)
    assert first.status_code == 201
    again = await client.post(url, json={"rating": 4, "comment": "better"}, headers=admin.headers)
    assert again.status_code == 200
    assert again.json()["id"] == first.json()["id"]

    analyst = await member_with_role(app, client, admin, ANALYST)
    other = await client.post(url, json={"rating": 5}, headers=analyst.in_tenant())
    assert other.status_code == 201

    detail = (await client.get(f"{API}/connectors/opencti", headers=admin.in_tenant())).json()
    assert detail["review_count"] == before["review_count"] + 2
    assert detail["my_review"]["rating"] == 4
    reviews = (await client.get(url, headers=admin.in_tenant())).json()
    assert reviews["total"] == 2
    assert {r["rating"] for r in reviews["items"]} == {4, 5}
    # the global mean over every review of the connector, whoever wrote it
    if before["review_count"] == 0:
        assert detail["rating"] == 4.5

    for rating in (0, 6, "x"):
        assert fields(await client.post(url, json={"rating": rating}, headers=admin.headers)) == {
            "rating"
        }
    assert (
        await client.post(
            f"{API}/connectors/nope/reviews", json={"rating": 3}, headers=admin.headers
        )
    ).status_code == 404

    audit = (
        await client.get("/api/v1/audit-events?action=connector.review", headers=admin.in_tenant())
    ).json()
    assert audit["total"] >= 3


async def test_reviews_are_tenant_isolated_but_the_rating_is_global(
    client: httpx.AsyncClient, admin: Account
) -> None:
    other = await register(client, tenant_name="Review Rivals")
    url = f"{API}/connectors/email-digest/reviews"
    await client.post(url, json={"rating": 1, "comment": "ACME-INTERNAL"}, headers=admin.headers)
    before = (await client.get(f"{API}/connectors/email-digest", headers=other.headers)).json()
    await client.post(url, json={"rating": 3, "comment": "ours"}, headers=other.headers)

    theirs = (await client.get(url, headers=other.headers)).json()
    assert [r["comment"] for r in theirs["items"]] == ["ours"]
    assert "ACME-INTERNAL" not in str(theirs)
    detail = (await client.get(f"{API}/connectors/email-digest", headers=other.headers)).json()
    assert detail["review_count"] == before["review_count"] + 1
    assert detail["my_review"]["comment"] == "ours"

    # a user of two tenants reviews on behalf of each: one review per user, connector and tenant
    second = await client.post("/api/v1/tenants", json={"name": "Acme Labs"}, headers=admin.headers)
    labs = admin.in_tenant(second.json()["id"])
    from_labs = await client.post(url, json={"rating": 5, "comment": "labs view"}, headers=labs)
    assert from_labs.status_code == 201
    assert [r["comment"] for r in (await client.get(url, headers=labs)).json()["items"]] == [
        "labs view"
    ]
    home = (await client.get(url, headers=admin.in_tenant())).json()["items"]
    assert [r["comment"] for r in home] == ["ACME-INTERNAL"]


async def test_viewer_cannot_review_analyst_can(
    app: FastAPI, client: httpx.AsyncClient, admin: Account
) -> None:
    viewer = await member_with_role(app, client, admin, VIEWER)
    url = f"{API}/connectors/slack/reviews"
    denied = await client.post(url, json={"rating": 3}, headers=viewer.in_tenant())
    assert denied.status_code == 403
    assert (await client.get(url, headers=viewer.in_tenant())).status_code == 200


# --------------------------------------------------------------------------- apps


async def test_install_validates_the_configuration_naming_the_field(
    client: httpx.AsyncClient, admin: Account
) -> None:
    assert fields(await install(client, admin, "webhook", {"secret": "x" * 20})) == {
        "configuration.url"
    }
    assert fields(await install(client, admin, "webhook", {"url": PUBLIC_URL})) == {
        "configuration.secret"
    }
    short = await install(client, admin, "webhook", webhook_config(secret="short-secret"))
    assert fields(short) == {"configuration.secret"}
    assert "short-secret" not in short.text  # messages never echo a secret
    bad_event = await install(client, admin, "webhook", webhook_config(events=["risk.exploded"]))
    assert fields(bad_event) == {"configuration.events.0"}
    extra = await install(client, admin, "webhook", webhook_config(bogus=1))
    assert fields(extra) == {"configuration.bogus"}
    jira = await install(
        client,
        admin,
        "jira",
        {
            "base_url": "https://acme.atlassian.net",
            "email": "no-at-sign",
            "api_token": SECRET,
            "project_key": "lower",
        },
    )
    assert fields(jira) == {"configuration.email", "configuration.project_key"}
    assert fields(await install(client, admin, "nope", {})) == {"connector_id"}
    interval = await client.post(
        f"{API}/apps",
        json={"connector_id": "webhook", "configuration": webhook_config(), "sync_interval_s": 5},
        headers=admin.in_tenant(),
    )
    assert fields(interval) == {"sync_interval_s"}


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/hook",
        "http://localhost/hook",
        "http://10.1.2.3/hook",
        "http://192.168.0.10/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]/hook",
        "http://[fd00::1]/hook",
        "http://0.0.0.0/hook",
        "ftp://93.184.215.14/hook",
        "http://user:pw@93.184.215.14/hook",
    ],
)
async def test_private_and_non_http_webhook_urls_are_refused(
    client: httpx.AsyncClient, admin: Account, url: str
) -> None:
    assert fields(await install(client, admin, "webhook", webhook_config(url=url))) == {
        "configuration.url"
    }


async def test_configure_refuses_a_private_url(client: httpx.AsyncClient, admin: Account) -> None:
    created = await install(client, admin, "webhook", webhook_config())
    assert created.status_code == 201
    patched = await client.patch(
        f"{API}/apps/{created.json()['id']}",
        json={"configuration": {"url": "http://10.0.0.7/x"}},
        headers=admin.in_tenant(),
    )
    assert fields(patched) == {"configuration.url"}


async def test_secrets_are_write_only_and_never_appear(
    app: FastAPI, client: httpx.AsyncClient, admin: Account, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    h = admin.in_tenant()
    config = {
        "base_url": "https://acme.atlassian.net",
        "email": "risk-bot@acme.example",
        "api_token": SECRET,
        "project_key": "RISK",
    }
    created = await install(client, admin, "jira", config)
    assert created.status_code == 201, created.text
    app_id = created.json()["id"]
    assert created.json()["configuration"]["api_token"] == MASK
    assert created.json()["configuration"]["project_key"] == "RISK"

    # PATCH with the mask keeps the secret; other settings change
    patched = await client.patch(
        f"{API}/apps/{app_id}",
        json={"name": "Jira (risk)", "configuration": {"api_token": MASK, "issue_type": "Bug"}},
        headers=h,
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["configuration"] == {**config, "api_token": MASK, "issue_type": "Bug"}
    box = app.state.marketplace.box
    async with app.state.db.session() as session:
        row = await session.scalar(select(App).where(App.id == uuid.UUID(app_id)))
        assert row is not None
        assert SECRET not in str(row.configuration) and SECRET not in (row.secrets_encrypted or "")
        assert box.open(row.secrets_encrypted) == {"api_token": SECRET}

    responses = [
        created,
        patched,
        await client.get(f"{API}/apps/{app_id}", headers=h),
        await client.get(f"{API}/apps", headers=h),
        await client.get(f"{API}/apps/{app_id}/logs", headers=h),
        await client.post(f"{API}/apps/{app_id}/sync", headers=h),  # 409: catalogue-only
        await client.post(f"{API}/apps/{app_id}/disable", headers=h),
        await client.get("/api/v1/audit-events?resource=app&page_size=100", headers=h),
    ]
    for response in responses:
        assert response.status_code < 500
        assert SECRET not in response.text
    audit = responses[-1].json()["items"]
    assert {"app.install", "app.configure", "app.disable"} <= {e["action"] for e in audit}
    assert caplog.records  # the capture works (access log lines at least)
    assert SECRET not in caplog.text
    assert all(SECRET not in str(r.__dict__) for r in caplog.records)  # extras included

    # a new secret replaces the stored one; the audit names the field, not the value
    rotated = await client.patch(
        f"{API}/apps/{app_id}",
        json={"configuration": {"api_token": "another-" + SECRET}},
        headers=h,
    )
    assert rotated.status_code == 200
    assert SECRET not in rotated.text
    events = (await client.get("/api/v1/audit-events?action=app.configure", headers=h)).json()[
        "items"
    ]
    assert any(e["changes"].get("secrets_changed") == ["api_token"] for e in events)
    assert SECRET not in str(events)
    # removing a required secret is refused, naming it
    removed = await client.patch(
        f"{API}/apps/{app_id}", json={"configuration": {"api_token": None}}, headers=h
    )
    assert fields(removed) == {"configuration.api_token"}
    # a mask cannot stand for a secret that was never stored
    fresh = await install(
        client, admin, "opencti", {"base_url": "https://cti.example", "api_token": MASK}
    )
    assert fields(fresh) == {"configuration.api_token"}


async def test_app_lifecycle_counts_logs_and_conflicts(
    client: httpx.AsyncClient, admin: Account
) -> None:
    h = admin.in_tenant()
    before = (await client.get(f"{API}/connectors/thehive", headers=h)).json()["install_count"]
    config = {"base_url": "https://hive.example", "api_key": SECRET}
    # an install elsewhere counts too: install_count is global
    elsewhere = await register(client, tenant_name="Hive Elsewhere")
    assert (await install(client, elsewhere, "thehive", config)).status_code == 201
    created = await install(client, admin, "thehive", config)
    assert created.status_code == 201
    app_id = created.json()["id"]
    assert created.json()["status"] == "installed"
    assert created.json()["connector_name"] == "TheHive"
    again = await install(client, admin, "thehive", config)
    assert again.status_code == 409  # one install per tenant for this connector
    deprecated = await install(
        client,
        admin,
        "jira-server",
        {"base_url": "https://j.example", "username": "u", "password": "p", "project_key": "AB"},
    )
    assert deprecated.status_code == 409
    # connectors that allow several installs
    assert (await install(client, admin, "webhook", webhook_config())).status_code == 201
    assert (await install(client, admin, "webhook", webhook_config())).status_code == 201

    count = (await client.get(f"{API}/connectors/thehive", headers=h)).json()["install_count"]
    assert count == before + 2

    disabled = await client.post(f"{API}/apps/{app_id}/disable", headers=h)
    assert disabled.json()["status"] == "disabled"
    assert (await client.post(f"{API}/apps/{app_id}/sync", headers=h)).status_code == 409
    listed = (await client.get(f"{API}/apps?status=disabled", headers=h)).json()
    assert [a["id"] for a in listed["items"]] == [app_id]
    enabled = await client.post(f"{API}/apps/{app_id}/enable", headers=h)
    assert enabled.json()["status"] == "installed"

    logs = (await client.get(f"{API}/apps/{app_id}/logs", headers=h)).json()
    assert [entry["action"] for entry in logs["items"]] == ["enable", "disable", "install"]
    webhooks = (await client.get(f"{API}/apps?connector_id=webhook", headers=h)).json()
    assert webhooks["total"] == 2

    deleted = await client.delete(f"{API}/apps/{app_id}", headers=h)
    assert deleted.status_code == 204
    assert (await client.get(f"{API}/apps/{app_id}", headers=h)).status_code == 404
    count = (await client.get(f"{API}/connectors/thehive", headers=h)).json()["install_count"]
    assert count == before + 1
    assert (await install(client, admin, "thehive", config)).status_code == 201
    actions = {
        e["action"]
        for e in (
            await client.get("/api/v1/audit-events?resource=app&page_size=100", headers=h)
        ).json()["items"]
    }
    assert {"app.install", "app.enable", "app.disable", "app.uninstall"} <= actions


async def test_apps_are_tenant_isolated(client: httpx.AsyncClient, admin: Account) -> None:
    created = await install(client, admin, "webhook", webhook_config())
    app_id = created.json()["id"]
    other = await register(client, tenant_name="Isolated Co")
    h = other.in_tenant()
    app_url = f"{API}/apps/{app_id}"
    attempts = [
        await client.get(app_url, headers=h),
        await client.patch(app_url, json={"name": "mine now"}, headers=h),
        await client.delete(app_url, headers=h),
        await client.post(f"{app_url}/enable", headers=h),
        await client.post(f"{app_url}/disable", headers=h),
        await client.post(f"{app_url}/sync", headers=h),
        await client.get(f"{app_url}/logs", headers=h),
    ]
    assert [r.status_code for r in attempts] == [404] * len(attempts)
    assert (await client.get(f"{API}/apps", headers=h)).json()["total"] == 0
    # the owner still has it, untouched
    mine = await client.get(app_url, headers=admin.in_tenant())
    assert mine.status_code == 200 and mine.json()["status"] == "installed"
    # naming the other tenant explicitly is 404 as well
    assert (
        await client.get(f"{API}/apps", headers=other.in_tenant(admin.tenant_id))
    ).status_code == 404


async def test_permissions_by_role(app: FastAPI, client: httpx.AsyncClient, admin: Account) -> None:
    viewer = await member_with_role(app, client, admin, VIEWER)
    analyst = await member_with_role(app, client, admin, ANALYST)
    manager = await member_with_role(app, client, admin, MANAGER)
    created = await install(client, admin, "webhook", webhook_config())
    app_id = created.json()["id"]
    for account in (viewer, analyst):
        h = account.in_tenant()
        assert (await client.get(f"{API}/apps/{app_id}", headers=h)).status_code == 200
        assert (await client.get(f"{API}/apps/{app_id}/logs", headers=h)).status_code == 200
        assert (await install(client, account, "webhook", webhook_config())).status_code == 403
        patch = await client.patch(f"{API}/apps/{app_id}", json={"name": "x"}, headers=h)
        assert patch.status_code == 403
        assert (await client.post(f"{API}/apps/{app_id}/disable", headers=h)).status_code == 403
        assert (await client.post(f"{API}/apps/{app_id}/sync", headers=h)).status_code == 403
        assert (await client.delete(f"{API}/apps/{app_id}", headers=h)).status_code == 403
    h = manager.in_tenant()
    assert (await install(client, manager, "webhook", webhook_config())).status_code == 201
    assert (await client.post(f"{API}/apps/{app_id}/disable", headers=h)).status_code == 200
    assert (await client.delete(f"{API}/apps/{app_id}", headers=h)).status_code == 204


async def test_catalogue_sync_upserts_deprecates_and_recounts(
    app: FastAPI, client: httpx.AsyncClient, admin: Account
) -> None:
    """Start-up sync: new connectors appear, changed ones update, removed ones are deprecated,
    and counters are recomputed from every tenant's rows."""
    shipped = load_catalogue()
    webhook = next(s for s in shipped if s.id == "webhook")
    temp = dataclasses.replace(webhook, id="temp-test-connector", name="Temp", version="0.0.1")
    h = admin.in_tenant()
    await install(client, admin, "webhook", webhook_config())
    before = (await client.get(f"{API}/connectors/webhook", headers=h)).json()
    try:
        async with app.state.db.session() as session:
            uow = UnitOfWork.for_app(app.state, session)  # invalidates the catalogue's answers
            assert await sync_catalogue(uow=uow, specs=(*shipped, temp)) == 1
        added = (await client.get(f"{API}/connectors/temp-test-connector", headers=h)).json()
        assert (added["status"], added["version"]) == ("active", "0.0.1")
        async with app.state.db.session() as session:
            uow = UnitOfWork.for_app(app.state, session)
            assert await sync_catalogue(uow=uow) == 1  # temp is no longer shipped
        gone = (await client.get(f"{API}/connectors/temp-test-connector", headers=h)).json()
        assert gone["status"] == "deprecated"
        after = (await client.get(f"{API}/connectors/webhook", headers=h)).json()
        assert after["install_count"] == before["install_count"]
        assert after["rating"] == before["rating"]
    finally:
        async with app.state.db.session() as session:
            await session.execute(delete(Connector).where(Connector.id == "temp-test-connector"))
            await session.commit()


async def test_lists_use_a_fixed_number_of_queries(
    app: FastAPI, client: httpx.AsyncClient, admin: Account
) -> None:
    """No N+1: the app list (with connector names) and the log list cost the same for 1 or 6."""
    h = admin.in_tenant()
    first = await install(client, admin, "webhook", webhook_config())

    async def cost(url: str) -> int:
        with count_queries(app) as statements:
            assert (await client.get(url, headers=h)).status_code == 200
        return len(statements)

    apps_one = await cost(f"{API}/apps")
    logs_one = await cost(f"{API}/apps/{first.json()['id']}/logs")
    connectors = await cost(f"{API}/connectors?page_size=100")
    for _ in range(5):
        await install(client, admin, "webhook", webhook_config())
        await client.post(f"{API}/apps/{first.json()['id']}/disable", headers=h)
        await client.post(f"{API}/apps/{first.json()['id']}/enable", headers=h)
    assert await cost(f"{API}/apps") == apps_one
    assert await cost(f"{API}/apps/{first.json()['id']}/logs") == logs_one
    assert connectors == await cost(f"{API}/connectors?page_size=100")
    assert apps_one <= 6  # context resolution + count + page
