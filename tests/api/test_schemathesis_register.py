"""Property-based conformance of the register's routes (schemathesis over /openapi.json).

A real server (uvicorn in a thread, fresh database) answers generated requests, valid and
invalid, authenticated as a tenant Admin. Every answer must be documented: no 5xx, declared
status codes and content types, bodies matching their response schema. Each operation is
exercised with random ids (mostly 404) and with the ids of real rows (success paths).
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import schemathesis
import uvicorn
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from openrisk.app import create_app
from openrisk.core.db.migrate import upgrade
from tests.conftest import TEST_PASSWORD, create_pg_database, drop_pg_database, make_settings
from tests.integration.server_process import free_port

REGISTER_PATHS = r"^/api/v1/(risks|mitigations|assets|custom-fields|dashboard)(/|$)"
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
RANDOM_EXAMPLES = 8
REAL_ID_EXAMPLES = 5


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    if request.param == "sqlite":
        path: Path = tmp_path_factory.mktemp("schemathesis") / "register.db"
        url = f"sqlite+aiosqlite:///{path}"
    else:
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
        yield f"http://127.0.0.1:{port}"
    finally:
        instance.should_exit = True
        thread.join(timeout=15)
        if request.param == "postgresql":
            drop_pg_database(url)


def _world(base: str, http: requests.Session) -> tuple[dict[str, str], dict[str, str]]:
    """A tenant Admin's headers, and the ids of a real risk, asset, mitigation, field."""
    email = f"st-{uuid.uuid4().hex[:10]}@example.com"
    registered = http.post(
        f"{base}/api/v1/auth/register",
        json={"email": email, "password": TEST_PASSWORD, "tenant_name": "Fuzz Corp"},
        timeout=30,
    )
    assert registered.status_code == 201, registered.text
    token = registered.json()["access_token"]
    auth = {"Authorization": f"Bearer {token}"}
    me = http.get(f"{base}/api/v1/auth/me", headers=auth, timeout=30).json()
    headers = {**auth, "X-Tenant-ID": me["memberships"][0]["tenant_id"]}

    def post(path: str, body: dict[str, Any]) -> dict[str, Any]:
        response = http.post(f"{base}/api/v1{path}", json=body, headers=headers, timeout=30)
        assert response.status_code == 201, response.text
        return dict(response.json())

    field = post("/custom-fields", {"name": "bu", "label": "BU", "type": "text"})
    asset = post("/assets", {"name": "Core DB", "type": "database", "criticality": "HIGH"})
    risk = post(
        "/risks",
        {"title": "Data breach", "impact": 4, "probability": 3, "asset_ids": [asset["id"]]},
    )
    mitigation = post(
        f"/risks/{risk['id']}/mitigations", {"title": "Encrypt", "sub_actions": [{"title": "a"}]}
    )
    ids = {
        "risk_id": risk["id"],
        "asset_id": asset["id"],
        "mitigation_id": mitigation["id"],
        "sub_id": mitigation["sub_actions"][0]["id"],
        "field_id": field["id"],
    }
    return headers, ids


def _run(
    case_strategy: Any, base: str, http: requests.Session, headers: dict[str, str], n: int
) -> None:
    @settings(
        max_examples=n,
        derandomize=True,
        deadline=None,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=case_strategy)
    def run(case: Any) -> None:
        case.call_and_validate(base_url=base, session=http, headers=headers, checks=CHECKS)

    run()


def test_register_routes_conform_to_their_schema(server: str) -> None:
    started = time.monotonic()
    http = requests.Session()
    headers, ids = _world(server, http)
    schema = schemathesis.openapi.from_url(f"{server}/openapi.json").include(
        path_regex=REGISTER_PATHS
    )
    operations = [result.ok() for result in schema.get_all_operations()]
    # deletions last, so the real rows stay alive for the other operations
    operations.sort(key=lambda op: (op.method.upper() == "DELETE", op.path, op.method))
    assert len(operations) >= 25, [f"{op.method} {op.path}" for op in operations]
    failures: list[str] = []
    for operation in operations:
        label = f"{operation.method.upper()} {operation.path}"
        params = {p.name for p in operation.path_parameters}
        strategies = [
            (operation.as_strategy(generation_mode=GenerationMode.POSITIVE), RANDOM_EXAMPLES),
            (operation.as_strategy(generation_mode=GenerationMode.NEGATIVE), RANDOM_EXAMPLES),
        ]
        if params and params <= set(ids):
            real = {name: ids[name] for name in params}
            strategies.append(
                (
                    operation.as_strategy(
                        generation_mode=GenerationMode.POSITIVE, path_parameters=real
                    ),
                    REAL_ID_EXAMPLES,
                )
            )
        for strategy, examples in strategies:
            try:
                _run(strategy, server, http, headers, examples)
            except Exception as error:  # collect every operation's failure, then report
                failures.append(f"{label}: {error}")
                break
    assert not failures, "\n\n".join(failures)
    assert time.monotonic() - started < 240
