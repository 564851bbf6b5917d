"""The demo tenant that ``make run`` creates on first start, so a new user has data to look at."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from openrisk.auth.models import User
from openrisk.auth.service import create_user, find_user_by_email
from openrisk.quantification.demo import quantify_sample
from openrisk.rbac.catalogue import ADMIN, ANALYST, MANAGER, VIEWER, PredefinedRole
from openrisk.seed.register import populate
from openrisk.tenants.service import add_member, create_tenant

DEMO_EMAIL = "demo@openrisk.local"
DEMO_TENANT = "Demo Corp"


@dataclass(frozen=True)
class DemoResult:
    created: bool
    email: str


async def ensure_demo(session: AsyncSession, *, password: str) -> DemoResult:
    """Create the demo user and tenant unless they exist; fill the register with sample data."""
    if await find_user_by_email(session, email=DEMO_EMAIL):
        return DemoResult(created=False, email=DEMO_EMAIL)
    user = await create_user(session, email=DEMO_EMAIL, password=password, full_name="Demo Admin")
    tenant = await create_tenant(
        session, name=DEMO_TENANT, owner_id=user.id, role_id=ADMIN.id, default=True, slug="demo"
    )
    await populate_demo_tenant(session, tenant_id=tenant.id, admin_id=user.id)
    await session.commit()
    return DemoResult(created=True, email=DEMO_EMAIL)


DEMO_TEAM: tuple[tuple[str, str, PredefinedRole], ...] = (
    ("alice.martin@demo.openrisk.local", "Alice Martin", MANAGER),
    ("bob.nguyen@demo.openrisk.local", "Bob Nguyen", ANALYST),
    ("carla.diaz@demo.openrisk.local", "Carla Díaz", ANALYST),
    ("dan.okafor@demo.openrisk.local", "Dan Okafor", VIEWER),
)
DEMO_RISKS = 180
DEMO_HISTORY_DAYS = 90


async def populate_demo_tenant(
    session: AsyncSession, *, tenant_id: uuid.UUID, admin_id: uuid.UUID
) -> None:
    """A realistic register: a small team, assets, 180 risks across every severity and status
    with mitigations and 90 days of history (so the dashboard timeline moves). No commit."""
    owners = [admin_id]
    for email, name, role in DEMO_TEAM:
        user = await find_user_by_email(session, email=email)
        if user is None:
            # team members own risks in the demo; they have no password (cannot sign in)
            user = User(email=email, full_name=name, password_hash=None)
            session.add(user)
            await session.flush()
        await add_member(session, tenant_id=tenant_id, user_id=user.id, role_id=role.id)
        if role is not VIEWER:
            owners.append(user.id)
    await populate(
        session,
        tenant_id=tenant_id,
        owners=owners,
        risks=DEMO_RISKS,
        span_days=DEMO_HISTORY_DAYS,
        seed=20240901,
    )
    await quantify_sample(session, tenant_id=tenant_id)
