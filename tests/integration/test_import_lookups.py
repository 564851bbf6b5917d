"""An import's lookups run on a connection of their own (PostgreSQL), beside its writes and
without locking what they read: a risk that someone changes after its chunk was looked up is
not overwritten; the import is refused and can be retried."""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import pytest_asyncio
from fastapi import FastAPI

from openrisk.app import create_app
from openrisk.risks import transfer
from tests.conftest import Account, client_for, make_settings, register

RISKS = "/api/v1/risks"
CHUNK = 50


@pytest_asyncio.fixture
async def web(postgres_url: str) -> AsyncIterator[FastAPI]:
    application = create_app(make_settings(postgres_url))
    async with application.router.lifespan_context(application):
        yield application


def _csv(rows: list[dict[str, Any]]) -> bytes:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue().encode()


async def _import(http: httpx.AsyncClient, account: Account, content: bytes) -> httpx.Response:
    return await http.post(
        f"{RISKS}/import",
        files={"file": ("risks.csv", content, "text/csv")},
        headers=account.in_tenant(),
    )


async def test_a_risk_changed_after_its_lookup_refuses_the_import_and_keeps_the_change(
    web: FastAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(transfer, "CHUNK", CHUNK)
    async with client_for(web) as http:
        account = await register(http)
        rows = [
            {"title": f"Looked up {n}", "impact": 2, "probability": 2} for n in range(3 * CHUNK)
        ]
        created = await _import(http, account, _csv(rows))
        assert created.status_code == 200, created.text
        ids = created.json()["ids"]
        edited = ids[7]  # a risk of the first chunk
        find = transfer._find
        lookups = 0
        patched: list[int] = []

        async def find_then_edit(session: Any, state: Any, chunk: Any) -> Any:
            """After the first chunk's lookup, someone else renames one of its risks (a real
            request, committed before the import writes anything)."""
            nonlocal lookups
            found = await find(session, state, chunk)
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
        update = [
            {"id": i, "title": f"Imported {n}", "impact": 3, "probability": 3}
            for n, i in enumerate(ids)
        ]
        refused = await _import(http, account, _csv(update))
        assert patched == [200]  # the edit did not wait for the import
        assert refused.status_code == 412, refused.text
        assert "changed meanwhile" in refused.json()["detail"]

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

        again = await _import(http, account, _csv(update))
        assert again.status_code == 200, again.text
        assert again.json()["updated"] == 3 * CHUNK
        detail = await http.get(f"{RISKS}/{edited}", headers=account.in_tenant())
        assert (detail.json()["title"], detail.json()["version"]) == ("Imported 7", 3)
        assert uuid.UUID(detail.json()["id"]) == uuid.UUID(edited)
