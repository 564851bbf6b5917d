"""Dashboard: stats per period, matrix, timeline from history (one point per day), top risks."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta

import httpx
from fastapi import FastAPI
from sqlalchemy import select, update

from openrisk.mitigations.models import MitigationDayCount
from openrisk.rbac.catalogue import VIEWER
from openrisk.risks import rollups
from openrisk.risks.history import rebuild_daily_stats
from openrisk.risks.models import (
    Risk,
    RiskAppetiteDay,
    RiskCellCount,
    RiskDailyStat,
    RiskDayCount,
    RiskHistory,
    RiskLevelCell,
    RiskReviewDate,
)
from tests.api.test_risks_helpers import RISKS, assert_problem, member, new_risk
from tests.conftest import Account, register

DASH = "/api/v1/dashboard"


async def test_stats_shape_and_values(client: httpx.AsyncClient, admin: Account) -> None:
    empty = (await client.get(f"{DASH}/stats", headers=admin.headers)).json()
    assert empty["total_risks"] == 0
    assert empty["global_risk_score"] == 100
    critical = await new_risk(client, admin, impact=5, probability=5, status="ACTIVE")  # 25
    await new_risk(client, admin, impact=4, probability=4, status="MITIGATED")  # 16 HIGH
    await new_risk(client, admin, impact=3, probability=4)  # 12 MEDIUM DRAFT
    await new_risk(client, admin, impact=1, probability=3, status="CLOSED")  # 3 LOW
    for title, status, due in (
        ("a", "PLANNED", (date.today() - timedelta(days=1)).isoformat()),
        ("b", "IN_PROGRESS", None),
        ("c", "DONE", None),
        ("d", "CANCELLED", None),
    ):
        response = await client.post(
            f"{RISKS}/{critical['id']}/mitigations",
            json={"title": title, "status": status, "due_date": due},
            headers=admin.headers,
        )
        assert response.status_code == 201
    stats = (await client.get(f"{DASH}/stats?period=30d", headers=admin.headers)).json()
    assert stats["total_risks"] == 4
    assert stats["by_severity"] == {"CRITICAL": 1, "HIGH": 1, "MEDIUM": 1, "LOW": 1}
    assert stats["by_status"] == {
        "DRAFT": 1,
        "ACTIVE": 1,
        "MITIGATED": 1,
        "ACCEPTED": 0,
        "CLOSED": 1,
    }
    assert stats["high_risks"] == 2
    assert stats["mitigated_risks"] == 1
    assert stats["mean_score"] == 14.0  # (25 + 16 + 12 + 3) / 4
    assert stats["global_risk_score"] == 44  # 100 − floor(56)
    assert stats["mitigations"] == {
        "total": 4,
        "planned": 1,
        "in_progress": 1,
        "done": 1,
        "cancelled": 1,
        "overdue": 1,
        "completion_rate": 33.3,
    }
    assert_problem(
        await client.get(f"{DASH}/stats?period=1y", headers=admin.headers), 422, "period"
    )


async def test_period_filters_by_creation(
    app: FastAPI, client: httpx.AsyncClient, admin: Account
) -> None:
    old = await new_risk(client, admin)
    await new_risk(client, admin)
    async with app.state.db.session() as session:
        await session.execute(
            update(Risk)
            .where(Risk.id == uuid.UUID(old["id"]))
            .values(created_at=datetime.now(UTC) - timedelta(days=40))
            .execution_options(synchronize_session=False)
        )
        await rollups.rebuild(session, tenant_ids=[uuid.UUID(admin.tenant_id)])
        await session.commit()
    counts = {}
    for period in ("7d", "30d", "90d", "all"):
        body = (await client.get(f"{DASH}/stats?period={period}", headers=admin.headers)).json()
        counts[period] = body["total_risks"]
    assert counts == {"7d": 1, "30d": 1, "90d": 2, "all": 2}


async def test_timeline_comes_from_history(
    app: FastAPI, client: httpx.AsyncClient, admin: Account
) -> None:
    first = await new_risk(client, admin, impact=2, probability=2)  # 4
    second = await new_risk(client, admin, impact=4, probability=5)  # 20
    third = await new_risk(client, admin, impact=3, probability=3)  # 9
    await client.patch(
        f"{RISKS}/{first['id']}", json={"status": "MITIGATED"}, headers=admin.headers
    )
    await client.delete(f"{RISKS}/{third['id']}", headers=admin.headers)

    tenant = uuid.UUID(admin.tenant_id)
    async with app.state.db.session() as session:
        incremental = sorted(
            (
                r.day,
                r.total_delta,
                float(r.score_delta),
                float(r.residual_delta),
                r.created,
                r.mitigated,
            )
            for r in await session.scalars(
                select(RiskDailyStat).where(RiskDailyStat.tenant_id == tenant)
            )
        )
        await rebuild_daily_stats(session, tenant_ids=[tenant])
        await session.commit()
        rebuilt = sorted(
            (
                r.day,
                r.total_delta,
                float(r.score_delta),
                float(r.residual_delta),
                r.created,
                r.mitigated,
            )
            for r in await session.scalars(
                select(RiskDailyStat).where(RiskDailyStat.tenant_id == tenant)
            )
        )
    assert incremental == rebuilt

    today = datetime.now(UTC).date()
    body = (await client.get(f"{DASH}/timeline?days=7", headers=admin.headers)).json()
    points = body["points"]
    assert len(points) == 7
    assert [p["date"] for p in points] == [
        (today - timedelta(days=6 - i)).isoformat() for i in range(7)
    ]
    assert points[-1] == {
        "date": today.isoformat(),
        "total": 2,
        "mean_score": 12.0,
        "mean_residual_score": 12.0,
        "created": 3,
        "mitigated": 1,
    }
    assert all(p["total"] == 0 for p in points[:-1])

    # move the first risk's creation 5 days back in its history: the series follows
    async with app.state.db.session() as session:
        await session.execute(
            update(RiskHistory)
            .where(RiskHistory.risk_id == uuid.UUID(first["id"]), RiskHistory.action == "CREATE")
            .values(created_at=datetime.now(UTC) - timedelta(days=5))
            .execution_options(synchronize_session=False)
        )
        await rebuild_daily_stats(session, tenant_ids=[tenant])
        await session.commit()
    # history was rewritten behind the API's back: no write event told the cache
    await app.state.response_cache.invalidate(str(tenant), "risks")
    points = (await client.get(f"{DASH}/timeline?days=7", headers=admin.headers)).json()["points"]
    assert [p["total"] for p in points] == [0, 1, 1, 1, 1, 1, 2]
    assert [p["created"] for p in points] == [0, 1, 0, 0, 0, 0, 2]
    assert points[1]["mean_score"] == 4.0
    assert second["score"] == 20.0

    assert len((await client.get(f"{DASH}/timeline", headers=admin.headers)).json()["points"]) == 30
    full = await client.get(f"{DASH}/timeline?days=365", headers=admin.headers)
    assert len(full.json()["points"]) == 365
    for bad in ("0", "366", "x"):
        assert_problem(
            await client.get(f"{DASH}/timeline?days={bad}", headers=admin.headers), 422, "days"
        )


async def test_top_risks(client: httpx.AsyncClient, admin: Account) -> None:
    a = await new_risk(client, admin, impact=5, probability=5, status="ACTIVE")
    b = await new_risk(client, admin, impact=4, probability=5)
    await new_risk(client, admin, impact=5, probability=4, status="CLOSED")
    c = await new_risk(client, admin, impact=1, probability=1)
    body = (await client.get(f"{DASH}/top-risks?limit=3", headers=admin.headers)).json()
    assert [r["id"] for r in body["items"]] == [a["id"], b["id"], c["id"]]
    assert_problem(
        await client.get(f"{DASH}/top-risks?limit=0", headers=admin.headers), 422, "limit"
    )


async def test_dashboard_permissions_and_isolation(
    app: FastAPI, client: httpx.AsyncClient, admin: Account
) -> None:
    await new_risk(client, admin)
    viewer = await member(app, client, admin, VIEWER)
    assert (await client.get(f"{DASH}/stats", headers=viewer.in_tenant())).json()[
        "total_risks"
    ] == 1
    outsider = await register(client, tenant_name="Dash elsewhere")
    assert (await client.get(f"{DASH}/stats", headers=outsider.headers)).json()["total_risks"] == 0
    matrix = (await client.get(f"{DASH}/matrix", headers=outsider.headers)).json()
    assert matrix["total"] == 0
    assert len(matrix["cells"]) == 25 and matrix["basis"] == "current"
    assert_problem(
        await client.get(f"{DASH}/stats", headers=outsider.in_tenant(admin.tenant_id)), 404
    )
    assert_problem(await client.get(f"{DASH}/stats"), 401)


async def _rollup_rows(app: FastAPI, tenant: uuid.UUID) -> dict[str, list[tuple[object, ...]]]:
    async with app.state.db.session() as session:
        days = await session.scalars(select(RiskDayCount).where(RiskDayCount.tenant_id == tenant))
        cells = await session.scalars(
            select(RiskCellCount).where(RiskCellCount.tenant_id == tenant)
        )
        mitigations = await session.scalars(
            select(MitigationDayCount).where(MitigationDayCount.tenant_id == tenant)
        )
        levels = await session.scalars(
            select(RiskLevelCell).where(RiskLevelCell.tenant_id == tenant)
        )
        appetite = await session.scalars(
            select(RiskAppetiteDay).where(RiskAppetiteDay.tenant_id == tenant)
        )
        reviews = await session.scalars(
            select(RiskReviewDate).where(RiskReviewDate.tenant_id == tenant)
        )
        return {
            "reviews": sorted((r.day, r.n) for r in reviews if r.n),
            "levels": sorted(
                (r.basis, r.impact, r.probability, r.status, r.n) for r in levels if r.n
            ),
            "appetite": sorted(
                (r.day, bool(r.above), bool(r.residual_above), r.n) for r in appetite if r.n
            ),
            "days": sorted(
                (r.day, r.status, r.severity, r.n, float(r.score_sum)) for r in days if r.n
            ),
            "cells": sorted((r.impact, r.probability, r.status, r.n) for r in cells if r.n),
            "mitigations": sorted((r.day, r.status, r.n) for r in mitigations if r.n),
        }


async def test_rollups_follow_every_write(
    app: FastAPI, client: httpx.AsyncClient, admin: Account
) -> None:
    """Create, update, rescore, bulk, import, delete: the incremental roll-ups equal a rebuild
    from the tables."""
    asset = (
        await client.post(
            "/api/v1/assets",
            json={"name": "DB", "type": "database", "criticality": "LOW"},
            headers=admin.headers,
        )
    ).json()
    a = await new_risk(client, admin, impact=4, probability=4, asset_ids=[asset["id"]])
    b = await new_risk(client, admin, impact=2, probability=3, status="ACTIVE")
    c = await new_risk(client, admin, impact=5, probability=5)
    await client.patch(f"{RISKS}/{a['id']}", json={"probability": 2}, headers=admin.headers)
    await client.patch(
        f"/api/v1/assets/{asset['id']}", json={"criticality": "CRITICAL"}, headers=admin.headers
    )
    for title, status in (("m1", "PLANNED"), ("m2", "DONE")):
        await client.post(
            f"{RISKS}/{b['id']}/mitigations",
            json={"title": title, "status": status},
            headers=admin.headers,
        )
    m3 = (
        await client.post(
            f"{RISKS}/{c['id']}/mitigations", json={"title": "m3"}, headers=admin.headers
        )
    ).json()
    await client.patch(
        f"/api/v1/mitigations/{m3['id']}", json={"status": "IN_PROGRESS"}, headers=admin.headers
    )
    await client.post(
        f"{RISKS}/bulk",
        json={
            "action": "update",
            "ids": [a["id"], b["id"]],
            "changes": {"status": "MITIGATED", "impact": 1},
        },
        headers=admin.headers,
    )
    await client.post(
        f"{RISKS}/import",
        files={"file": ("r.csv", b"title,impact,probability,status\nX,3,3,ACTIVE\n", "text/csv")},
        headers=admin.headers,
    )
    await client.delete(f"{RISKS}/{c['id']}", headers=admin.headers)
    await client.delete(f"/api/v1/assets/{asset['id']}", headers=admin.headers)

    tenant = uuid.UUID(admin.tenant_id)
    incremental = await _rollup_rows(app, tenant)
    async with app.state.db.session() as session:
        await rollups.rebuild(session, tenant_ids=[tenant])
        await session.commit()
    assert incremental == await _rollup_rows(app, tenant)
    stats = (await client.get(f"{DASH}/stats", headers=admin.headers)).json()
    assert stats["total_risks"] == 3
    assert stats["by_status"]["MITIGATED"] == 2
    assert stats["mitigations"]["total"] == 2  # m3 went with its risk
    listed = (await client.get(f"{RISKS}?status=MITIGATED", headers=admin.headers)).json()
    assert listed["total"] == 2
    matrix = (await client.get(f"{DASH}/matrix", headers=admin.headers)).json()
    assert matrix["total"] == 3
