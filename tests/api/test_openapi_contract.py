"""The OpenAPI document is the contract: every answer a route gives is documented in it.

* every operation documents its error answers as application/problem+json, derived from what
  the route depends on (bearer token 401, permission 403, path ids 404, body 413, ...);
* a method a path does not have is a 405 whose ``Allow`` lists every method the document gives
  that path (also where a literal path like ``/risks/bulk`` sits beside ``/risks/{risk_id}``);
* a bounded schemathesis run over every operation, as a tenant Admin and as a Viewer, against a
  real server on PostgreSQL: no 5xx, no undocumented status code or content type, bodies as
  documented. The full run (tens of thousands of requests) is ``scripts/schemathesis_full.py``.
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import requests
import schemathesis
import uvicorn
from fastapi import FastAPI
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.config import SchemathesisConfig
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from openrisk.app import create_app
from openrisk.core.db.engine import create_database
from openrisk.core.db.migrate import upgrade
from openrisk.rbac.catalogue import VIEWER
from openrisk.tenants.service import add_member
from tests.conftest import TEST_PASSWORD, create_pg_database, drop_pg_database, make_settings
from tests.integration.server_process import free_port

API = "/api/v1"
PROBLEM = "application/problem+json"
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "HEAD")
CONFIG = Path(__file__).resolve().parents[2] / "scripts" / "schemathesis.toml"
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
# per operation and generation mode: the Admin reaches every handler, the Viewer is mostly
# refused at the permission check, so one example each shows its answers are documented
EXAMPLES = {"admin": 2, "viewer": 1}


def _operations(spec: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            yield path, method.upper(), operation


def test_every_operation_documents_its_errors_as_problems(app: FastAPI) -> None:
    spec = app.openapi()
    assert "HTTPValidationError" not in str(spec)
    for path, method, operation in _operations(spec):
        responses = operation["responses"]
        label = f"{method} {path}"
        for code in ("422", "429"):
            assert code in responses, label
        errors = {c: r for c, r in responses.items() if c[0] in "45" and c != "503"}
        for code, response in errors.items():
            assert list(response.get("content", {})) == [PROBLEM], (label, code)
        parameters = {p["in"] for p in operation.get("parameters", [])}
        if "path" in parameters:
            assert "404" in responses, label
        if operation.get("security") or any(
            p["name"] == "X-Tenant-ID" for p in operation.get("parameters", [])
        ):
            assert {"401", "403"} <= set(responses), label
        if "requestBody" in operation:
            assert "413" in responses, label
        if path.startswith(f"{API}/auth/") and path != f"{API}/auth/me":
            assert "401" in responses or "403" in responses, label


async def test_wrong_methods_are_405_with_every_method_of_the_path(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    spec = app.openapi()
    checked = 0
    for path, operations in spec["paths"].items():
        documented = {m.upper() for m in operations}
        url = path
        for name in path.split("{")[1:]:
            url = url.replace("{" + name.split("}")[0] + "}", str(uuid.uuid4()))
        if "{connector_id}" in path:
            url = path.replace("{connector_id}", "csv-import")
        for method in METHODS:
            if method in documented:
                continue
            response = await client.request(method, url)
            assert response.status_code == 405, (method, path, response.status_code)
            allowed = {m.strip() for m in response.headers["allow"].split(",")}
            assert allowed == documented, (method, path, allowed)
            if method != "HEAD":
                assert response.headers["content-type"] == PROBLEM
            checked += 1
    assert checked > 300, checked
    # a literal path beside a template: /risks/bulk is not /risks/{risk_id}
    bulk = await client.get(f"{API}/risks/bulk")
    assert (bulk.status_code, bulk.headers["allow"]) == (405, "POST")
    export = await client.delete(f"{API}/risks/export")
    assert (export.status_code, export.headers["allow"]) == (405, "GET")
    # a malformed id on a real route is still about the id
    assert (await client.get(f"{API}/risks/not-a-uuid")).status_code in (401, 422)


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[str, str]]:
    url = create_pg_database()
    upgrade(url)
    app = create_app(
        make_settings(url, login_limit_ip="10000/minute", login_limit_account_ip="10000/minute")
    )
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    instance = uvicorn.Server(config)
    thread = threading.Thread(target=instance.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not instance.started:
        assert thread.is_alive() and time.monotonic() < deadline, "server did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}", url
    finally:
        instance.should_exit = True
        thread.join(timeout=15)
        drop_pg_database(url)


def _register(base: str, http: requests.Session) -> tuple[dict[str, str], str, str]:
    email = f"contract-{uuid.uuid4().hex[:10]}@example.com"
    body = {"email": email, "password": TEST_PASSWORD, "tenant_name": "Contract Corp"}
    registered = http.post(f"{base}{API}/auth/register", json=body, timeout=30)
    assert registered.status_code == 201, registered.text
    auth = {"Authorization": f"Bearer {registered.json()['access_token']}"}
    me = http.get(f"{base}{API}/auth/me", headers=auth, timeout=30).json()
    return auth, me["memberships"][0]["tenant_id"], registered.json()["user"]["id"]


async def _make_viewer(database_url: str, tenant_id: str, user_id: str) -> None:
    database = create_database(make_settings(database_url), pooled=False)
    try:
        async with database.session() as session:
            await add_member(
                session,
                tenant_id=uuid.UUID(tenant_id),
                user_id=uuid.UUID(user_id),
                role_id=VIEWER.id,
            )
            await session.commit()
    finally:
        await database.dispose()


def _world(base: str, database_url: str, http: requests.Session) -> dict[str, dict[str, str]]:
    """Headers of a tenant Admin and of a Viewer of the same tenant, which holds a few rows."""
    admin_auth, tenant_id, _ = _register(base, http)
    admin = {**admin_auth, "X-Tenant-ID": tenant_id}
    viewer_auth, _, viewer_id = _register(base, http)
    asyncio.run(_make_viewer(database_url, tenant_id, viewer_id))
    viewer = {**viewer_auth, "X-Tenant-ID": tenant_id}
    for path, body in (
        ("/assets", {"name": "Core DB", "type": "database", "criticality": "HIGH"}),
        ("/risks", {"title": "Data breach", "impact": 4, "probability": 3}),
        ("/custom-fields", {"name": "bu", "label": "BU", "type": "text"}),
    ):
        created = http.post(f"{base}{API}{path}", json=body, headers=admin, timeout=30)
        assert created.status_code == 201, created.text
    return {"viewer": viewer, "admin": admin}


def _run(
    strategy: Any, base: str, http: requests.Session, headers: dict[str, str], examples: int
) -> None:
    @settings(
        max_examples=examples,
        derandomize=True,
        deadline=None,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=strategy)
    def run(case: Any) -> None:
        case.call_and_validate(base_url=base, session=http, headers=headers, checks=CHECKS)

    run()


def test_every_operation_conforms_for_an_admin_and_a_viewer(server: tuple[str, str]) -> None:
    base, database_url = server
    started = time.monotonic()
    http = requests.Session()
    roles = _world(base, database_url, http)
    schema = schemathesis.openapi.from_url(
        f"{base}/openapi.json", config=SchemathesisConfig.from_path(CONFIG)
    )
    operations = [result.ok() for result in schema.get_all_operations()]
    # deletions last (the Viewer's first: they are refused), so the rows stay for the others
    operations.sort(key=lambda op: (op.method.upper() == "DELETE", op.path, op.method))
    assert len(operations) >= 90, len(operations)
    failures: list[str] = []
    for role, headers in roles.items():
        for operation in operations:
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                try:
                    _run(
                        operation.as_strategy(generation_mode=mode),
                        base,
                        http,
                        headers,
                        EXAMPLES[role],
                    )
                except Unsatisfiable:  # nothing to make invalid in an operation without input
                    continue
                except Exception as error:  # every operation's failure, then one report
                    failures.append(f"{role} {operation.method.upper()} {operation.path}: {error}")
                    break
    assert not failures, "\n\n".join(failures)
    assert time.monotonic() - started < 120
