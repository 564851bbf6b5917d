"""Every error is RFC 9457 problem+json."""

from __future__ import annotations

import httpx

from tests.conftest import Account


def assert_problem(response: httpx.Response, status: int) -> dict[str, object]:
    assert response.status_code == status
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, object] = response.json()
    assert {"type", "title", "status", "detail"} <= body.keys()
    assert body["status"] == status
    return body


async def test_unknown_path_is_problem_404(client: httpx.AsyncClient) -> None:
    assert_problem(await client.get("/api/v1/no-such-thing"), 404)


async def test_wrong_method_is_problem_405(client: httpx.AsyncClient) -> None:
    assert_problem(await client.delete("/api/v1/health"), 405)


async def test_validation_error_names_each_field(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/api/v1/auth/register", json={"email": "not-an-email", "password": "short"}
    )
    body = assert_problem(response, 422)
    fields = {error["field"] for error in body["errors"]}  # type: ignore[attr-defined]
    assert fields == {"email", "password", "tenant_name"}


async def test_malformed_json_is_422_not_500(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/api/v1/auth/login", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert_problem(response, 422)


async def test_page_size_over_100_is_422(client: httpx.AsyncClient, admin: Account) -> None:
    response = await client.get("/api/v1/tenants?page_size=101", headers=admin.headers)
    body = assert_problem(response, 422)
    assert body["errors"][0]["field"] == "page_size"  # type: ignore[index]


async def test_request_id_is_echoed_or_generated(client: httpx.AsyncClient) -> None:
    echoed = await client.get("/api/v1/health", headers={"X-Request-ID": "abc-123"})
    assert echoed.headers["x-request-id"] == "abc-123"
    generated = await client.get("/api/v1/health")
    assert len(generated.headers["x-request-id"]) == 32


async def test_oversized_body_is_413(client: httpx.AsyncClient) -> None:
    big = b"x" * (11 * 1024 * 1024)
    response = await client.post(
        "/api/v1/auth/login", content=big, headers={"content-type": "application/json"}
    )
    assert_problem(response, 413)
