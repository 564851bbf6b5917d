"""What the e-mails say: one message per batch, plain text with a simple HTML alternative.

One reason gets a message of its own (its subject names it); several reasons of one recipient
found together (a morning's reminders) are listed in one message. Every value shown comes from
the notification rows (titles, dates, names), escaped in the HTML part; links start with
``OPENRISK_PUBLIC_URL``.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate
from typing import Any, Protocol

from openrisk.config import Settings


class Row(Protocol):
    kind: str
    recipient: str
    data: dict[str, Any]


@dataclass(frozen=True)
class Line:
    subject: str  # the message's subject when it is alone
    text: str  # one sentence
    link: str


def _title(data: Mapping[str, Any], key: str = "risk_title") -> str:
    return f"“{data.get(key) or 'untitled'}”"


def line(row: Row, secrets: Mapping[str, Any], *, base_url: str) -> Line:
    data, kind = row.data, row.kind
    risk_link = f"{base_url}/risks/{data.get('risk_id')}"
    if kind == "invitation":
        tenant = data.get("tenant_name") or "a tenant"
        inviter = data.get("invited_by") or "A member"
        return Line(
            subject=f"You are invited to {tenant} on OpenRisk",
            text=(
                f"{inviter} invited you to join {tenant} on OpenRisk as {data.get('role')}. "
                f"Open the link to choose your password; it works once, until "
                f"{data.get('expires_on')}."
            ),
            link=f"{base_url}/invitations/{secrets.get('token', '')}",
        )
    if kind == "mitigation.due_soon":
        return Line(
            subject=f"Mitigation {_title(data, 'title')} is due on {data.get('due_date')}",
            text=(
                f"Mitigation {_title(data, 'title')} of risk {_title(data)} is due on "
                f"{data.get('due_date')}."
            ),
            link=risk_link,
        )
    if kind == "mitigation.overdue":
        return Line(
            subject=f"Mitigation {_title(data, 'title')} is overdue",
            text=(
                f"Mitigation {_title(data, 'title')} of risk {_title(data)} was due on "
                f"{data.get('due_date')} and is not done."
            ),
            link=risk_link,
        )
    if kind == "review.due_soon":
        return Line(
            subject=f"Risk {_title(data)} is due for review on {data.get('review_date')}",
            text=f"Risk {_title(data)} is due for review on {data.get('review_date')}.",
            link=risk_link,
        )
    if kind == "review.overdue":
        return Line(
            subject=f"The review of risk {_title(data)} is overdue",
            text=(
                f"Risk {_title(data)} was due for review on {data.get('review_date')} and "
                "has not been reviewed."
            ),
            link=risk_link,
        )
    if kind == "acceptance.expiring":
        return Line(
            subject=f"The acceptance of risk {_title(data)} expires on {data.get('expires_on')}",
            text=(
                f"The acceptance of risk {_title(data)} expires on {data.get('expires_on')}: "
                "renew it with a new request, or treat the risk."
            ),
            link=risk_link,
        )
    if kind == "acceptance.expired":
        return Line(
            subject=f"The acceptance of risk {_title(data)} has expired",
            text=(
                f"The acceptance of risk {_title(data)} expired on {data.get('expires_on')}: "
                "the risk is active again."
            ),
            link=risk_link,
        )
    return Line(subject="OpenRisk notification", text=kind, link=base_url)


def render(
    rows: Sequence[Row],
    secrets: Sequence[Mapping[str, Any]],
    *,
    settings: Settings,
    message_id: str,
) -> EmailMessage:
    lines = [line(r, s, base_url=settings.public_url) for r, s in zip(rows, secrets, strict=True)]
    tenant = rows[0].data.get("tenant_name")
    if len(lines) == 1:
        subject = lines[0].subject
    else:
        subject = f"OpenRisk: {len(lines)} reminders" + (f" for {tenant}" if tenant else "")
    intro = "Hello," if len(lines) == 1 else "Hello, here is what needs your attention:"
    footer = (
        "You receive this e-mail because of your role in OpenRisk"
        + (f" ({tenant})" if tenant else "")
        + "."
    )
    text = [intro, ""]
    for item in lines:
        text += [f"- {item.text}" if len(lines) > 1 else item.text, f"  {item.link}", ""]
    text += ["-- ", footer]
    items = "".join(
        f'<li><p>{html.escape(item.text)}<br><a href="{html.escape(item.link)}">'
        f"{html.escape(item.link)}</a></p></li>"
        for item in lines
    )
    body = (
        '<!doctype html><html><body style="font-family:sans-serif;line-height:1.4">'
        f"<p>{html.escape(intro)}</p><ul>{items}</ul>"
        f'<p style="color:#666;font-size:90%">{html.escape(footer)}</p></body></html>'
    )
    message = EmailMessage()
    message["From"] = settings.smtp_from
    message["To"] = rows[0].recipient
    message["Subject"] = subject
    message["Date"] = formatdate(localtime=False, usegmt=True)
    message["Message-ID"] = message_id
    message["Auto-Submitted"] = "auto-generated"
    message.set_content("\n".join(text))
    message.add_alternative(body, subtype="html")
    return message
