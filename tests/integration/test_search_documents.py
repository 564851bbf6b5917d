"""PostgreSQL's search documents follow every write of the risks: creating (one or a whole
import), editing the title or description, deleting, restoring, and removing rows outright
(by hand), with no foreign key of their own to do it."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import asyncpg
import httpx
import pytest_asyncio
from fastapi import FastAPI

from openrisk.app import create_app
from tests.conftest import Account, client_for, make_settings, register

RISKS = "/api/v1/risks"
DOCUMENT = (
    "setweight(to_tsvector('english', coalesce(title, '')), 'A') || "
    "setweight(to_tsvector('english', coalesce(description, '')), 'B')"
)


@pytest_asyncio.fixture
async def web(postgres_url: str) -> AsyncIterator[FastAPI]:
    application = create_app(make_settings(postgres_url))
    async with application.router.lifespan_context(application):
        yield application


async def _owner(postgres_url: str) -> asyncpg.Connection:
    return await asyncpg.connect(postgres_url.replace("+asyncpg", ""))


async def _mismatches(conn: asyncpg.Connection, tenant_id: str) -> list[str]:
    """What differs between the tenant's search documents and its live risks' own text."""
    rows = await conn.fetch(
        f"""
        WITH wanted AS (SELECT id, {DOCUMENT} AS document FROM risks
                        WHERE tenant_id = $1 AND deleted_at IS NULL),
             stored AS (SELECT risk_id AS id, document FROM risk_search WHERE tenant_id = $1)
        SELECT coalesce(w.id, s.id)::text AS id FROM wanted w FULL JOIN stored s ON s.id = w.id
        WHERE w.document IS DISTINCT FROM s.document
        """,
        uuid.UUID(tenant_id),
    )
    return [r["id"] for r in rows]


async def _found(http: httpx.AsyncClient, account: Account, q: str) -> list[str]:
    response = await http.get(f"{RISKS}/search", params={"q": q}, headers=account.in_tenant())
    assert response.status_code == 200, response.text
    return sorted(hit["title"] for hit in response.json()["items"])


async def _create(http: httpx.AsyncClient, account: Account, title: str) -> str:
    created = await http.post(
        RISKS,
        json={"title": title, "description": "Quarterly review", "impact": 3, "probability": 3},
        headers=account.in_tenant(),
    )
    assert created.status_code == 201, created.text
    return str(created.json()["id"])


async def test_search_documents_follow_every_write(web: FastAPI, postgres_url: str) -> None:
    async with client_for(web) as http:
        account = await register(http)
        first = await _create(http, account, "Ransomware on file servers")
        second = await _create(http, account, "Phishing of payroll staff")
        imported = await http.post(
            f"{RISKS}/import",
            files={"file": ("r.csv", b"title,impact,probability\nFlooded basement,2,2\n")},
            headers=account.in_tenant(),
        )
        assert imported.status_code == 200, imported.text
        assert await _found(http, account, "ransomware") == ["Ransomware on file servers"]
        assert await _found(http, account, "basement") == ["Flooded basement"]

        edited = await http.patch(
            f"{RISKS}/{first}",
            json={"title": "Wiper malware on file servers"},
            headers={**account.in_tenant(), "If-Match": '"1"'},
        )
        assert edited.status_code == 200, edited.text
        rescored = await http.patch(
            f"{RISKS}/{second}",
            json={"impact": 5},
            headers={**account.in_tenant(), "If-Match": '"1"'},
        )
        assert rescored.status_code == 200, rescored.text
        assert await _found(http, account, "ransomware") == []
        assert await _found(http, account, "wiper") == ["Wiper malware on file servers"]
        assert await _found(http, account, "phishing") == ["Phishing of payroll staff"]

        deleted = await http.delete(f"{RISKS}/{second}", headers=account.in_tenant())
        assert deleted.status_code == 204
        assert await _found(http, account, "phishing") == []
        restored = await http.post(f"{RISKS}/{second}/restore", headers=account.in_tenant())
        assert restored.status_code == 200, restored.text
        assert await _found(http, account, "phishing") == ["Phishing of payroll staff"]

        conn = await _owner(postgres_url)
        try:
            assert await _mismatches(conn, account.tenant_id) == []
            await conn.execute("DELETE FROM risks WHERE id = $1", uuid.UUID(first))
            assert await _mismatches(conn, account.tenant_id) == []
            assert (
                await conn.fetchval(
                    "SELECT count(*) FROM risk_search WHERE tenant_id = $1",
                    uuid.UUID(account.tenant_id),
                )
                == 2
            )
        finally:
            await conn.close()
