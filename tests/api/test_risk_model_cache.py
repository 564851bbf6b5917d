"""Each process keeps the risk models it has read and checks the stored version on every use:
a change made by another worker (or any writer) is used by the next request, and the
dashboard's stats and matrix spend no statement on the model."""

from __future__ import annotations

import copy
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest_asyncio
from fastapi import FastAPI
from sqlalchemy import update
from sqlalchemy.ext.asyncio import create_async_engine

from openrisk.app import create_app
from openrisk.methodology.models import RiskModelRecord
from tests.api.test_risk_model import body_of, current, put
from tests.api.test_risks_helpers import RISKS, count_queries, new_risk
from tests.conftest import Account, client_for, make_settings

DASH = "/api/v1/dashboard"
THREE_BANDS = [
    {"name": "MINOR", "min_score": 0, "color": "#2e7d32"},
    {"name": "SERIOUS", "min_score": 4, "color": "#f9a825"},
    {"name": "SEVERE", "min_score": 9, "color": "#c62828"},
]
REVIEW_DAYS = {"MINOR": 365, "SERIOUS": 60, "SEVERE": 20}


async def three_bands(client: httpx.AsyncClient, admin: Account) -> None:
    body = body_of(await current(client, admin), bands=THREE_BANDS, review_days=REVIEW_DAYS)
    response = await put(client, admin, body)
    assert response.status_code == 200, response.text


@pytest_asyncio.fixture
async def other_worker(database_url: str) -> AsyncIterator[FastAPI]:
    """A second application on the same database with its own pool and no response cache:
    every request runs its statements, like an uncached request in another worker."""
    application = create_app(make_settings(database_url, cache_enabled=False))
    async with application.router.lifespan_context(application):
        yield application


async def get(http: httpx.AsyncClient, admin: Account, path: str, **params: str) -> Any:
    response = await http.get(path, params=params, headers=admin.in_tenant())
    assert response.status_code == 200, response.text
    return response.json()


def bands_of(matrix: dict[str, Any]) -> set[str]:
    return {cell["band"] for cell in matrix["cells"]}


async def test_a_model_changed_elsewhere_is_used_by_the_next_request(
    client: httpx.AsyncClient, admin: Account, other_worker: FastAPI, database_url: str
) -> None:
    await new_risk(client, admin, impact=5, probability=5)
    async with client_for(other_worker) as other:
        # the other worker reads (and keeps) the default model
        assert "SEVERE" not in (await get(other, admin, f"{DASH}/stats"))["by_severity"]
        assert bands_of(await get(other, admin, f"{DASH}/matrix")) == {
            "CRITICAL",
            "HIGH",
            "MEDIUM",
            "LOW",
        }

        # this worker changes the model through the API: the other one sees it at once
        await three_bands(client, admin)
        stats = await get(other, admin, f"{DASH}/stats")
        assert {"MINOR", "SERIOUS", "SEVERE"} <= set(stats["by_severity"])
        assert stats["by_severity"]["SEVERE"] == 1
        assert bands_of(await get(other, admin, f"{DASH}/matrix")) == {
            "MINOR",
            "SERIOUS",
            "SEVERE",
        }

        # a writer that is not this code at all (another process, a restore): the stored
        # version moved, so neither worker answers from the copy it kept
        renamed = copy.deepcopy(THREE_BANDS)
        renamed[2]["name"] = "GRAVE"
        review_days = {"MINOR": 365, "SERIOUS": 60, "GRAVE": 20}
        stored = await current(client, admin)
        definition = {k: v for k, v in stored.items() if k not in ("version", "updated_at")}
        definition.update(bands=renamed, review_days=review_days)
        engine = create_async_engine(database_url)
        try:
            async with engine.begin() as connection:
                await connection.execute(
                    update(RiskModelRecord)
                    .where(RiskModelRecord.tenant_id == uuid.UUID(admin.tenant_id))
                    .values(
                        definition=definition,
                        version=RiskModelRecord.version + 1,
                        updated_at=datetime.now(UTC),
                    )
                )
        finally:
            await engine.dispose()
        assert "GRAVE" in (await get(other, admin, f"{DASH}/stats"))["by_severity"]
        assert "GRAVE" in bands_of(await get(other, admin, f"{DASH}/matrix"))
        listed = await get(other, admin, RISKS, severity="GRAVE")  # a band of the new model
        assert listed["total"] == 0  # (the stored severities were not re-scored by that write)


async def test_stats_and_matrix_spend_no_statement_on_the_model(
    client: httpx.AsyncClient, admin: Account, other_worker: FastAPI, database_url: str
) -> None:
    await new_risk(client, admin)
    await three_bands(client, admin)
    async with client_for(other_worker) as other:
        for period in ("7d", "30d", "90d", "all"):
            await get(other, admin, f"{DASH}/stats", period=period)  # warm: membership, model
        await get(other, admin, f"{DASH}/matrix")
        for period in ("7d", "30d", "90d", "all"):
            with count_queries(other_worker) as statements:
                stats = await get(other, admin, f"{DASH}/stats", period=period)
            assert stats["total_risks"] == 1 and stats["by_severity"]["SEVERE"] == 1
            own = [s for s in statements if "set_config" not in s]
            assert len(own) == 2, (period, own)  # the day sums, and one row of the rest
            assert not [s for s in own if "definition" in s]
        with count_queries(other_worker) as statements:
            matrix = await get(other, admin, f"{DASH}/matrix")
        assert bands_of(matrix) == {"MINOR", "SERIOUS", "SEVERE"}
        own = [s for s in statements if "set_config" not in s]
        assert len(own) == 1, own
