"""PostgreSQL Row-Level Security, the second wall.

The app connects as a role without BYPASSRLS, like production; a deliberately unscoped query
made through a request's session returns no row of another tenant.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Annotated

import pytest
import pytest_asyncio
from fastapi import Depends, FastAPI
from sqlalchemy import text

from openrisk.app import create_app
from openrisk.auth.deps import require
from openrisk.core.context import RequestContext
from openrisk.core.db.tenancy import bind_session_to_tenant
from openrisk.core.deps import SessionDep
from tests.conftest import client_for, make_settings, register
from tests.integration.app_role import app_role_database

UNSCOPED = "/api/v1/test-probe/unscoped/{table}"
PROBED_TABLES = ("memberships", "api_tokens", "audit_events", "roles")


@pytest.fixture(scope="module")
def restricted_url() -> Iterator[str]:
    with app_role_database() as url:
        yield url


@pytest_asyncio.fixture
async def rls_app(restricted_url: str) -> AsyncIterator[FastAPI]:
    app = create_app(make_settings(restricted_url))

    @app.get(UNSCOPED)
    async def unscoped(
        table: str,
        context: Annotated[RequestContext, Depends(require("member:read"))],
        session: SessionDep,
    ) -> list[str | None]:
        assert table in PROBED_TABLES
        rows = await session.execute(text(f"SELECT DISTINCT tenant_id FROM {table}"))  # no filter
        return sorted((str(r[0]) if r[0] else None for r in rows), key=str)

    async with app.router.lifespan_context(app):
        yield app


async def test_the_app_role_cannot_bypass_row_level_security(rls_app: FastAPI) -> None:
    async with rls_app.state.db.engine.connect() as conn:
        row = (
            await conn.execute(
                text("SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user")
            )
        ).one()
    assert tuple(row) == (False, False)


async def test_unscoped_queries_see_only_the_requests_tenant(rls_app: FastAPI) -> None:
    async with client_for(rls_app) as http:
        alpha = await register(http, tenant_name="Alpha")
        beta = await register(http, tenant_name="Beta")
        for account in (alpha, beta):
            created = await http.post(
                "/api/v1/tokens", json={"name": "t"}, headers=account.in_tenant()
            )
            assert created.status_code == 201
            role = await http.post(
                "/api/v1/roles", json={"name": "Custom", "level": 1}, headers=account.in_tenant()
            )
            assert role.status_code == 201
        for account in (alpha, beta):
            for table in PROBED_TABLES:
                response = await http.get(UNSCOPED.format(table=table), headers=account.in_tenant())
                assert response.status_code == 200, response.text
                tenants = {t for t in response.json() if t is not None}
                assert tenants == {account.tenant_id}, table


async def test_every_tenant_owned_table_has_a_policy(rls_app: FastAPI) -> None:
    query = text(
        """
        SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity,
               EXISTS (SELECT 1 FROM pg_policies p WHERE p.tablename = c.relname) AS has_policy
        FROM pg_class c
        JOIN information_schema.columns col
          ON col.table_name = c.relname AND col.column_name = 'tenant_id'
        WHERE c.relkind = 'r' AND col.table_schema = 'public'
        """
    )
    async with rls_app.state.db.engine.connect() as conn:
        tables = (await conn.execute(query)).all()
    assert len(tables) >= 6
    unprotected = [t.relname for t in tables if not (t.relrowsecurity and t.has_policy)]
    assert unprotected == []


async def test_text_search_as_the_app_role_keeps_to_the_bound_tenant(rls_app: FastAPI) -> None:
    """Search reads its table through functions that run as the owner (so that it can use the
    full-text index): they apply the policy's rule themselves."""
    async with client_for(rls_app) as http:
        alpha = await register(http, tenant_name="Alpha")
        beta = await register(http, tenant_name="Beta")
        for account in (alpha, beta):
            for title in ("Zebra crossing flood", "Zebras escape"):
                created = await http.post(
                    "/api/v1/risks",
                    json={"title": title, "impact": 3, "probability": 2},
                    headers=account.in_tenant(),
                )
                assert created.status_code == 201, created.text
        for account in (alpha, beta):
            listed = await http.get("/api/v1/risks?q=zebra", headers=account.in_tenant())
            searched = await http.get("/api/v1/risks/search?q=zebr", headers=account.in_tenant())
            assert listed.json()["total"] == searched.json()["total"] == 2
    matches = text("SELECT count(*) FROM risk_text_matches(:tenant, to_tsquery('zebra'))")
    ranked = text("SELECT count(*) FROM risk_text_ranked(:tenant, to_tsquery('zebra'))")
    async with rls_app.state.db.session() as session:
        await bind_session_to_tenant(session, uuid.UUID(alpha.tenant_id))
        for statement in (matches, ranked):
            assert await session.scalar(statement, {"tenant": alpha.tenant_id}) == 2
            assert await session.scalar(statement, {"tenant": beta.tenant_id}) == 0
