"""Webhook delivery end to end against a local HTTP receiver."""

from __future__ import annotations

import json
import logging
import re
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from fastapi import FastAPI

from openrisk.app import create_app
from openrisk.core.db.migrate import upgrade
from openrisk.core.events import DomainEvent
from openrisk.core.uow import UnitOfWork
from openrisk.marketplace import netguard
from tests.conftest import (
    Account,
    client_for,
    create_pg_database,
    drop_pg_database,
    make_settings,
    register,
)
from tests.receivers import serve_posts
from tests.web.helpers import sign_in

API = "/api/v1/marketplace"
SECRET = "receiver-shared-secret-42"
DOCS = Path(__file__).resolve().parents[2] / "docs" / "webhooks.md"


def documented_verify() -> Callable[..., bool]:
    """The ``verify`` function exactly as docs/webhooks.md shows it to receivers."""
    text = DOCS.read_text()
    block = next(b for b in re.findall(r"```python\n(.*?)```", text, re.S) if "def verify" in b)
    namespace: dict[str, Any] = {}
    exec(block, namespace)
    verify: Callable[..., bool] = namespace["verify"]
    return verify


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Receiver:
    """A tiny HTTP server on 127.0.0.1 answering with scripted status codes (then 200)."""

    url: str = ""
    requests: list[Received] = field(default_factory=list)
    script: list[int] = field(default_factory=list)

    def answer(self, path: str, headers: dict[str, str], body: bytes) -> int:
        self.requests.append(Received(path, headers, body))
        return self.script.pop(0) if self.script else 200


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    rec = Receiver()
    with serve_posts(rec.answer) as rec.url:
        yield rec


@pytest.fixture(scope="module")
def hook_database(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A database of the webhook tests' own. On the shared one, another app of this test
    process (the session's, with its own relay and worker, not allowed to deliver to
    loopback) could take an event these tests wrote and deliver it itself, so the receiver
    here saw nothing (it happened once in a full run)."""
    if database_url.startswith("sqlite"):
        url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('hooks') / 'hooks.db'}"
        upgrade(url)
        yield url
        return
    url = create_pg_database()
    upgrade(url)
    yield url
    drop_pg_database(url)


@pytest_asyncio.fixture(scope="module")
async def hook_app(hook_database: str) -> AsyncIterator[FastAPI]:
    """An app allowed to deliver to loopback, with tiny backoff delays."""
    settings = make_settings(
        hook_database,
        webhook_allow_private=True,
        webhook_backoff_s=0.01,
        webhook_max_attempts=3,
        webhook_timeout_s=2,
        jobs_poll_s=0.05,  # an in-process worker notices a retry that fell due at once
    )
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        yield application


@pytest_asyncio.fixture
async def hook_client(hook_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(hook_app) as http:
        yield http


async def install_webhook(
    http: httpx.AsyncClient, account: Account, url: str, **config: Any
) -> dict[str, Any]:
    response = await http.post(
        f"{API}/apps",
        json={
            "connector_id": "webhook",
            "configuration": {"url": url, "secret": SECRET, **config},
        },
        headers=account.in_tenant(),
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def publish_risk_event(
    app: FastAPI, account: Account, kind: str = "created", **data: Any
) -> DomainEvent:
    """What the register writes with a risk change (an outbox event), then every job it
    causes run to the end."""
    event = DomainEvent(
        type=f"risk.{kind}",
        tenant_id=uuid.UUID(account.tenant_id),
        resource_id=uuid.uuid4(),
        data={"title": "Ransomware on file servers", "score": 20.0, "severity": "CRITICAL", **data},
        actor_id=uuid.UUID(account.user_id),
    )
    async with app.state.db.session() as session:
        uow = UnitOfWork.for_app(app.state, session)
        uow.emit(event)
        await uow.commit()
    await app.state.jobs.drain()
    return event


async def logs(http: httpx.AsyncClient, account: Account, app_id: str) -> list[dict[str, Any]]:
    response = await http.get(
        f"{API}/apps/{app_id}/logs?action=deliver&page_size=100", headers=account.in_tenant()
    )
    assert response.status_code == 200
    items: list[dict[str, Any]] = response.json()["items"]
    return list(reversed(items))  # oldest first


async def test_a_risk_event_is_delivered_signed(
    hook_app: FastAPI,
    hook_client: httpx.AsyncClient,
    receiver: Receiver,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    account = await register(hook_client)
    installed = await install_webhook(hook_client, account, receiver.url)
    event = await publish_risk_event(hook_app, account)

    [request] = receiver.requests
    headers = {k.lower(): v for k, v in request.headers.items()}
    assert headers["content-type"] == "application/json"
    assert headers["x-openrisk-event"] == "risk.created"
    assert headers["x-openrisk-signature"].startswith("sha256=")
    verify = documented_verify()
    assert verify(
        SECRET, request.body, headers["x-openrisk-timestamp"], headers["x-openrisk-signature"]
    )
    # any change to body, timestamp or secret breaks the signature
    assert not verify(
        SECRET,
        request.body + b" ",
        headers["x-openrisk-timestamp"],
        headers["x-openrisk-signature"],
    )
    assert not verify(
        "another-secret-entirely",
        request.body,
        headers["x-openrisk-timestamp"],
        headers["x-openrisk-signature"],
    )
    assert not verify(
        SECRET,
        request.body,
        str(int(headers["x-openrisk-timestamp"]) - 1),
        headers["x-openrisk-signature"],
    )
    payload = request.json()
    assert payload["id"] == str(event.id)
    assert payload["type"] == "risk.created"
    assert payload["tenant_id"] == account.tenant_id
    assert payload["resource_type"] == "risk"
    assert payload["resource_id"] == str(event.resource_id)
    assert payload["data"]["title"] == "Ransomware on file servers"

    [entry] = await logs(hook_client, account, installed["id"])
    assert entry["status"] == "success"
    assert entry["data"]["status_code"] == 200
    assert entry["data"]["delivery_id"] == headers["x-openrisk-delivery"]
    assert SECRET not in json.dumps(entry)
    assert caplog.records
    assert all(SECRET not in str(r.__dict__) for r in caplog.records)


async def test_a_500_is_retried_with_backoff_then_succeeds(
    hook_app: FastAPI, hook_client: httpx.AsyncClient, receiver: Receiver
) -> None:
    account = await register(hook_client)
    installed = await install_webhook(hook_client, account, receiver.url)
    receiver.script = [500, 503]
    await publish_risk_event(hook_app, account, "updated")

    assert len(receiver.requests) == 3
    delivery_ids = {r.headers["X-OpenRisk-Delivery"] for r in receiver.requests}
    assert len(delivery_ids) == 1  # one delivery, three attempts
    verify = documented_verify()
    for request in receiver.requests:  # each attempt is signed
        assert verify(
            SECRET,
            request.body,
            request.headers["X-OpenRisk-Timestamp"],
            request.headers["X-OpenRisk-Signature"],
        )
    entries = await logs(hook_client, account, installed["id"])
    assert [(e["status"], e["data"]["attempt"]) for e in entries] == [
        ("retry", 1),
        ("retry", 2),
        ("success", 3),
    ]
    assert [e["data"].get("status_code") for e in entries] == [500, 503, 200]
    first, second = entries[0]["data"]["next_retry_in_s"], entries[1]["data"]["next_retry_in_s"]
    assert 0.01 <= first <= 0.011 and 0.02 <= second <= 0.022  # exponential
    app_now = await hook_client.get(f"{API}/apps/{installed['id']}", headers=account.in_tenant())
    assert app_now.json()["status"] == "installed"


async def test_exhausted_retries_mark_the_app_in_error_until_a_success(
    hook_app: FastAPI, hook_client: httpx.AsyncClient, receiver: Receiver
) -> None:
    account = await register(hook_client)
    installed = await install_webhook(hook_client, account, receiver.url)
    receiver.script = [500, 500, 500]
    await publish_risk_event(hook_app, account)
    assert len(receiver.requests) == 3
    entries = await logs(hook_client, account, installed["id"])
    assert [e["status"] for e in entries] == ["retry", "retry", "failure"]
    assert entries[-1]["data"]["dead_letter"] is True
    url = f"{API}/apps/{installed['id']}"
    assert (await hook_client.get(url, headers=account.in_tenant())).json()["status"] == "error"

    await publish_risk_event(hook_app, account, "deleted")
    assert len(receiver.requests) == 4
    assert receiver.requests[-1].json()["type"] == "risk.deleted"
    assert (await hook_client.get(url, headers=account.in_tenant())).json()["status"] == (
        "installed"
    )


async def test_a_dead_letter_is_redelivered_with_the_same_delivery_id(
    hook_app: FastAPI, hook_client: httpx.AsyncClient, receiver: Receiver
) -> None:
    account = await register(hook_client)
    installed = await install_webhook(hook_client, account, receiver.url)
    receiver.script = [503, 503, 503]
    await publish_risk_event(hook_app, account)
    [dead] = [
        e for e in await logs(hook_client, account, installed["id"]) if e["status"] == "failure"
    ]
    delivery = dead["data"]["delivery_id"]
    assert dead["data"]["dead_letter"] is True
    assert "body" not in json.dumps(dead) and SECRET not in json.dumps(dead)

    path = f"{API}/apps/{installed['id']}/deliveries/{delivery}/redeliver"
    queued = await hook_client.post(path, headers=account.in_tenant())
    assert queued.status_code == 202, queued.text
    assert queued.json() == {
        "delivery_id": delivery,
        "event_type": "risk.created",
        "status": "queued",
    }
    await hook_app.state.jobs.drain()
    assert [r.headers["X-OpenRisk-Delivery"] for r in receiver.requests] == [delivery] * 4
    assert receiver.requests[-1].body == receiver.requests[0].body  # the same event
    assert (await logs(hook_client, account, installed["id"]))[-1]["status"] == "success"

    again = await hook_client.post(path, headers=account.in_tenant())  # nothing left to send
    assert again.status_code == 404
    assert again.headers["content-type"].startswith("application/problem+json")
    other = await register(hook_client, tenant_name="Elsewhere")
    assert (await hook_client.post(path, headers=other.in_tenant())).status_code == 404


async def test_the_app_page_redelivers_a_dead_letter(
    hook_app: FastAPI, hook_client: httpx.AsyncClient, receiver: Receiver
) -> None:
    account = await register(hook_client)
    installed = await install_webhook(hook_client, account, receiver.url)
    receiver.script = [410]  # not retried: a dead letter at once
    await publish_risk_event(hook_app, account)
    browser = await sign_in(hook_client, account)
    page_path = f"/marketplace/apps/{installed['id']}"
    page = await browser.get(page_path)
    [action] = re.findall(r'action="([^"]*/redeliver)"', page.text)
    assert receiver.requests[0].headers["X-OpenRisk-Delivery"] in action
    assert "(dead letter)" in page.text

    redelivered = await browser.post(action)
    assert redelivered.status_code == 303
    await hook_app.state.jobs.drain()
    page = await browser.get(page_path)
    assert "Redelivery of risk.created queued" in page.text
    assert "/redeliver" not in page.text  # delivered this time: nothing left to redeliver
    assert len(receiver.requests) == 2


async def test_a_4xx_is_not_retried(
    hook_app: FastAPI, hook_client: httpx.AsyncClient, receiver: Receiver
) -> None:
    account = await register(hook_client)
    installed = await install_webhook(hook_client, account, receiver.url)
    receiver.script = [410]
    await publish_risk_event(hook_app, account)
    assert len(receiver.requests) == 1
    [entry] = await logs(hook_client, account, installed["id"])
    assert (entry["status"], entry["data"]["status_code"]) == ("failure", 410)


async def test_unreachable_receiver_is_retried_and_logged(
    hook_app: FastAPI, hook_client: httpx.AsyncClient
) -> None:
    account = await register(hook_client)
    installed = await install_webhook(hook_client, account, "http://127.0.0.1:9/closed")
    await publish_risk_event(hook_app, account)
    entries = await logs(hook_client, account, installed["id"])
    assert [e["status"] for e in entries] == ["retry", "retry", "failure"]
    assert "connection failed" in entries[-1]["detail"]


async def test_disabled_apps_filters_and_other_tenants_receive_nothing(
    hook_app: FastAPI, hook_client: httpx.AsyncClient, receiver: Receiver
) -> None:
    account = await register(hook_client)
    other = await register(hook_client, tenant_name="Bystander")
    disabled = await install_webhook(hook_client, account, receiver.url)
    await hook_client.post(f"{API}/apps/{disabled['id']}/disable", headers=account.in_tenant())
    await install_webhook(hook_client, account, receiver.url, events=["risk.deleted"])
    await install_webhook(hook_client, other, receiver.url)

    await publish_risk_event(hook_app, account, "created")
    assert receiver.requests == []
    await publish_risk_event(hook_app, account, "deleted")
    assert [r.json()["type"] for r in receiver.requests] == ["risk.deleted"]
    assert receiver.requests[0].json()["tenant_id"] == account.tenant_id


async def test_sync_sends_a_signed_ping(
    hook_app: FastAPI, hook_client: httpx.AsyncClient, receiver: Receiver
) -> None:
    account = await register(hook_client)
    installed = await install_webhook(hook_client, account, receiver.url)
    url = f"{API}/apps/{installed['id']}/sync"
    synced = await hook_client.post(url, headers=account.in_tenant())
    assert synced.status_code == 200, synced.text
    assert synced.json()["status"] == "success"
    assert synced.json()["app"]["last_sync_status"] == "success"
    [request] = receiver.requests
    assert request.json()["type"] == "ping"
    assert documented_verify()(
        SECRET,
        request.body,
        request.headers["X-OpenRisk-Timestamp"],
        request.headers["X-OpenRisk-Signature"],
    )

    receiver.script = [500]
    failed = await hook_client.post(url, headers=account.in_tenant())
    assert failed.json()["status"] == "failure"
    assert failed.json()["app"]["status"] == "error"
    assert len(receiver.requests) == 2  # a ping is tried once
    actions = [
        (e["action"], e["status"])
        for e in (
            await hook_client.get(f"{API}/apps/{installed['id']}/logs", headers=account.in_tenant())
        ).json()["items"]
    ]
    assert actions[:4] == [
        ("sync", "failure"),
        ("ping", "failure"),
        ("sync", "success"),
        ("ping", "success"),
    ]


# ------------------------------------------------- the SSRF guard at delivery time (no network)


class Recorder:
    """An httpx mock transport recording what would have been sent."""

    def __init__(self, status: int = 200) -> None:
        self.requests: list[httpx.Request] = []
        self.status = status

    def transport(self) -> httpx.MockTransport:
        def handle(request: httpx.Request) -> httpx.Response:
            self.requests.append(request)
            return httpx.Response(self.status)

        return httpx.MockTransport(handle)


@pytest.fixture
def recorder(app: FastAPI) -> Iterator[Recorder]:
    rec = Recorder()
    app.state.marketplace.transport = rec.transport()
    yield rec
    app.state.marketplace.transport = None


@pytest.fixture
def dns(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[str]]:
    """A fake resolver: host → addresses (change it between calls to simulate rebinding)."""
    table: dict[str, list[str]] = {}

    async def resolve(host: str, port: int) -> list[str]:
        if host not in table:
            raise netguard.UnsafeURL("host does not resolve")
        return list(table[host])

    monkeypatch.setattr(netguard, "resolve", resolve)
    return table


async def test_delivery_rechecks_the_address_and_pins_it(
    app: FastAPI,
    client: httpx.AsyncClient,
    admin: Account,
    recorder: Recorder,
    dns: dict[str, list[str]],
) -> None:
    """With private targets refused (the default), a host that passed at install time but now
    resolves to a private address is refused at delivery; a public one is contacted at the
    address that was checked, with the original Host header and TLS server name."""
    dns["hooks.partner.example"] = ["93.184.215.14"]
    installed = await install_webhook(client, admin, "https://hooks.partner.example:8443/in")
    await publish_risk_event(app, admin)
    [sent] = recorder.requests
    assert sent.url.host == "93.184.215.14"
    assert sent.url.port == 8443
    assert sent.headers["host"] == "hooks.partner.example:8443"
    assert sent.extensions["sni_hostname"] == "hooks.partner.example"

    dns["hooks.partner.example"] = ["93.184.215.14", "10.0.0.8"]  # rebinding to a private one
    await publish_risk_event(app, admin)
    assert len(recorder.requests) == 1  # nothing sent
    entries = await logs(client, admin, installed["id"])
    assert entries[-1]["status"] == "failure"
    assert entries[-1]["detail"].startswith("refused")
    assert entries[-1]["data"]["attempt"] == 1  # refusals are not retried

    unresolvable = await client.post(
        f"{API}/apps",
        json={
            "connector_id": "webhook",
            "configuration": {"url": "https://nowhere.example/x", "secret": SECRET},
        },
        headers=admin.in_tenant(),
    )
    assert unresolvable.status_code == 422
    assert unresolvable.json()["errors"][0]["field"] == "configuration.url"


async def test_slack_posts_risk_events_above_the_severity(
    app: FastAPI,
    client: httpx.AsyncClient,
    admin: Account,
    recorder: Recorder,
    dns: dict[str, list[str]],
) -> None:
    dns["hooks.slack.com"] = ["3.3.3.3"]
    hook = "https://hooks.slack.com/services/T000/B000/XXXXSECRETXXXX"
    created = await client.post(
        f"{API}/apps",
        json={
            "connector_id": "slack",
            "configuration": {"webhook_url": hook, "min_severity": "HIGH"},
        },
        headers=admin.in_tenant(),
    )
    assert created.status_code == 201, created.text
    assert "XXXXSECRETXXXX" not in created.text
    await publish_risk_event(app, admin, severity="LOW", title="Minor")
    assert recorder.requests == []
    await publish_risk_event(app, admin, severity="CRITICAL", title="Major outage")
    [sent] = recorder.requests
    assert sent.url.path == "/services/T000/B000/XXXXSECRETXXXX"
    assert "Major outage" in json.loads(sent.content)["text"]
    assert "X-OpenRisk-Signature" not in sent.headers
    app_logs = (
        await client.get(f"{API}/apps/{created.json()['id']}/logs", headers=admin.in_tenant())
    ).text
    assert "XXXXSECRETXXXX" not in app_logs


async def test_risk_writes_through_the_api_are_delivered(
    hook_app: FastAPI, hook_client: httpx.AsyncClient, receiver: Receiver
) -> None:
    """The register's own writes (create, update, delete, restore) reach the webhook, signed."""
    account = await register(hook_client)
    await install_webhook(hook_client, account, receiver.url)
    h = account.in_tenant()
    created = await hook_client.post(
        "/api/v1/risks", json={"title": "Webhook me", "impact": 4, "probability": 5}, headers=h
    )
    assert created.status_code == 201, created.text
    risk_id = created.json()["id"]
    updated = await hook_client.patch(f"/api/v1/risks/{risk_id}", json={"impact": 2}, headers=h)
    assert updated.status_code == 200, updated.text
    assert (await hook_client.delete(f"/api/v1/risks/{risk_id}", headers=h)).status_code == 204
    restored = await hook_client.post(f"/api/v1/risks/{risk_id}/restore", headers=h)
    assert restored.status_code == 200, restored.text
    await hook_app.state.jobs.drain()

    # deliveries run concurrently: the order of arrival is not guaranteed (see the docs)
    payloads = {r.json()["type"]: r.json() for r in receiver.requests}
    assert sorted(payloads) == ["risk.created", "risk.deleted", "risk.restored", "risk.updated"]
    assert payloads["risk.restored"]["data"]["title"] == "Webhook me"
    assert payloads["risk.restored"]["data"]["version"] == restored.json()["version"]
    assert {p["resource_id"] for p in payloads.values()} == {risk_id}
    assert payloads["risk.created"]["data"]["title"] == "Webhook me"
    assert payloads["risk.created"]["data"]["severity"] == "CRITICAL"
    assert payloads["risk.updated"]["data"]["impact"] == 2
    created_at = payloads["risk.created"]["occurred_at"]
    assert (
        created_at
        < payloads["risk.updated"]["occurred_at"]
        < payloads["risk.deleted"]["occurred_at"]
        < payloads["risk.restored"]["occurred_at"]
    )
    verify = documented_verify()
    for request in receiver.requests:
        assert verify(
            SECRET,
            request.body,
            request.headers["X-OpenRisk-Timestamp"],
            request.headers["X-OpenRisk-Signature"],
        )


async def test_an_import_delivers_each_risk_it_creates_or_updates(
    hook_app: FastAPI, hook_client: httpx.AsyncClient, receiver: Receiver
) -> None:
    """An import's risks reach the webhook one event each, as the API's writes do."""
    account = await register(hook_client)
    await install_webhook(hook_client, account, receiver.url)
    h = account.in_tenant()
    kept = await hook_client.post(
        "/api/v1/risks", json={"title": "Before", "impact": 1, "probability": 1}, headers=h
    )
    await hook_app.state.jobs.drain()
    receiver.requests.clear()
    rows = "\n".join(
        ["id,title,impact,probability", f"{kept.json()['id']},After,2,2"]
        + [f",Imported {n},3,3" for n in range(3)]
    )
    imported = await hook_client.post(
        "/api/v1/risks/import", files={"file": ("r.csv", rows.encode(), "text/csv")}, headers=h
    )
    assert imported.status_code == 200, imported.text
    await hook_app.state.jobs.drain()
    delivered = sorted((r.json()["type"], r.json()["data"]["title"]) for r in receiver.requests)
    assert delivered == [
        ("risk.created", "Imported 0"),
        ("risk.created", "Imported 1"),
        ("risk.created", "Imported 2"),
        ("risk.updated", "After"),
    ]
    updated = next(r.json() for r in receiver.requests if r.json()["type"] == "risk.updated")
    assert updated["data"]["version"] == 2 and updated["data"]["impact"] == 2
    # each event carries the risk as the API then shows it (the import encodes it directly)
    for request in receiver.requests:
        event = request.json()
        shown = await hook_client.get(f"/api/v1/risks/{event['data']['id']}", headers=h)
        assert event["data"] == shown.json()
        assert event["resource_id"] == event["data"]["id"]
        assert event["actor_id"] == account.user_id


async def _import_titles(http: httpx.AsyncClient, account: Account, *titles: str) -> None:
    content = "\n".join(["title,impact,probability", *(f"{t},3,4" for t in titles)]).encode()
    response = await http.post(
        "/api/v1/risks/import",
        files={"file": ("risks.csv", content, "text/csv")},
        headers=account.in_tenant(),
    )
    assert response.status_code == 200, response.text


async def test_an_import_builds_risk_events_only_when_an_app_receives_them(
    monkeypatch: pytest.MonkeyPatch,
    hook_app: FastAPI,
    hook_client: httpx.AsyncClient,
    receiver: Receiver,
) -> None:
    """Without an enabled notifier app nobody would get an import's thousands of events, so
    they are not built, written nor relayed; once an app is installed, every row's is."""
    from openrisk.risks import transfer

    built: list[str] = []
    build = transfer._risk_events

    async def counted(*args: Any) -> list[tuple[str, Any]]:
        events = await build(*args)
        built.extend(topic for topic, _ in events)
        return events

    monkeypatch.setattr(transfer, "_risk_events", counted)
    account = await register(hook_client)
    await _import_titles(hook_client, account, "Quiet one", "Quiet two")
    assert built == []

    installed = await install_webhook(hook_client, account, receiver.url)
    disabled = await hook_client.post(
        f"{API}/apps/{installed['id']}/disable", headers=account.in_tenant()
    )
    assert disabled.status_code == 200, disabled.text
    await _import_titles(hook_client, account, "Still quiet")
    assert built == []

    enabled = await hook_client.post(
        f"{API}/apps/{installed['id']}/enable", headers=account.in_tenant()
    )
    assert enabled.status_code == 200, enabled.text
    await _import_titles(hook_client, account, "Heard one", "Heard two")
    assert built == ["risk.created", "risk.created"]
    await hook_app.state.jobs.drain()
    titles = sorted(r.json()["data"]["title"] for r in receiver.requests)
    assert titles == ["Heard one", "Heard two"]
