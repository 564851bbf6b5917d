"""The demo tenant and `openrisk seed --risks N --tenants T` produce a realistic, consistent
register (history, roll-ups, labels and search side tables all agree)."""

from __future__ import annotations

import uuid
from collections import Counter

import httpx
from fastapi import FastAPI
from sqlalchemy import func, select

from openrisk.risks import labels, rollups
from openrisk.risks.models import Risk, RiskLabel
from openrisk.seed.bulk import seed_bulk
from openrisk.seed.demo import DEMO_RISKS, populate_demo_tenant
from tests.api.test_risks_helpers import RISKS
from tests.conftest import TEST_PASSWORD, Account, client_for


async def _label_rows(app: FastAPI, tenant: uuid.UUID) -> list[tuple[str, str, uuid.UUID]]:
    async with app.state.db.session() as session:
        rows = await session.execute(
            select(RiskLabel.kind, RiskLabel.value, RiskLabel.risk_id).where(
                RiskLabel.tenant_id == tenant
            )
        )
        return sorted(tuple(r) for r in rows)


async def test_demo_tenant_is_realistic(
    app: FastAPI, client: httpx.AsyncClient, admin: Account
) -> None:
    tenant = uuid.UUID(admin.tenant_id)
    async with app.state.db.session() as session:
        await populate_demo_tenant(session, tenant_id=tenant, admin_id=uuid.UUID(admin.user_id))
        await session.commit()
        live = list(
            await session.execute(
                select(Risk.severity, Risk.status).where(
                    Risk.tenant_id == tenant, Risk.deleted_at.is_(None)
                )
            )
        )
    assert len(live) >= 150
    assert set(Counter(s for s, _ in live)) == {"LOW", "MEDIUM", "HIGH", "CRITICAL"}
    assert set(Counter(st for _, st in live)) == {
        "DRAFT",
        "ACTIVE",
        "MITIGATED",
        "ACCEPTED",
        "CLOSED",
    }
    stats = (await client.get("/api/v1/dashboard/stats", headers=admin.headers)).json()
    assert stats["total_risks"] == len(live)
    assert stats["mitigations"]["total"] > 50
    listed = (await client.get(RISKS, headers=admin.headers)).json()
    assert listed["total"] == len(live) <= DEMO_RISKS
    points = (await client.get("/api/v1/dashboard/timeline?days=90", headers=admin.headers)).json()[
        "points"
    ]
    assert len(points) == 90
    assert points[0]["total"] < points[-1]["total"] == len(live)
    assert sum(1 for p in points if p["created"]) > 30  # the register grew over the quarter
    assert sum(p["mitigated"] for p in points) > 0
    found = (await client.get(f"{RISKS}/search?q=ransomware", headers=admin.headers)).json()
    assert found["total"] > 0
    matrix = (await client.get("/api/v1/dashboard/matrix", headers=admin.headers)).json()
    assert matrix["total"] == len(live)

    # the side tables the seed wrote in bulk equal what the write paths maintain
    seeded_labels = await _label_rows(app, tenant)
    async with app.state.db.session() as session:
        await labels.rebuild(session, tenant_ids=[tenant])
        await rollups.rebuild(session, tenant_ids=[tenant])
        await session.commit()
    assert await _label_rows(app, tenant) == seeded_labels
    assert (await client.get("/api/v1/dashboard/stats", headers=admin.headers)).json() == stats
    tagged = (await client.get(f"{RISKS}?tag=ransomware", headers=admin.headers)).json()
    async with app.state.db.session() as session:
        expected = sum(
            1
            for tags in await session.scalars(
                select(Risk.tags).where(Risk.tenant_id == tenant, Risk.deleted_at.is_(None))
            )
            if "ransomware" in tags
        )
    assert tagged["total"] == expected > 0


async def test_bulk_seed(app: FastAPI) -> None:
    seeded = await seed_bulk(app.state.db, risks=250, tenants=2, password=TEST_PASSWORD, seed=7)
    assert len(seeded) == 2
    async with app.state.db.session() as session:
        for tenant in seeded:
            count = await session.scalar(
                select(func.count()).select_from(Risk).where(Risk.tenant_id == tenant.tenant_id)
            )
            assert count == 250
    # the seeded Admin can sign in and sees only its tenant
    async with client_for(app) as http:
        login = await http.post(
            "/api/v1/auth/login",
            json={"email": seeded[0].admin_email, "password": TEST_PASSWORD},
        )
        assert login.status_code == 200, login.text
        headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
        stats = (await http.get("/api/v1/dashboard/stats", headers=headers)).json()
        assert 230 <= stats["total_risks"] <= 250  # a few seeded risks are deleted
        listed = (await http.get(f"{RISKS}?page_size=100", headers=headers)).json()
        assert listed["total"] == stats["total_risks"]
