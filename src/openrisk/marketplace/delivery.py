"""Outbound HTTP delivery for connectors: SSRF re-check, HMAC signing, retries with backoff.

Every attempt is written as an AppLog (action ``deliver`` or ``ping``) in its own short
transaction, so the log tells what happened even when the process dies mid-way. Log entries hold
the status code, timing and error class only: never headers, bodies or secrets.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import random
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from openrisk import __version__
from openrisk.marketplace.netguard import CheckedTarget, UnsafeURL, check_url

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-OpenRisk-Signature"
TIMESTAMP_HEADER = "X-OpenRisk-Timestamp"
EVENT_HEADER = "X-OpenRisk-Event"
DELIVERY_HEADER = "X-OpenRisk-Delivery"
USER_AGENT = f"OpenRisk-Webhook/{__version__}"
RETRYABLE_STATUS = frozenset({408, 425, 429})
MAX_BACKOFF_S = 300.0


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """``sha256=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>`` (docs/webhooks.md)."""
    message = str(timestamp).encode() + b"." + body
    return "sha256=" + hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class Outgoing:
    """One message for one app. ``signing_secret`` set → signed headers on every attempt."""

    url: str
    body: bytes
    event_type: str
    delivery_id: uuid.UUID = field(default_factory=uuid.uuid4)
    headers: dict[str, str] = field(default_factory=dict)
    signing_secret: str | None = None

    def headers_for(self, timestamp: int) -> dict[str, str]:
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            EVENT_HEADER: self.event_type,
            DELIVERY_HEADER: str(self.delivery_id),
            **self.headers,
        }
        if self.signing_secret is not None:
            headers[TIMESTAMP_HEADER] = str(timestamp)
            headers[SIGNATURE_HEADER] = sign(self.signing_secret, timestamp, self.body)
        return headers


@dataclass(frozen=True)
class Attempt:
    """The outcome of one attempt, as logged."""

    number: int
    status: str  # success | retry | failure
    detail: str
    data: dict[str, Any]


AttemptLogger = Callable[[Attempt], Awaitable[None]]


@dataclass(frozen=True)
class DeliveryPolicy:
    allow_private: bool
    timeout_s: float
    max_attempts: int
    backoff_s: float
    transport: httpx.AsyncBaseTransport | None = None  # tests inject a mock transport

    def delay(self, attempt: int) -> float:
        """Exponential backoff before attempt ``attempt + 1``, with up to 10 % jitter."""
        base: float = min(self.backoff_s * (2 ** (attempt - 1)), MAX_BACKOFF_S)
        return base * (1 + random.random() / 10)


async def _post(
    policy: DeliveryPolicy, target: CheckedTarget, body: bytes, headers: dict[str, str]
) -> int:
    """POST to the checked address (pinned, no redirects, proxies ignored); the status code."""
    url = httpx.URL(target.url)
    extensions: dict[str, Any] = {}
    if target.addresses:
        # connect to the address that passed the check, not to a fresh DNS answer
        headers = {**headers, "Host": url.netloc.decode("ascii")}
        url = url.copy_with(host=target.addresses[0])
        if target.scheme == "https":
            extensions["sni_hostname"] = target.host
    async with (
        httpx.AsyncClient(
            timeout=httpx.Timeout(policy.timeout_s),
            follow_redirects=False,
            trust_env=False,
            transport=policy.transport,
        ) as client,
        client.stream("POST", url, content=body, headers=headers, extensions=extensions) as answer,
    ):
        return answer.status_code


async def deliver(
    outgoing: Outgoing,
    *,
    policy: DeliveryPolicy,
    record: AttemptLogger,
    max_attempts: int | None = None,
) -> bool:
    """Deliver with retries (5xx, 408/425/429, timeouts, connection errors); True on a 2xx."""
    attempts = max_attempts or policy.max_attempts
    for number in range(1, attempts + 1):
        data: dict[str, Any] = {
            "event_type": outgoing.event_type,
            "delivery_id": str(outgoing.delivery_id),
            "attempt": number,
            "max_attempts": attempts,
        }
        try:
            target = await check_url(outgoing.url, allow_private=policy.allow_private)
        except UnsafeURL as error:
            await record(Attempt(number, "failure", f"refused: the URL {error}", data))
            return False
        started = time.perf_counter()
        retryable = True
        try:
            code = await _post(
                policy, target, outgoing.body, outgoing.headers_for(int(time.time()))
            )
        except httpx.TimeoutException:
            detail = f"timed out after {policy.timeout_s:g}s"
        except httpx.HTTPError as error:
            detail = f"connection failed ({type(error).__name__})"
        except Exception as error:  # never let a message (which may quote the URL) escape
            detail, retryable = f"request failed ({type(error).__name__})", False
        else:
            data["status_code"] = code
            if 200 <= code < 300:
                data["duration_ms"] = round((time.perf_counter() - started) * 1000, 1)
                await record(Attempt(number, "success", f"delivered: HTTP {code}", data))
                return True
            retryable = code >= 500 or code in RETRYABLE_STATUS
            detail = f"HTTP {code}"
        data["duration_ms"] = round((time.perf_counter() - started) * 1000, 1)
        if not retryable or number == attempts:
            await record(Attempt(number, "failure", f"failed: {detail}", data))
            return False
        delay = policy.delay(number)
        data["next_retry_in_s"] = round(delay, 3)
        await record(Attempt(number, "retry", f"{detail}; retrying in {delay:.2f}s", data))
        await asyncio.sleep(delay)
    return False  # pragma: no cover - the loop always returns
