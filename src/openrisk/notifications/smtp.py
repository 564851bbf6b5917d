"""Sending one message through the SMTP relay of ``OPENRISK_SMTP_URL`` (aiosmtplib).

``smtp://[user:password@]host[:port]`` speaks plain SMTP on port 25 by default and upgrades
with STARTTLS whenever the relay offers it; ``?starttls=required`` refuses a relay that does
not, ``?starttls=off`` never upgrades. ``smtps://host[:465]`` is TLS from the first byte.
User and password are URL-encoded in the address; neither is ever logged or shown (an error
message names the relay as ``host:port`` only).
"""

from __future__ import annotations

import urllib.parse
from dataclasses import dataclass, field
from email.message import EmailMessage

import aiosmtplib

SCHEMES = {"smtp": 25, "smtps": 465}
STARTTLS = {"auto": None, "required": True, "off": False}


class SmtpUrlInvalid(ValueError):
    """The URL cannot name a relay; ``str()`` says why, without the password."""


class PermanentFailure(Exception):
    """The relay refused the message for good (5xx): retrying cannot help."""


class TemporaryFailure(Exception):
    """The relay is unreachable or answered 4xx: the same message may go through later."""


@dataclass(frozen=True)
class SmtpTarget:
    host: str
    port: int
    use_tls: bool = False
    start_tls: bool | None = None
    username: str | None = None
    password: str | None = field(default=None, repr=False)

    @property
    def where(self) -> str:
        return f"{self.host}:{self.port}"

    @classmethod
    def parse(cls, url: str) -> SmtpTarget:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in SCHEMES:
            raise SmtpUrlInvalid("must start with smtp:// or smtps://")
        if not parts.hostname:
            raise SmtpUrlInvalid("names no host (smtp://host:port)")
        try:
            port = parts.port or SCHEMES[parts.scheme]
        except ValueError as error:
            raise SmtpUrlInvalid("has an invalid port") from error
        options = urllib.parse.parse_qs(parts.query)
        mode = (options.get("starttls") or ["auto"])[0].lower()
        if mode not in STARTTLS:
            raise SmtpUrlInvalid("starttls must be auto, required or off")
        secure = parts.scheme == "smtps"
        return cls(
            host=parts.hostname,
            port=port,
            use_tls=secure,
            start_tls=False if secure else STARTTLS[mode],
            username=urllib.parse.unquote(parts.username) if parts.username else None,
            password=urllib.parse.unquote(parts.password) if parts.password else None,
        )


async def send_message(target: SmtpTarget, message: EmailMessage, *, timeout_s: float) -> None:
    """Hand ``message`` to the relay; ``PermanentFailure`` or ``TemporaryFailure`` otherwise."""
    try:
        await aiosmtplib.send(
            message,
            hostname=target.host,
            port=target.port,
            username=target.username,
            password=target.password,
            use_tls=target.use_tls,
            start_tls=target.start_tls,
            timeout=timeout_s,
        )
    except aiosmtplib.SMTPResponseException as error:
        reason = f"{target.where} answered {error.code}: {error.message[:200]}"
        if 500 <= error.code < 600:
            raise PermanentFailure(reason) from None
        raise TemporaryFailure(reason) from None
    except aiosmtplib.SMTPRecipientsRefused as error:
        first = error.recipients[0] if error.recipients else None
        code = first.code if first is not None else 550
        reason = f"{target.where} refused the recipient ({code}: "
        reason += (first.message[:200] if first is not None else "") + ")"
        if 500 <= code < 600:
            raise PermanentFailure(reason) from None
        raise TemporaryFailure(reason) from None
    except (aiosmtplib.SMTPException, OSError, TimeoutError) as error:
        raise TemporaryFailure(f"{target.where} unreachable: {type(error).__name__}") from None
