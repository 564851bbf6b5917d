"""A bulk seed on PostgreSQL leaves the same side tables the write paths keep.

The seed writes with COPY, may turn the row triggers off for its transaction and, into a fresh
database, builds the secondary indexes after the load. Whichever path it takes (the tables'
owner or the application role without BYPASSRLS), afterwards the roll-ups, daily aggregates,
labels and search documents must equal what a rebuild from the risks (and the search trigger)
makes, every index the migrations created must be back, and later writes must still move the
roll-ups through the triggers.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import asyncpg

from openrisk.core.db.engine import create_database
from openrisk.core.db.migrate import upgrade
from openrisk.risks import labels, rollups
from openrisk.risks.history import rebuild_daily_stats
from openrisk.seed.bulk import seed_bulk
from tests.conftest import TEST_PASSWORD, create_pg_database, drop_pg_database, make_settings
from tests.integration.app_role import APP_ROLE, app_role_database

RISKS = 1_500
SIDE_TABLES = (
    "risk_day_counts",
    "risk_cell_counts",
    "mitigation_day_counts",
    "risk_level_cells",
    "risk_appetite_days",
    "risk_review_dates",
    "risk_daily_stats",
)
COUNTERS = (
    "n",
    "score_sum",
    "total_delta",
    "score_delta",
    "created",
    "mitigated",
    "residual_delta",
)
INDEXES = "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' ORDER BY 1"


def _dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://")


async def _snapshot(admin_url: str, tenant: uuid.UUID) -> dict[str, list[Any]]:
    conn = await asyncpg.connect(_dsn(admin_url))
    try:
        state: dict[str, list[Any]] = {}
        for table in SIDE_TABLES:
            rows = await conn.fetch(f"SELECT * FROM {table} WHERE tenant_id = $1", tenant)
            # a counter moved back to zero by a trigger equals no row at all
            counters = [c for c in COUNTERS if rows and c in set(rows[0].keys())]
            state[table] = sorted(tuple(r) for r in rows if any(r[c] for c in counters))
        state["labels"] = sorted(
            tuple(r)
            for r in await conn.fetch(
                "SELECT kind, value, risk_id FROM risk_labels WHERE tenant_id = $1", tenant
            )
        )
        state["search"] = sorted(
            tuple(r)
            for r in await conn.fetch(
                "SELECT risk_id, document::text FROM risk_search WHERE tenant_id = $1", tenant
            )
        )
        return state
    finally:
        await conn.close()


async def _seed(url: str) -> uuid.UUID:
    database = create_database(make_settings(url), pooled=False, bounded_statements=False)
    try:
        seeded = await seed_bulk(database, risks=RISKS, tenants=1, password=TEST_PASSWORD, seed=5)
        return seeded[0].tenant_id
    finally:
        await database.dispose()


async def _rebuild(admin_url: str, tenant: uuid.UUID) -> None:
    """Recompute every side table of the tenant the way the write paths would: the roll-ups,
    aggregates and labels from the risks, the search documents by the trigger (a no-op
    UPDATE of every title)."""
    database = create_database(make_settings(admin_url), pooled=False, bounded_statements=False)
    try:
        async with database.session() as session:
            await labels.rebuild(session, tenant_ids=[tenant])
            await rollups.rebuild(session, tenant_ids=[tenant])
            await rebuild_daily_stats(session, tenant_ids=[tenant])
            await session.commit()
    finally:
        await database.dispose()
    conn = await asyncpg.connect(_dsn(admin_url))
    try:
        await conn.execute("UPDATE risks SET title = title WHERE tenant_id = $1", tenant)
    finally:
        await conn.close()


async def _close_one_risk(url: str, tenant: uuid.UUID) -> dict[str, int]:
    """A later write, through the role that seeded: close one live ACTIVE risk; return the
    tenant's level cells of CLOSED risks (moved by the statement trigger)."""
    conn = await asyncpg.connect(_dsn(url))
    try:
        async with conn.transaction():
            await conn.execute("SELECT set_config('openrisk.tenant_id', $1, true)", str(tenant))
            await conn.execute(
                "UPDATE risks SET status = 'CLOSED' WHERE id = (SELECT id FROM risks "
                "WHERE tenant_id = $1 AND status = 'ACTIVE' AND deleted_at IS NULL LIMIT 1)",
                tenant,
            )
            rows = await conn.fetch(
                "SELECT basis, sum(n) AS n FROM risk_level_cells "
                "WHERE tenant_id = $1 AND status = 'CLOSED' GROUP BY basis",
                tenant,
            )
        return {r["basis"]: int(r["n"]) for r in rows}
    finally:
        await conn.close()


async def _indexes(admin_url: str) -> list[tuple[str, str]]:
    conn = await asyncpg.connect(_dsn(admin_url))
    try:
        return [tuple(r) for r in await conn.fetch(INDEXES)]
    finally:
        await conn.close()


def _check(url: str, admin_url: str) -> None:
    indexes = asyncio.run(_indexes(admin_url))
    tenant = asyncio.run(_seed(url))
    assert asyncio.run(_indexes(admin_url)) == indexes  # every index back, as migrated
    seeded = asyncio.run(_snapshot(admin_url, tenant))
    assert all(seeded[table] for table in seeded), {k: len(v) for k, v in seeded.items()}
    asyncio.run(_rebuild(admin_url, tenant))
    assert asyncio.run(_snapshot(admin_url, tenant)) == seeded

    before = asyncio.run(_snapshot(admin_url, tenant))["risk_level_cells"]
    closed_before = sum(r[-1] for r in before if r[4] == "CLOSED" and r[1] == "inherent")
    closed = asyncio.run(_close_one_risk(url, tenant))
    assert closed["inherent"] == closed["residual"] == closed_before + 1
    asyncio.run(_rebuild(admin_url, tenant))
    after = asyncio.run(_snapshot(admin_url, tenant))["risk_level_cells"]
    assert sum(r[-1] for r in after if r[4] == "CLOSED" and r[1] == "inherent") == closed_before + 1


def test_owner_seed_into_a_fresh_database_equals_a_rebuild() -> None:
    url = create_pg_database()
    try:
        upgrade(url)
        _check(url, url)
    finally:
        drop_pg_database(url)


def test_app_role_seed_equals_a_rebuild() -> None:
    with app_role_database() as url:
        _check(url, url.replace(f"://{APP_ROLE}@", "://postgres@"))
