"""The demo tenant that ``make run`` creates on first start (SPEC §1)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from openrisk.auth.service import create_user, find_user_by_email
from openrisk.rbac.catalogue import ADMIN
from openrisk.tenants.service import create_tenant

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


async def populate_demo_tenant(
    session: AsyncSession, *, tenant_id: object, admin_id: object
) -> None:
    """Sample register data; extended as the register grows (risks, assets, mitigations)."""
