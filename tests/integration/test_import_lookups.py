"""An import's lookups run on a connection of their own (PostgreSQL), beside its writes and
without locking what they read: a risk that someone changes after its chunk was looked up is
not overwritten; the import is refused and can be retried."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any, cast

import asyncpg
import httpx
import pytest
import pytest_asyncio
from fastapi import FastAPI
from sqlalchemy import Table, func, select

from openrisk.app import create_app
from openrisk.audit.models import AuditEvent
from openrisk.core.db.base import utcnow
from openrisk.core.db.bulk import insert_rows
from openrisk.core.db.tenancy import bind_session_to_tenant
from openrisk.core.ids import new_id
from openrisk.risks import transfer
from tests.api.test_risks_helpers import csv_file
from tests.conftest import Account, client_for, make_settings, register
from tests.integration.app_role import app_role_database

RISKS = "/api/v1/risks"
CHUNK = 50


@pytest_asyncio.fixture
async def web(postgres_url: str) -> AsyncIterator[FastAPI]:
    application = create_app(make_settings(postgres_url))
    async with application.router.lifespan_context(application):
        yield application


async def _import(http: httpx.AsyncClient, account: Account, content: bytes) -> httpx.Response:
    return await http.post(
        f"{RISKS}/import",
        files={"file": ("risks.csv", content, "text/csv")},
        headers=account.in_tenant(),
    )


async def _driver_connection(session: Any) -> int:
    """The identity of the database connection a session is using."""
    raw = await (await session.connection()).get_raw_connection()
    return id(raw.driver_connection)


async def test_a_risk_changed_after_its_lookup_refuses_the_import_and_keeps_the_change(
    web: FastAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(transfer, "CHUNK", CHUNK)
    async with client_for(web) as http:
        account = await register(http)
        rows = [
            {"title": f"Looked up {n}", "impact": 2, "probability": 2} for n in range(3 * CHUNK)
        ]
        created = await _import(http, account, csv_file(rows))
        assert created.status_code == 200, created.text
        ids = created.json()["ids"]
        edited = ids[7]  # a risk of the first chunk
        find, write = transfer._find, transfer._write
        lookups = 0
        patched: list[int] = []
        connections: dict[str, set[int]] = {"lookups": set(), "writes": set()}

        async def noted_write(uow: Any, context: Any, built: Any) -> None:
            connections["writes"].add(await _driver_connection(uow.session))
            await write(uow, context, built)

        async def find_then_edit(session: Any, state: Any, chunk: Any) -> Any:
            """After the first chunk's lookup, someone else renames one of its risks (a real
            request, committed before the import writes anything)."""
            nonlocal lookups
            found = await find(session, state, chunk)
            connections["lookups"].add(await _driver_connection(session))
            lookups += 1
            if lookups == 1:
                response = await http.patch(
                    f"{RISKS}/{edited}",
                    json={"title": "Renamed meanwhile"},
                    headers=account.in_tenant(),
                )
                patched.append(response.status_code)
            return found

        monkeypatch.setattr(transfer, "_find", find_then_edit)
        monkeypatch.setattr(transfer, "_write", noted_write)
        update = [
            {"id": i, "title": f"Imported {n}", "impact": 3, "probability": 3}
            for n, i in enumerate(ids)
        ]
        refused = await _import(http, account, csv_file(update))
        assert patched == [200]  # the edit did not wait for the import
        assert refused.status_code == 412, refused.text
        assert "changed meanwhile" in refused.json()["detail"]
        # the lookups ran on a connection of their own, beside the writes
        assert connections["lookups"] and connections["writes"]
        assert not connections["lookups"] & connections["writes"]

        monkeypatch.setattr(transfer, "_find", find)
        stored = {}
        for risk_id in (ids[0], edited, ids[-1]):
            detail = await http.get(f"{RISKS}/{risk_id}", headers=account.in_tenant())
            stored[risk_id] = (detail.json()["title"], detail.json()["version"])
        assert stored == {
            ids[0]: ("Looked up 0", 1),
            edited: ("Renamed meanwhile", 2),
            ids[-1]: (f"Looked up {3 * CHUNK - 1}", 1),
        }

        again = await _import(http, account, csv_file(update))
        assert again.status_code == 200, again.text
        assert again.json()["updated"] == 3 * CHUNK
        detail = await http.get(f"{RISKS}/{edited}", headers=account.in_tenant())
        assert (detail.json()["title"], detail.json()["version"]) == ("Imported 7", 3)
        assert uuid.UUID(detail.json()["id"]) == uuid.UUID(edited)


@pytest.fixture(scope="module")
def restricted_url() -> Iterator[str]:
    with app_role_database() as url:
        yield url


@pytest_asyncio.fixture
async def as_app_role(restricted_url: str) -> AsyncIterator[FastAPI]:
    """The application connected as a role without BYPASSRLS: every batch goes through a
    staging table, since row-level security refuses COPY into the tables."""
    application = create_app(make_settings(restricted_url))
    async with application.router.lifespan_context(application):
        yield application


def _audit_row(tenant_id: uuid.UUID, n: int) -> dict[str, Any]:
    return {
        "id": new_id(),
        "tenant_id": tenant_id,
        "actor_user_id": None,
        "actor_token_id": None,
        "action": "risk.note",
        "resource_type": "risk",
        "resource_id": str(n),
        "outcome": "success",
        "ip": None,
        "user_agent": None,
        "request_id": None,
        "created_at": utcnow(),
        "changes": None,
    }


async def test_batches_through_row_level_security_reuse_their_staging_tables(
    as_app_role: FastAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Chunk after chunk, an import through row-level security creates each staging table and
    asks whether the policies apply once per transaction, and a savepoint rolled back with
    its staging table leaves the next batch to create it again."""
    monkeypatch.setattr(transfer, "CHUNK", CHUNK)
    asked: list[str] = []
    execute = asyncpg.Connection.execute

    async def counted(self: asyncpg.Connection, query: str, *args: Any, **kwargs: Any) -> Any:
        if query.startswith("CREATE TEMP TABLE"):
            asked.append(query.split('"')[1])
        return await execute(self, query, *args, **kwargs)

    monkeypatch.setattr(asyncpg.Connection, "execute", counted)
    async with client_for(as_app_role) as http:
        account = await register(http)
        rows = [{"title": f"Staged {n}", "impact": 2, "probability": 2} for n in range(3 * CHUNK)]
        created = await _import(http, account, csv_file(rows))
        assert created.status_code == 200, created.text
        # one staging table per table written, not one per chunk and table
        assert sorted(asked) == sorted(set(asked)), asked
        assert {"openrisk_stage_risks", "openrisk_stage_risk_history"} <= set(asked)
        update = [
            {"id": i, "title": f"Restaged {n}"} | rows[n] | {"title": f"Restaged {n}"}
            for n, i in enumerate(created.json()["ids"])
        ]
        updated = await _import(http, account, csv_file(update))
        assert updated.status_code == 200, updated.text
        assert updated.json()["updated"] == 3 * CHUNK
        listed = await http.get(f"{RISKS}?q=Restaged&page_size=1", headers=account.in_tenant())
        assert listed.json()["total"] == 3 * CHUNK

        tenant = uuid.UUID(account.tenant_id)
        audit = cast(Table, AuditEvent.__table__)
        async with as_app_role.state.db.session() as session:
            await bind_session_to_tenant(session, tenant)
            savepoint = await session.begin_nested()
            await insert_rows(session, audit, [_audit_row(tenant, n) for n in range(60)])
            await savepoint.rollback()  # its staging table went with it
            await insert_rows(session, audit, [_audit_row(tenant, n) for n in range(60)])
            await session.commit()
            notes = await session.scalar(
                select(func.count()).select_from(audit).where(audit.c.action == "risk.note")
            )
        assert notes == 60
