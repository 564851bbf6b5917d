"""Tenants and memberships."""

from __future__ import annotations

import re
import uuid

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from openrisk.core.errors import NotFound
from openrisk.tenants.models import Membership, Tenant

_NON_SLUG = re.compile(r"[^a-z0-9]+")


def slugify(name: str) -> str:
    return _NON_SLUG.sub("-", name.lower()).strip("-")[:60] or "tenant"


async def _free_slug(session: AsyncSession, base: str) -> str:
    taken = set(await session.scalars(select(Tenant.slug).where(Tenant.slug.like(f"{base}%"))))
    if base not in taken:
        return base
    suffix = 2
    while f"{base}-{suffix}" in taken:
        suffix += 1
    return f"{base}-{suffix}"


async def create_tenant(
    session: AsyncSession,
    *,
    name: str,
    owner_id: uuid.UUID,
    role_id: uuid.UUID,
    default: bool = False,
    slug: str | None = None,
) -> Tenant:
    """Create a tenant and make ``owner_id`` its member with ``role_id``."""
    tenant = Tenant(
        name=name, slug=await _free_slug(session, slug or slugify(name)), owner_id=owner_id
    )
    session.add(tenant)
    await session.flush()
    session.add(
        Membership(user_id=owner_id, tenant_id=tenant.id, role_id=role_id, is_default=default)
    )
    await session.flush()
    return tenant


async def find_tenant(session: AsyncSession, *, name: str) -> Tenant | None:
    return await session.scalar(select(Tenant).where(Tenant.name == name))


async def add_member(
    session: AsyncSession, *, tenant_id: uuid.UUID, user_id: uuid.UUID, role_id: uuid.UUID
) -> Membership:
    has_default = await session.scalar(
        select(Membership.id).where(Membership.user_id == user_id, Membership.is_default.is_(True))
    )
    membership = Membership(
        user_id=user_id, tenant_id=tenant_id, role_id=role_id, is_default=has_default is None
    )
    session.add(membership)
    await session.flush()
    return membership


async def list_user_tenants(
    session: AsyncSession, *, user_id: uuid.UUID, offset: int, limit: int
) -> tuple[list[Tenant], int]:
    member_of = select(Membership.tenant_id).where(Membership.user_id == user_id)
    total = await session.scalar(select(func.count()).select_from(member_of.subquery()))
    tenants = await session.scalars(
        select(Tenant)
        .where(Tenant.id.in_(member_of))
        .order_by(Tenant.name)
        .offset(offset)
        .limit(limit)
    )
    return list(tenants), int(total or 0)


async def get_tenant(session: AsyncSession, *, tenant_id: uuid.UUID) -> Tenant:
    tenant = await session.get(Tenant, tenant_id)
    if tenant is None:
        raise NotFound("Tenant not found.")
    return tenant
