"""Pure ASGI middleware: request id, access log, metrics by route template, body limit."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Mapping
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from openrisk.core.errors import problem_response
from openrisk.core.logging import request_id_var
from openrisk.core.metrics import HTTP_DURATION, HTTP_IN_PROGRESS, HTTP_REQUESTS, method_label

log = logging.getLogger("openrisk.access")

UNMATCHED_ROUTE = "<unmatched>"
_MAX_REQUEST_ID = 128


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return None


def _route_template(scope: Scope) -> str:
    route: Any = scope.get("route")
    path = getattr(route, "path", None)
    return str(path) if path else UNMATCHED_ROUTE


class RequestContextMiddleware:
    """Assigns the request id, enforces the body limit, records metrics and one access log line."""

    def __init__(
        self, app: ASGIApp, *, max_body_bytes: int, larger: Mapping[str, int] | None = None
    ) -> None:
        """``larger``: paths that take bigger bodies (file uploads), with their limit."""
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.larger = dict(larger or {})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = _header(scope, b"x-request-id")
        request_id = incoming if incoming and len(incoming) <= _MAX_REQUEST_ID else uuid.uuid4().hex
        token = request_id_var.set(request_id)
        status = 500
        started = time.perf_counter()
        HTTP_IN_PROGRESS.inc()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", request_id.encode())]
            await send(message)

        limit = self.larger.get(scope["path"], self.max_body_bytes)
        try:
            body_receive: Receive | None = receive
            if _header(scope, b"content-length") is None and scope["method"] in _BODY_METHODS:
                body_receive = await self._buffered(receive, limit)  # chunked: measured first
            if body_receive is None or self._too_large(scope, limit):
                response = problem_response(413, f"The request body exceeds {limit} bytes.")
                await response(scope, _no_body, send_with_id)
            else:
                await self.app(scope, body_receive, send_with_id)
        finally:
            HTTP_IN_PROGRESS.dec()
            elapsed = time.perf_counter() - started
            route = _route_template(scope)
            method = scope["method"]
            method_value = method_label(method)
            HTTP_REQUESTS.labels(method=method_value, route=route, status=str(status)).inc()
            HTTP_DURATION.labels(method=method_value, route=route).observe(elapsed)
            log.info(
                "request",
                extra={
                    "method": method,
                    "path": scope["path"],
                    "route": route,
                    "status": status,
                    "duration_ms": round(elapsed * 1000, 2),
                },
            )
            request_id_var.reset(token)

    def _too_large(self, scope: Scope, limit: int) -> bool:
        length = _header(scope, b"content-length")
        return bool(length and length.isdigit() and int(length) > limit)

    async def _buffered(self, receive: Receive, limit: int) -> Receive | None:
        """A body sent without Content-Length, read whole up to the limit (None: over it).

        With a Content-Length the server delivers no more than announced, and ``_too_large``
        refuses an announced size over the limit before anything is read.
        """
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                return _replay([], final=message, downstream=receive)
            body = message.get("body", b"")
            size += len(body)
            if size > limit:
                return None
            chunks.append(body)
            if not message.get("more_body", False):
                return _replay(chunks, final=None, downstream=receive)


_BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


async def _no_body() -> Message:
    return {"type": "http.disconnect"}


def _replay(chunks: list[bytes], *, final: Message | None, downstream: Receive) -> Receive:
    """A receive that hands out the buffered body once, then waits on the client as before."""
    pending: Message | None = final or {
        "type": "http.request",
        "body": b"".join(chunks),
        "more_body": False,
    }

    async def receive() -> Message:
        nonlocal pending
        if pending is not None:
            message, pending = pending, None
            return message
        return await downstream()

    return receive
