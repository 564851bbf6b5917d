"""Shared helpers of the register's API tests (no tests here)."""

from __future__ import annotations

import contextlib
import contextvars
import csv
import io
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import event

from openrisk.rbac.catalogue import PredefinedRole
from openrisk.tenants.service import add_member
from tests.conftest import Account, register

RISKS = "/api/v1/risks"
ASSETS = "/api/v1/assets"


async def member(
    app: FastAPI, client: httpx.AsyncClient, owner: Account, role: PredefinedRole
) -> Account:
    """A new user who is a member of ``owner``'s tenant with ``role`` (default tenant = it)."""
    account = await register(client, tenant_name=f"Own {uuid.uuid4().hex[:6]}")
    async with app.state.db.session() as session:
        await add_member(
            session,
            tenant_id=uuid.UUID(owner.tenant_id),
            user_id=uuid.UUID(account.user_id),
            role_id=role.id,
        )
        await session.commit()
    account.tenant_id = owner.tenant_id
    return account


async def new_risk(client: httpx.AsyncClient, account: Account, **fields: Any) -> dict[str, Any]:
    body = {"title": f"Risk {uuid.uuid4().hex[:8]}", "impact": 3, "probability": 3, **fields}
    response = await client.post(RISKS, json=body, headers=account.in_tenant())
    assert response.status_code == 201, response.text
    return dict(response.json())


async def new_asset(
    client: httpx.AsyncClient, account: Account, criticality: str = "MEDIUM", **fields: Any
) -> dict[str, Any]:
    body = {
        "name": f"Asset {uuid.uuid4().hex[:8]}",
        "type": "server",
        "criticality": criticality,
        **fields,
    }
    response = await client.post(ASSETS, json=body, headers=account.in_tenant())
    assert response.status_code == 201, response.text
    return dict(response.json())


_COUNTING: contextvars.ContextVar[list[str] | None] = contextvars.ContextVar(
    "counting", default=None
)


@contextlib.contextmanager
def count_queries(app: FastAPI) -> Iterator[list[str]]:
    """Collect the SQL statements the block itself runs (a request sent through the ASGI
    transport runs in the block's task). The app's background tasks (the outbox sweeper, the
    pool's health check) were started with another context, so their statements, which land
    at random moments, are not counted."""
    statements: list[str] = []
    engine = app.state.db.engine.sync_engine

    def before(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        counting = _COUNTING.get()
        if counting is not None:
            counting.append(statement)

    token = _COUNTING.set(statements)
    event.listen(engine, "before_cursor_execute", before)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", before)
        _COUNTING.reset(token)


def assert_problem(response: httpx.Response, status: int, field: str | None = None) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    if field is not None:
        fields = {e["field"] for e in response.json().get("errors", [])}
        assert any(f == field or f.startswith(field + ".") for f in fields), (field, fields)


def csv_file(rows: list[dict[str, Any]]) -> bytes:
    """An import file of ``rows``: a header of the first row's keys, then one line each."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue().encode()
