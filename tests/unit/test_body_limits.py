"""The body limit: one for every route, a larger one for the paths that take files."""

from __future__ import annotations

import httpx
from starlette.types import Receive, Scope, Send

from openrisk.core.middleware import RequestContextMiddleware


async def _echo_length(scope: Scope, receive: Receive, send: Send) -> None:
    size = 0
    while True:
        message = await receive()
        size += len(message.get("body", b""))
        if not message.get("more_body"):
            break
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": str(size).encode()})


async def test_an_import_may_send_a_larger_body_than_other_routes() -> None:
    app = RequestContextMiddleware(
        _echo_length, max_body_bytes=1024, larger={"/api/v1/risks/import": 8192}
    )
    body = b"x" * 4096
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://test"
    ) as client:
        imported = await client.post("/api/v1/risks/import", content=body)
        assert (imported.status_code, imported.text) == (200, "4096")
        elsewhere = await client.post("/api/v1/risks", content=body)
        assert elsewhere.status_code == 413
        assert "1024 bytes" in elsewhere.json()["detail"]
        too_big = await client.post("/api/v1/risks/import", content=body * 3)
        assert too_big.status_code == 413
        assert "8192 bytes" in too_big.json()["detail"]
