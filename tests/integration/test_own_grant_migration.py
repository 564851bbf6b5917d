"""Migration 0008 drops the "own" grants the catalogue no longer accepts, from custom roles and
API tokens alike, and keeps every other grant."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Uuid, bindparam, text
from sqlalchemy.ext.asyncio import create_async_engine

from openrisk.core.db.migrate import upgrade
from tests.conftest import create_pg_database, drop_pg_database

BEFORE = ["risk:read:own", "risk:update:own", "report:read:own", "asset:read", "risk:export:own"]
AFTER = ["risk:update:own", "asset:read"]


@pytest.fixture(params=["sqlite", "postgresql"])
def at_0006(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'm.db'}"
        upgrade(url, "0006")
        yield url
        return
    url = create_pg_database()
    upgrade(url, "0006")
    yield url
    drop_pg_database(url)


async def _seed(url: str) -> None:
    engine = create_async_engine(url)
    tenant, user = uuid.uuid4(), uuid.uuid4()
    grants = '["' + '","'.join(BEFORE) + '"]'
    async with engine.begin() as conn:
        for statement, values in (
            (
                "INSERT INTO users (id, email, full_name, is_active, is_superuser, created_at)"
                " VALUES (:id, 'm@example.com', '', true, false, CURRENT_TIMESTAMP)",
                {"id": user},
            ),
            (
                "INSERT INTO tenants (id, name, slug, status, settings, created_at)"
                " VALUES (:id, 'T', 't', 'active', '{}', CURRENT_TIMESTAMP)",
                {"id": tenant},
            ),
            (
                "INSERT INTO roles (id, tenant_id, name, description, level, is_predefined,"
                " permissions, created_at) VALUES (:id, :t, 'legacy', '', 1, false, :g,"
                " CURRENT_TIMESTAMP)",
                {"id": uuid.uuid4(), "t": tenant, "g": grants},
            ),
            (
                "INSERT INTO api_tokens (id, tenant_id, user_id, name, prefix, token_hash,"
                " permissions, created_at) VALUES (:id, :t, :u, 'legacy', 'orsk_x', :h, :g,"
                " CURRENT_TIMESTAMP)",
                {"id": uuid.uuid4(), "t": tenant, "u": user, "h": "0" * 64, "g": grants},
            ),
        ):
            ids = [
                bindparam(k, type_=Uuid()) for k, v in values.items() if isinstance(v, uuid.UUID)
            ]
            await conn.execute(text(statement).bindparams(*ids), values)
    await engine.dispose()


async def _grants(url: str) -> list[object]:
    engine = create_async_engine(url)
    async with engine.connect() as conn:
        rows = [
            *(await conn.execute(text("SELECT permissions FROM roles WHERE name = 'legacy'"))),
            *(await conn.execute(text("SELECT permissions FROM api_tokens"))),
        ]
    await engine.dispose()
    return [row[0] for row in rows]


def test_unenforced_own_grants_are_dropped(at_0006: str) -> None:
    asyncio.run(_seed(at_0006))
    upgrade(at_0006)
    for grants in asyncio.run(_grants(at_0006)):
        loaded = grants if isinstance(grants, list) else json.loads(str(grants))
        assert loaded == AFTER
