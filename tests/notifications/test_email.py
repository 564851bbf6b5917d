"""E-mail notifications end to end against a real SMTP server (aiosmtpd), on SQLite and
PostgreSQL: reminders are mailed once per reason, invitations carry their link, a relay that
refuses or is away is handled."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from pydantic import ValidationError
from sqlalchemy import delete, select, update

from openrisk.config import Settings
from openrisk.core.db.engine import Database
from openrisk.core.outbox import OutboxRow
from openrisk.methodology.models import RiskAcceptance
from openrisk.notifications.models import Notification
from openrisk.notifications.reminders import scan
from openrisk.notifications.service import SEND_TOPIC, send_batch
from openrisk.notifications.smtp import SmtpTarget, TemporaryFailure
from openrisk.risks.models import Risk
from tests.api.test_risks_helpers import new_risk
from tests.conftest import Account, make_settings
from tests.notifications.conftest import Mailbox, body_html, body_text, free_port

MEMBERS = "/api/v1/members"


def mail_settings(app: FastAPI, mailbox: Mailbox, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "smtp_url": mailbox.url,
        "smtp_from": "OpenRisk <risk@example.com>",
        "public_url": "https://risk.example.com/",
        **overrides,
    }
    return make_settings(app.state.settings.database_url, **values)


async def _mitigation(
    client: httpx.AsyncClient, account: Account, risk_id: str, **fields: object
) -> dict[str, Any]:
    response = await client.post(
        f"/api/v1/risks/{risk_id}/mitigations",
        json={"title": f"M {uuid.uuid4().hex[:6]}", **fields},
        headers=account.in_tenant(),
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


async def pending_batches(database: Database, tenant_id: str) -> list[uuid.UUID]:
    """The e-mails queued for the tenant and not sent yet (the ``email.send`` jobs' ids);
    their outbox rows are taken away, as the relay would."""
    tenant = uuid.UUID(tenant_id)
    async with database.sessions() as session:
        batches = set(
            await session.scalars(
                select(Notification.batch_id).where(
                    Notification.tenant_id == tenant, Notification.status == "pending"
                )
            )
        )
        await session.execute(
            delete(OutboxRow).where(OutboxRow.tenant_id == tenant, OutboxRow.topic == SEND_TOPIC)
        )
        await session.commit()
    return sorted(batches, key=str)


async def send_all(database: Database, settings: Settings, tenant_id: str) -> int:
    sent = 0
    for batch in await pending_batches(database, tenant_id):
        result = await send_batch(
            database=database, settings=settings, batch_id=batch, now=lambda: datetime.now(UTC)
        )
        sent += result.sent
    return sent


async def test_reminders_are_mailed_once_per_reason(
    app: FastAPI, client: httpx.AsyncClient, admin: Account, mailbox: Mailbox
) -> None:
    database: Database = app.state.db
    settings = mail_settings(app, mailbox)
    today = datetime.now(UTC).date()
    risk = await new_risk(client, admin, title="Payroll <fraud>", owner_id=admin.user_id)
    soon = await _mitigation(
        client,
        admin,
        risk["id"],
        title="Dual approval",
        assignee_id=admin.user_id,
        due_date=(today + timedelta(days=3)).isoformat(),
    )
    await _mitigation(
        client, admin, risk["id"], title="Later", due_date=(today + timedelta(days=60)).isoformat()
    )
    await _mitigation(
        client, admin, risk["id"], title="Done already", status="DONE", due_date=today.isoformat()
    )
    async with database.sessions() as session:
        await session.execute(
            update(Risk)
            .where(Risk.id == uuid.UUID(risk["id"]))
            .values(next_review_date=today - timedelta(days=1))
        )
        session.add(
            RiskAcceptance(
                tenant_id=uuid.UUID(admin.tenant_id),
                risk_id=uuid.UUID(risk["id"]),
                status="approved",
                justification="cheaper than the fix",
                expires_on=today + timedelta(days=10),
                requested_by=uuid.UUID(admin.user_id),
                decided_by=uuid.UUID(admin.user_id),
            )
        )
        await session.commit()
    tenants = [uuid.UUID(admin.tenant_id)]

    first = await scan(
        database=database, settings=settings, today=today, now=datetime.now(UTC), tenant_ids=tenants
    )
    assert (first.reasons, first.emails) == (3, 1)  # one digest for the one recipient
    assert await send_all(database, settings, admin.tenant_id) == 3
    [message] = mailbox.to(admin.email)
    assert message["From"] == "OpenRisk <risk@example.com>"
    assert message["Subject"].startswith("OpenRisk: 3 reminders")
    text = body_text(message)
    assert "Mitigation “Dual approval” of risk “Payroll <fraud>” is due on" in text
    assert "was due for review on" in text
    assert "expires on" in text
    assert f"https://risk.example.com/risks/{risk['id']}" in text
    assert "Later" not in text and "Done already" not in text
    assert "Payroll &lt;fraud&gt;" in body_html(message)

    # the same day again, from any worker: nothing new to tell
    again = await scan(
        database=database, settings=settings, today=today, now=datetime.now(UTC), tenant_ids=tenants
    )
    assert again.emails == 0
    assert await send_all(database, settings, admin.tenant_id) == 0
    assert len(mailbox.to(admin.email)) == 1

    # four days later the mitigation is overdue: a new reason, told alone
    later = await scan(
        database=database,
        settings=settings,
        today=today + timedelta(days=4),
        now=datetime.now(UTC),
        tenant_ids=tenants,
    )
    assert later.emails == 1
    assert await send_all(database, settings, admin.tenant_id) == 1
    overdue = mailbox.to(admin.email)[1]
    assert overdue["Subject"] == "Mitigation “Dual approval” is overdue"
    assert soon["title"] in body_text(overdue)


async def test_expired_acceptance_ends_and_is_announced(
    app: FastAPI, client: httpx.AsyncClient, admin: Account, mailbox: Mailbox
) -> None:
    database: Database = app.state.db
    settings = mail_settings(app, mailbox)
    today = datetime.now(UTC).date()
    risk = await new_risk(client, admin, owner_id=admin.user_id)
    async with database.sessions() as session:
        await session.execute(
            update(Risk)
            .where(Risk.id == uuid.UUID(risk["id"]))
            .values(status="ACCEPTED", next_review_date=today + timedelta(days=300))
        )
        acceptance = RiskAcceptance(
            tenant_id=uuid.UUID(admin.tenant_id),
            risk_id=uuid.UUID(risk["id"]),
            status="approved",
            justification="for a quarter",
            expires_on=today - timedelta(days=1),
            requested_by=uuid.UUID(admin.user_id),
            decided_by=uuid.UUID(admin.user_id),
        )
        session.add(acceptance)
        await session.commit()

    result = await scan(
        database=database,
        settings=settings,
        today=today,
        now=datetime.now(UTC),
        tenant_ids=[uuid.UUID(admin.tenant_id)],
    )
    assert (result.expired, result.emails) == (1, 1)
    await send_all(database, settings, admin.tenant_id)
    [message] = mailbox.to(admin.email)
    assert "has expired" in message["Subject"]
    assert "the risk is active again" in body_text(message)
    shown = await client.get(f"/api/v1/risks/{risk['id']}", headers=admin.in_tenant())
    assert shown.json()["status"] == "ACTIVE"


async def test_invitation_link_is_mailed_and_not_kept(
    app: FastAPI, client: httpx.AsyncClient, admin: Account, mailbox: Mailbox
) -> None:
    database: Database = app.state.db
    settings = mail_settings(app, mailbox)
    app.state.settings = settings  # this application now has e-mail configured
    try:
        roles = await client.get("/api/v1/roles", headers=admin.in_tenant())
        analyst = next(r for r in roles.json()["items"] if r["name"] == "Analyst")
        invited = f"new-{uuid.uuid4().hex[:8]}@example.com"
        response = await client.post(
            MEMBERS, json={"email": invited, "role_id": analyst["id"]}, headers=admin.in_tenant()
        )
    finally:
        app.state.settings = make_settings(settings.database_url)
    assert response.status_code == 201, response.text
    token = response.json()["invitation_token"]
    async with database.sessions() as session:
        [row] = await session.scalars(
            select(Notification).where(Notification.tenant_id == uuid.UUID(admin.tenant_id))
        )
    assert row.kind == "invitation" and row.recipient == invited
    assert token not in str(row.data)  # sealed while it waits

    assert await send_all(database, settings, admin.tenant_id) == 1
    [message] = mailbox.to(invited)
    assert message["Subject"].startswith("You are invited to Acme")
    assert f"https://risk.example.com/invitations/{token}" in body_text(message)
    assert message["Message-ID"] == f"<{row.batch_id}@openrisk.notifications>"
    async with database.sessions() as session:
        sent = await session.get(Notification, row.id)
    assert sent is not None and sent.status == "sent" and "sealed" not in sent.data


async def test_refused_and_unreachable_relays(
    app: FastAPI, client: httpx.AsyncClient, admin: Account, mailbox: Mailbox
) -> None:
    database: Database = app.state.db
    today = datetime.now(UTC).date()
    risk = await new_risk(client, admin, owner_id=admin.user_id)
    async with database.sessions() as session:
        await session.execute(
            update(Risk).where(Risk.id == uuid.UUID(risk["id"])).values(next_review_date=today)
        )
        await session.commit()
    settings = mail_settings(app, mailbox)
    await scan(
        database=database,
        settings=settings,
        today=today,
        now=datetime.now(UTC),
        tenant_ids=[uuid.UUID(admin.tenant_id)],
    )
    [batch] = await pending_batches(database, admin.tenant_id)

    # nobody listens: a temporary failure, counted, for the job engine to retry
    away = mail_settings(app, mailbox, smtp_url=f"smtp://127.0.0.1:{free_port()}")
    with pytest.raises(TemporaryFailure):
        await send_batch(
            database=database, settings=away, batch_id=batch, now=lambda: datetime.now(UTC)
        )
    # the relay refuses the recipient for good: failed, not retried
    mailbox.refuse = "550 5.1.1 no such mailbox"
    refused = await send_batch(
        database=database, settings=settings, batch_id=batch, now=lambda: datetime.now(UTC)
    )
    assert refused.failed and refused.sent == 0
    async with database.sessions() as session:
        [row] = await session.scalars(select(Notification).where(Notification.batch_id == batch))
    assert (row.status, row.attempts) == ("failed", 2)
    assert row.last_error is not None and "550" in row.last_error
    assert mailbox.messages == []


async def test_credentials_reach_the_relay(mailbox: Mailbox) -> None:
    from email.message import EmailMessage

    from openrisk.notifications.smtp import send_message

    target = SmtpTarget.parse(f"smtp://ops%40example.com:p%3Ass@127.0.0.1:{mailbox.port}")
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = "a@example.com", "b@example.com", "hi"
    message.set_content("hello")
    await send_message(target, message, timeout_s=5)
    assert mailbox.logins == [("ops@example.com", "p:ss")]
    assert "p:ss" not in repr(target)


def test_smtp_url_rules() -> None:
    secure = SmtpTarget.parse("smtps://mail.example.com")
    assert (secure.port, secure.use_tls, secure.start_tls) == (465, True, False)
    plain = SmtpTarget.parse("smtp://mail.example.com:587?starttls=required")
    assert (plain.port, plain.use_tls, plain.start_tls) == (587, False, True)
    assert SmtpTarget.parse("smtp://mail.example.com").start_tls is None  # when offered
    for bad in ("http://mail.example.com", "smtp://", "smtp://h?starttls=maybe"):
        with pytest.raises(ValidationError) as caught:
            Settings(smtp_url=bad)
        assert caught.value.errors()[0]["loc"] == ("smtp_url",)
