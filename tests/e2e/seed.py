"""Data for the browser tests: the demo tenant (``openrisk seed``), topped up with enough
register data to fill every page, a second tenant, and people with other roles.

Everything is written through the application's services, as the API would.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from openrisk.app import create_app
from openrisk.assets import service as assets
from openrisk.assets.schemas import AssetCreate
from openrisk.auth.service import create_user, find_user_by_email
from openrisk.config import Settings
from openrisk.core.context import RequestContext
from openrisk.core.uow import UnitOfWork
from openrisk.marketplace import service as market
from openrisk.mitigations import service as mitigations
from openrisk.mitigations.schemas import MitigationCreate, SubActionCreate
from openrisk.rbac.catalogue import ADMIN, ANALYST, VIEWER
from openrisk.rbac.service import resolve_membership
from openrisk.risks import commands
from openrisk.risks.models import Risk
from openrisk.risks.schemas import RiskCreate
from openrisk.seed.demo import DEMO_EMAIL, ensure_demo
from openrisk.tenants.service import add_member, create_tenant

PASSWORD = "browser-test-password"
VIEWER_EMAIL = "viewer@example.com"
ANALYST_EMAIL = "analyst@example.com"
OWNER_EMAIL = "owner@example.com"  # an Analyst no other test changes (the acceptance test's)
OTHER_TENANT = "Globex Industries"
OTHER_RISK = "Globex-only supplier insolvency"
MIN_DEMO_RISKS = 60

TITLES = (
    "Ransomware on file servers",
    "Phishing of finance staff",
    "Cloud storage bucket left public",
    "Key supplier insolvency",
    "Data centre power outage",
    "Unpatched VPN appliance",
    "GDPR breach notification missed",
    "Insider exfiltration of customer data",
    "DDoS on the customer portal",
    "Loss of the only DBA",
    "Expired TLS certificates",
    "Backup restore never tested",
)
# ACCEPTED is reached through the acceptance workflow only (an approver other than the owner)
STATUSES = ("ACTIVE", "ACTIVE", "DRAFT", "MITIGATED", "ACTIVE", "CLOSED")


@dataclass(frozen=True)
class SeedInfo:
    demo_tenant_id: str
    other_tenant_id: str
    analyst_id: str


async def _context(session: AsyncSession, user_id: uuid.UUID, tenant: str) -> RequestContext:
    membership = await resolve_membership(session, user_id=user_id, tenant_ref=tenant)
    return membership.context()


async def _user(session: AsyncSession, email: str, name: str) -> uuid.UUID:
    found = await find_user_by_email(session, email=email)
    if found is not None:
        return found.id
    user = await create_user(session, email=email, password=PASSWORD, full_name=name)
    return user.id


async def seed(settings: Settings) -> SeedInfo:
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        database = app.state.db
        async with database.session() as session:
            await ensure_demo(session, password=PASSWORD)
        async with database.session() as session:
            demo = await find_user_by_email(session, email=DEMO_EMAIL)
            assert demo is not None
            ctx = await _context(session, demo.id, "demo")
            count = await session.scalar(
                select(func.count()).where(Risk.tenant_id == ctx.tenant_id)
            )
            if int(count or 0) < MIN_DEMO_RISKS:
                await _register_data(session, ctx, MIN_DEMO_RISKS - int(count or 0))
            viewer = await _user(session, VIEWER_EMAIL, "Vera Viewer")
            analyst = await _user(session, ANALYST_EMAIL, "Andy Analyst")
            owner = await _user(session, OWNER_EMAIL, "Olga Owner")
            for user_id, role in ((viewer, VIEWER), (analyst, ANALYST), (owner, ANALYST)):
                await add_member(session, tenant_id=ctx.tenant_id, user_id=user_id, role_id=role.id)
            other = await create_tenant(
                session, name=OTHER_TENANT, owner_id=demo.id, role_id=ADMIN.id
            )
            await session.commit()
            other_ctx = await _context(session, demo.id, str(other.id))
            await commands.create_risk(
                uow=UnitOfWork(session),
                context=other_ctx,
                data=RiskCreate(title=OTHER_RISK, impact=2, probability=4, status="ACTIVE"),
            )
            await market.install_app(
                uow=UnitOfWork(session),
                context=ctx,
                runtime=app.state.marketplace,
                connector_id="csv-import",
                name="Quarterly CSV import",
                configuration={"dry_run": True},
                auto_sync=False,
                sync_interval_s=3600,
            )
            await session.commit()
            return SeedInfo(
                demo_tenant_id=str(ctx.tenant_id),
                other_tenant_id=str(other.id),
                analyst_id=str(analyst),
            )


async def _register_data(session: AsyncSession, ctx: RequestContext, n: int) -> None:
    made = []
    for name, kind, crit in (
        ("Customer portal", "application", "CRITICAL"),
        ("HR database", "database", "HIGH"),
        ("Office network", "network", "MEDIUM"),
        ("Marketing site", "application", "LOW"),
    ):
        made.append(
            await assets.create_asset(
                uow=UnitOfWork(session),
                context=ctx,
                data=AssetCreate(name=name, type=kind, criticality=crit),
            )
        )
    first = None
    for i in range(n):
        record = await commands.create_risk(
            uow=UnitOfWork(session),
            context=ctx,
            data=RiskCreate(
                title=f"{TITLES[i % len(TITLES)]} #{i + 1}",
                description="Seeded for the browser tests.",
                impact=1 + (i * 7) % 5,
                probability=1 + (i * 2 + i // 5) % 5,
                status=STATUSES[i % len(STATUSES)],
                tags=["seed", ("cloud", "people", "supplier")[i % 3]],
                frameworks=["ISO 27001"] if i % 2 else [],
                asset_ids=[made[i % len(made)].id] if i % 3 == 0 else [],
                review_date=date.today() + timedelta(days=30 + i),
            ),
        )
        first = first or record
    assert first is not None
    await mitigations.create_mitigation(
        uow=UnitOfWork(session),
        context=ctx,
        risk_id=first.risk.id,
        data=MitigationCreate(
            title="Offline, immutable backups",
            assignee_id=ctx.user_id,
            due_date=datetime.now(UTC).date() + timedelta(days=14),
            cost=2,
            effort_days=5,
            sub_actions=[
                SubActionCreate(title="Buy backup appliance", completed=True),
                SubActionCreate(title="Weekly restore test"),
            ],
        ),
    )
