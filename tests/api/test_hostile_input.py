"""Hostile input into every field of every route, generated from the OpenAPI document.

Each string field of each JSON or form body, each query parameter and each path parameter of
every operation is sent, one at a time, a NUL character, a lone surrogate, a huge string and a
deeply nested object (and, for date-times, a naive and an out-of-range value), as a superuser who
is Admin of the tenant, so that no permission refusal stands in front of the validation. Every
answer must be a 4xx application/problem+json that names the field, and none of the values may be
found anywhere in the database afterwards. Runs on SQLite and on PostgreSQL.

Lone surrogates only exist in JSON (``"\\ud800"``): in a URL or a form the percent-decoding turns
invalid UTF-8 into U+FFFD, which is ordinary text; those are sent too and must not give a 5xx.
"""

from __future__ import annotations

import copy
import itertools
import json
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx
import pytest
import pytest_asyncio
from fastapi import FastAPI
from sqlalchemy import func, select, update

import openrisk.models  # noqa: F401  (every table in Base.metadata)
from openrisk.auth.models import User
from openrisk.core.db.base import Base
from tests.access.world import FACTORIES, GLOBAL_PARAMS, Tenant, body_for, path_params
from tests.conftest import TEST_PASSWORD, Account, register

API = "/api/v1"
MARK = "zzhostile"
HUGE_BODY_STRING = MARK + "a" * 300_000
HUGE_URL_VALUE = MARK + "a" * 10_000
DEEP = 260
# Bodies for the routes outside tests/access/world.py (authentication, tenants, operators).
BASE_BODIES: dict[tuple[str, str], dict[str, Any]] = {
    ("POST", "/auth/register"): {
        "email": "fresh@example.com",
        "password": TEST_PASSWORD,
        "tenant_name": "Fresh",
    },
    ("POST", "/auth/login"): {"email": "nobody@example.com", "password": TEST_PASSWORD},
    ("POST", "/auth/refresh"): {"refresh_token": "not-a-token"},
    ("POST", "/auth/logout"): {"refresh_token": "not-a-token"},
    ("POST", "/auth/invitations/accept"): {"token": "x" * 20, "password": TEST_PASSWORD},
    ("POST", "/tenants"): {"name": "Hostile Corp"},
    ("POST", "/system/cache/invalidate"): {"pattern": "openrisk:none:*"},
    ("POST", "/risks/bulk"): {"action": "update", "ids": [str(uuid.uuid4())], "changes": {}},
}
FORM_BODIES: dict[tuple[str, str], dict[str, str]] = {
    ("POST", "/auth/token"): {"username": "nobody@example.com", "password": TEST_PASSWORD},
}


@dataclass
class Probe:
    """One hostile request and the field its answer must name."""

    method: str
    template: str
    url: str
    field: str
    kind: str
    json_text: str | None = None
    form: dict[str, str] | None = None
    named: bool = True  # False: any non-5xx answer will do (the value is ordinary text)


def _resolve(spec: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    for key in ("anyOf", "oneOf"):
        if key in schema:
            options = [s for s in schema[key] if s.get("type") != "null"]
            if options:
                return _resolve(spec, options[0])
    if "allOf" in schema and len(schema["allOf"]) == 1:
        return _resolve(spec, schema["allOf"][0])
    return schema


def _leaves(
    spec: dict[str, Any], schema: dict[str, Any], path: tuple[Any, ...], depth: int = 0
) -> Iterator[tuple[tuple[Any, ...], str]]:
    """(path, kind) of every string and free-form object under ``schema``."""
    schema = _resolve(spec, schema)
    kind = schema.get("type")
    if depth > 4:
        return
    if kind == "object" or "properties" in schema:
        properties = schema.get("properties")
        if not properties:
            yield path, "object"
            return
        for name, sub in properties.items():
            yield from _leaves(spec, sub, (*path, name), depth + 1)
    elif kind == "array":
        yield from _leaves(spec, schema.get("items", {}), (*path, 0), depth + 1)
    elif kind == "string":
        yield path, schema.get("format", "string")
    elif path and kind is None:  # Any
        yield path, "object"


def _set(body: dict[str, Any], path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    body = copy.deepcopy(body)
    node: Any = body
    for here, nxt in itertools.pairwise(path):
        empty: Any = [] if isinstance(nxt, int) else {}
        if isinstance(here, int):
            while len(node) <= here:
                node.append(copy.deepcopy(empty))
            if not isinstance(node[here], type(empty)):
                node[here] = empty
        elif not isinstance(node.get(here), type(empty)):
            node[here] = empty
        node = node[here]
    last = path[-1]
    if isinstance(last, int):
        node[:] = [*node[:last], value]
    else:
        node[last] = value
    return body


def _deep() -> dict[str, Any]:
    value: dict[str, Any] = {MARK: 1}
    for _ in range(DEEP):
        value = {"a": value}
    return value


def _body_values(kind: str) -> list[tuple[str, Any]]:
    values: list[tuple[str, Any]] = [
        ("nul", f"{MARK}\x00x"),
        ("surrogate", f"{MARK}\ud800x"),
        ("deep", _deep()),
    ]
    if kind == "object":
        values.append(("huge", {f"k{i}": f"{MARK}{'a' * 1000}" for i in range(9_000)}))
    else:
        values.append(("huge", HUGE_BODY_STRING))
    return values


def _url_values(schema: dict[str, Any]) -> list[tuple[str, str, bool]]:
    values = [
        ("nul", f"{MARK}%00x", True),
        ("huge", HUGE_URL_VALUE, True),
        ("bad-utf8", f"{MARK}%ED%A0%80%FF", False),
    ]
    if schema.get("format") == "date-time":
        values += [
            ("naive", "2026-01-01", True),
            ("naive-time", "2026-01-01T00:00:00", True),
            ("overflow", quote("9999-12-31T23:59:59-12:00"), True),
            ("underflow", quote("0001-01-01T00:00:00+14:00"), True),
        ]
    return values


def probes(spec: dict[str, Any], ids: dict[str, str]) -> list[Probe]:
    out: list[Probe] = []
    for template, operations in spec["paths"].items():
        if not template.startswith(API):
            continue
        for method, operation in operations.items():
            method = method.upper()
            real = {name: ids[name] for name in path_params(template)}
            url = template.format(**real)
            content = operation.get("requestBody", {}).get("content", {})
            key = (method, template.removeprefix(API))
            base: dict[str, Any] = {}
            if "application/json" in content:
                base = BASE_BODIES.get(key) or body_for(method, template) or {}
            plain = json.dumps(base) if "application/json" in content else None
            form = FORM_BODIES.get(key)
            for parameter in operation.get("parameters", []):
                if parameter["in"] not in ("path", "query"):
                    continue
                name, schema = parameter["name"], _resolve(spec, parameter["schema"])
                for kind, value, named in _url_values(schema):
                    if parameter["in"] == "path":
                        target = template.format(**{**real, name: value})
                    else:
                        target = f"{url}?{name}={value}"
                    out.append(
                        Probe(method, template, target, name, kind, plain, form, named=named)
                    )
            if "application/json" in content:
                for path, kind in _leaves(spec, content["application/json"]["schema"], ()):
                    field = ".".join(str(p) for p in path)
                    for value_kind, value in _body_values(kind):
                        text = json.dumps(_set(base, path, value))  # ensure_ascii: \ud800 as is
                        out.append(Probe(method, template, url, field, value_kind, json_text=text))
            elif form is not None:
                for name in form:
                    for kind, value in (("nul", f"{MARK}\x00x"), ("huge", HUGE_URL_VALUE)):
                        changed = {**form, name: value}
                        out.append(Probe(method, template, url, name, kind, form=changed))
    # deletions last, so that the real rows stay for the other routes
    out.sort(key=lambda p: p.method == "DELETE")
    return out


async def _send(http: httpx.AsyncClient, probe: Probe, headers: dict[str, str]) -> httpx.Response:
    if probe.json_text is not None:
        return await http.request(
            probe.method,
            probe.url,
            content=probe.json_text.encode(),
            headers={**headers, "Content-Type": "application/json"},
        )
    if probe.form is not None:
        return await http.request(probe.method, probe.url, data=probe.form, headers=headers)
    return await http.request(probe.method, probe.url, headers=headers)


def _names(response: httpx.Response, field: str) -> bool:
    try:
        body = response.json()
    except ValueError:
        return False
    named = {str(e.get("field", "")) for e in body.get("errors") or []}
    return any(n == field or n.startswith(f"{field}.") for n in named)


async def _snapshot(app: FastAPI) -> dict[str, int]:
    counts: dict[str, int] = {}
    async with app.state.db.session() as session:
        for table in Base.metadata.sorted_tables:
            counts[table.name] = int(
                (await session.execute(select(func.count()).select_from(table))).scalar_one()
            )
    return counts


async def _stored_marks(app: FastAPI) -> list[str]:
    found = []
    async with app.state.db.session() as session:
        for table in Base.metadata.sorted_tables:
            for row in (await session.execute(select(table))).all():
                if MARK in repr(tuple(row)):
                    found.append(f"{table.name}: {repr(tuple(row))[:160]}")
    return found


@pytest_asyncio.fixture
async def superuser(app: FastAPI) -> AsyncIterator[tuple[httpx.AsyncClient, Account]]:
    # a 500 is an answer to record here, not an exception to raise into the test
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False, client=("10.99.0.1", 1))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        account = await register(http, tenant_name="Hostile Input Corp")
        async with app.state.db.session() as session:
            await session.execute(
                update(User).where(User.id == uuid.UUID(account.user_id)).values(is_superuser=True)
            )
            await session.commit()
        await app.state.authz.bump()
        yield http, account


async def test_every_field_of_every_route_refuses_hostile_input(
    app: FastAPI, superuser: tuple[httpx.AsyncClient, Account]
) -> None:
    http, admin = superuser
    tenant = Tenant(app=app, http=http, admin=admin, marker="hostile-world")
    ids: dict[str, str] = dict(GLOBAL_PARAMS)
    for name in ("risk_id", "mitigation_id", "sub_id", "asset_id", "field_id", "role_id"):
        ids[name] = await FACTORIES[name](tenant, None, ids)
    for name in (
        "user_id",
        "token_id",
        "app_id",
        "report_id",
        "job_id",
        "invitation_id",
        "view_id",
        "acceptance_id",
        "delivery_id",
    ):
        ids[name] = await FACTORIES[name](tenant, None, ids)
    ids["tenant_id"] = admin.tenant_id
    all_probes = probes(app.openapi(), ids)
    assert len(all_probes) > 800, len(all_probes)
    covered = {(p.method, p.template) for p in all_probes}
    assert len(covered) >= 80, len(covered)

    await app.state.jobs.drain()  # the world's own events relayed: the outbox stays still
    before = await _snapshot(app)
    failures: list[str] = []
    headers = admin.in_tenant()
    for probe in all_probes:
        response = await _send(http, probe, headers)
        label = f"{probe.method} {probe.template} {probe.field} <{probe.kind}>"
        if response.status_code >= 500:
            failures.append(f"{label}: {response.status_code} {response.text[:120]}")
        elif not probe.named:
            continue
        elif not 400 <= response.status_code < 500:
            failures.append(f"{label}: accepted with {response.status_code}")
        elif response.headers.get("content-type") != "application/problem+json":
            failures.append(f"{label}: {response.status_code} {response.headers['content-type']}")
        elif not _names(response, probe.field):
            failures.append(f"{label}: {response.status_code} {response.text[:160]}")
    await app.state.jobs.drain()
    after = await _snapshot(app)
    changed = {t: (before[t], after[t]) for t in before if before[t] != after[t]}
    stored = await _stored_marks(app)
    report = "\n".join(failures[:80])
    assert not failures, f"{len(failures)} of {len(all_probes)} probes failed:\n{report}"
    assert not changed, changed
    assert not stored, stored


@pytest.mark.parametrize("depth", [40, 260, 5000])
async def test_deep_settings_are_refused_and_tenants_stay_listable(
    client: httpx.AsyncClient, admin: Account, depth: int
) -> None:
    settings = '{"a":' * depth + "1" + "}" * depth
    response = await client.patch(
        f"{API}/tenants/{admin.tenant_id}",
        content=f'{{"settings":{settings}}}'.encode(),
        headers={**admin.headers, "Content-Type": "application/json"},
    )
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    field = response.json()["errors"][0]["field"]
    # too deep for any JSON parser's stack: the body as a whole is refused
    assert field.split(".")[0] == ("settings" if depth < 1000 else "body"), field
    listed = await client.get(f"{API}/tenants", headers=admin.headers)
    assert listed.status_code == 200
    assert all(t["settings"] == {} for t in listed.json()["items"])


async def test_settings_have_a_size_limit(client: httpx.AsyncClient, admin: Account) -> None:
    big = {f"key{i}": "v" * 1000 for i in range(9_000)}  # 9 MB, under the body limit
    response = await client.patch(
        f"{API}/tenants/{admin.tenant_id}", json={"settings": big}, headers=admin.headers
    )
    assert response.status_code == 422, response.text[:300]
    assert response.json()["errors"][0]["field"] == "settings"
    fine = await client.patch(
        f"{API}/tenants/{admin.tenant_id}",
        json={"settings": {"theme": "dark"}},
        headers=admin.headers,
    )
    assert fine.status_code == 200, fine.text
    assert fine.json()["settings"] == {"theme": "dark"}


async def test_oversized_chunked_body_is_413(client: httpx.AsyncClient, admin: Account) -> None:
    limit = 10 * 1024 * 1024

    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"name": "'
        for _ in range(limit // 65536 + 2):
            yield b"a" * 65536
        yield b'"}'

    response = await client.post(
        f"{API}/risks",
        content=chunks(),
        headers={**admin.in_tenant(), "Content-Type": "application/json"},
    )
    assert "content-length" not in response.request.headers
    assert response.status_code == 413, response.text[:300]
    assert response.headers["content-type"] == "application/problem+json"


async def test_small_chunked_body_is_read(client: httpx.AsyncClient, admin: Account) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"title": "chunked", '
        yield b'"impact": 2, "probability": 3}'

    response = await client.post(
        f"{API}/risks",
        content=chunks(),
        headers={**admin.in_tenant(), "Content-Type": "application/json"},
    )
    assert response.status_code == 201, response.text


@pytest.mark.parametrize(
    "text", ['{"title": "x", ', "[1, 2", '{"title": NaN}', "\x00", '{"n": 1' + "0" * 5000 + "}"]
)
async def test_malformed_json_is_a_problem_that_says_so(
    client: httpx.AsyncClient, admin: Account, text: str
) -> None:
    response = await client.post(
        f"{API}/risks",
        content=text.encode(),
        headers={**admin.in_tenant(), "Content-Type": "application/json"},
    )
    assert response.status_code in (400, 422), response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert "JSON" in problem["detail"], problem
    assert problem["errors"][0]["field"] == "body"


@pytest.mark.parametrize(
    ("since", "ok"),
    [
        ("2026-01-01", False),
        ("2026-01-01T00:00:00", False),
        ("9999-12-31T23:59:59-12:00", False),
        ("0001-01-01T00:00:00+14:00", False),
        ("2026-01-01T00:00:00Z", True),
        ("2026-01-01T09:30:00+02:00", True),
    ],
)
async def test_audit_since_needs_an_offset_and_a_representable_instant(
    client: httpx.AsyncClient, admin: Account, since: str, ok: bool
) -> None:
    response = await client.get(
        f"{API}/audit-events", params={"since": since}, headers=admin.in_tenant()
    )
    if ok:
        assert response.status_code == 200, response.text
    else:
        assert response.status_code == 422, response.text
        assert response.json()["errors"][0]["field"] == "since"


async def test_pages_refuse_hostile_text_without_an_error(app: FastAPI, admin: Account) -> None:
    """The web pages share the rules: a bad value is a 400 page, never a 500 or a stored row."""
    from openrisk.web.rendering import WebRoute
    from openrisk.web.router import PAGE_ROUTERS
    from tests.web.helpers import sign_in

    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False, client=("10.98.0.1", 1))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        browser = await sign_in(http, admin)
        pages = [
            route.path
            for router in PAGE_ROUTERS
            for route in router.routes
            if isinstance(route, WebRoute) and "GET" in route.methods and "{" not in route.path
        ]
        assert len(pages) >= 10, pages
        hostile = f"q={MARK}%00&action={MARK}%00&status=%00&since=9999-12-31&until=9999-12-31"
        for path in pages:
            response = await http.get(f"{path}?{hostile}")
            assert response.status_code < 500, (path, response.status_code)
        calm = await http.get("/audit?since=9999-12-31&until=9999-12-31")
        assert calm.status_code == 200, calm.text[:300]
        before = await _snapshot(app)
        created = await browser.post(
            "/risks/new", {"title": f"{MARK}\x00", "impact": "2", "probability": "2"}
        )
        assert created.status_code == 400, created.text[:300]
        assert "title" in created.text and "NUL" in created.text
        assert await _snapshot(app) == before
