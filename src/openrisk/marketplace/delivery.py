"""Outbound HTTP delivery for connectors: SSRF re-check, HMAC signing, one attempt at a time.

``send`` makes one attempt and logs it (an AppLog, action ``deliver`` or ``ping``, in its own
short transaction, so the log tells what happened even when the process dies mid-way). A
retryable failure before the last attempt says when to try again
(``DeliveryPolicy.wait_after``: tenacity's exponential wait with jitter); the delivery job
(``marketplace/tasks.py``) is then scheduled again by the job engine for that time, so a retry
waiting for its turn lives in the database, not in a process's memory. Log entries hold the
status code, timing and error class only: never headers, bodies or secrets.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import logging
import ssl
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import tenacity

from openrisk import __version__
from openrisk.core.jobs.retry import wait_seconds
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

    def wait_after(self, attempt: int) -> float:
        """How long to wait after failed attempt ``attempt`` (1, 2, ...): ``backoff_s`` doubled
        each time, at most ``MAX_BACKOFF_S``, plus a random jitter of up to a tenth of
        ``backoff_s`` (tenacity's wait strategies)."""
        wait = tenacity.wait_exponential(
            multiplier=self.backoff_s, max=MAX_BACKOFF_S
        ) + tenacity.wait_random(0, self.backoff_s / 10)
        return wait_seconds(wait, attempt)


@functools.cache
def _tls() -> ssl.SSLContext:
    """The TLS context of every delivery, built once: building one loads the CA bundle, about
    30 ms of CPU, which had been most of a delivery's cost."""
    return httpx.create_ssl_context()


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
            verify=_tls(),
        ) as client,
        client.stream("POST", url, content=body, headers=headers, extensions=extensions) as answer,
    ):
        return answer.status_code


async def send(
    outgoing: Outgoing,
    *,
    policy: DeliveryPolicy,
    record: AttemptLogger,
    number: int = 1,
    max_attempts: int = 1,
) -> Attempt:
    """Attempt ``number`` of ``max_attempts``, logged. ``success`` on a 2xx; ``retry`` (with
    ``data["next_retry_in_s"]``) on a 5xx, 408/425/429, a timeout or a connection error before
    the last attempt; ``failure`` otherwise (a refused URL, another 4xx, the last attempt)."""
    data: dict[str, Any] = {
        "event_type": outgoing.event_type,
        "delivery_id": str(outgoing.delivery_id),
        "attempt": number,
        "max_attempts": max_attempts,
    }
    try:
        target = await check_url(outgoing.url, allow_private=policy.allow_private)
    except UnsafeURL as error:
        return await _logged(record, Attempt(number, "failure", f"refused: the URL {error}", data))
    started = time.perf_counter()
    retryable = True
    try:
        code = await _post(policy, target, outgoing.body, outgoing.headers_for(int(time.time())))
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
            return await _logged(
                record, Attempt(number, "success", f"delivered: HTTP {code}", data)
            )
        retryable = code >= 500 or code in RETRYABLE_STATUS
        detail = f"HTTP {code}"
    data["duration_ms"] = round((time.perf_counter() - started) * 1000, 1)
    if not retryable or number >= max_attempts:
        return await _logged(record, Attempt(number, "failure", f"failed: {detail}", data))
    delay = policy.wait_after(number)
    data["next_retry_in_s"] = round(delay, 3)
    return await _logged(
        record, Attempt(number, "retry", f"{detail}; retrying in {delay:.2f}s", data)
    )


async def _logged(record: AttemptLogger, attempt: Attempt) -> Attempt:
    await record(attempt)
    return attempt


async def deliver(outgoing: Outgoing, *, policy: DeliveryPolicy, record: AttemptLogger) -> bool:
    """One attempt, no retry (a sync's ping or test message); True on a 2xx."""
    return (await send(outgoing, policy=policy, record=record)).status == "success"
