"""Tenants and memberships."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from openrisk.audit.models import AuditEvent
from openrisk.audit.service import diff, record
from openrisk.config import Settings, TenantCreation
from openrisk.core.context import Principal, RequestContext
from openrisk.core.db.atomic import flush_or_conflict, insert_unless_exists
from openrisk.core.errors import Conflict, Forbidden, NotFound, TooManyRequests
from openrisk.core.ids import new_id
from openrisk.core.ratelimit import RateLimits, parse_limits
from openrisk.core.uow import UnitOfWork
from openrisk.rbac.catalogue import ADMIN
from openrisk.rbac.models import Role
from openrisk.tenants.models import Membership, Tenant
from openrisk.tokens.models import ApiToken

_NON_SLUG = re.compile(r"[^a-z0-9]+")


def slugify(name: str) -> str:
    return _NON_SLUG.sub("-", name.lower()).strip("-")[:60] or "tenant"


SLUG_ATTEMPTS = 20


def _slug_candidates(base: str, taken: set[str]) -> list[str]:
    """``base``, then ``base-2``, ``base-3``… skipping those known to be taken."""
    candidates = [base] if base not in taken else []
    suffix = 2
    while len(candidates) < SLUG_ATTEMPTS:
        if f"{base}-{suffix}" not in taken:
            candidates.append(f"{base}-{suffix}")
        suffix += 1
    return candidates


async def _claim_slug(
    session: AsyncSession, *, name: str, owner_id: uuid.UUID, slug: str | None
) -> uuid.UUID:
    """Insert the tenant under a free slug; the unique index decides between parallel writers.

    A slug the caller asked for is that slug or a 409; a slug derived from the name takes the
    next free suffix, even when another request took the previous one a moment ago.
    """
    if slug is not None:
        candidates = [slug]
    else:
        base = slugify(name)
        taken = set(await session.scalars(select(Tenant.slug).where(Tenant.slug.like(f"{base}%"))))
        candidates = _slug_candidates(base, taken)
    for candidate in candidates:
        tenant_id = new_id()
        values = {
            "id": tenant_id,
            "name": name,
            "slug": candidate,
            "owner_id": owner_id,
            "status": "active",
            "settings": {},
        }
        if await insert_unless_exists(session, Tenant, values, unique=["slug"]):
            return tenant_id
    if slug is not None:
        raise Conflict(
            f"The slug {slug!r} is taken.",
            errors=[{"field": "slug", "message": "is taken", "type": "conflict"}],
        )
    raise Conflict("No free slug for this name; choose a slug.")


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
    tenant_id = await _claim_slug(session, name=name, owner_id=owner_id, slug=slug)
    session.add(
        Membership(user_id=owner_id, tenant_id=tenant_id, role_id=role_id, is_default=default)
    )
    await session.flush()
    return await get_tenant(session, tenant_id=tenant_id)


async def create_tenant_for(
    *,
    uow: UnitOfWork,
    principal: Principal,
    settings: Settings,
    limits: RateLimits,
    name: str,
    slug: str | None,
) -> Tenant:
    """POST /tenants: who may create tenants is a setting, and each user creates few.

    An API token acts in its own tenant only, so it never creates another.
    """
    session = uow.session
    if principal.token_tenant_id is not None:
        raise Forbidden("An API token acts in its own tenant only; sign in to create tenants.")
    if settings.tenant_creation_policy is TenantCreation.SUPERUSER and not principal.is_superuser:
        raise Forbidden("Only platform operators can create tenants on this server.")
    exceeded = await limits.hit(
        parse_limits(settings.tenant_creation_limit), "tenant-create", str(principal.user_id)
    )
    if exceeded is not None:
        raise TooManyRequests(
            f"Too many tenants created; retry in {exceeded.retry_after} s.",
            headers=exceeded.headers,
        )
    tenant = await create_tenant(
        session, name=name, owner_id=principal.user_id, role_id=ADMIN.id, slug=slug
    )
    await uow.commit()
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
    await flush_or_conflict(session, "This person is already a member of the tenant.")
    return membership


async def list_user_tenants(
    session: AsyncSession, *, principal: Principal, offset: int, limit: int
) -> tuple[list[Tenant], int]:
    """The caller's tenants; an API token's caller sees only the token's own tenant."""
    member_of = select(Membership.tenant_id).where(Membership.user_id == principal.user_id)
    if principal.token_tenant_id is not None:
        member_of = member_of.where(Membership.tenant_id == principal.token_tenant_id)
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


async def update_tenant(
    *,
    uow: UnitOfWork,
    context: RequestContext,
    name: str | None,
    status: str | None,
    settings: dict[str, Any] | None,
) -> Tenant:
    session = uow.session
    tenant = await get_tenant(session, tenant_id=context.tenant_id)
    before = {"name": tenant.name, "status": tenant.status, "settings": tenant.settings}
    if name is not None:
        tenant.name = name
    if status is not None:
        tenant.status = status
    if settings is not None:
        tenant.settings = settings
    after = {"name": tenant.name, "status": tenant.status, "settings": tenant.settings}
    record(
        session,
        context=context,
        action="tenant.update",
        resource_type="tenant",
        resource_id=tenant.id,
        changes=diff(before, after),
    )
    if status is not None:  # a suspension must bite on the next request everywhere
        uow.authorization_changed()
    await uow.commit()
    return tenant


async def delete_tenant(*, uow: UnitOfWork, context: RequestContext) -> None:
    """Delete the tenant and, by cascade, everything it owns (its audit trail included)."""
    session = uow.session
    tenant = await get_tenant(session, tenant_id=context.tenant_id)
    await session.delete(tenant)
    uow.authorization_changed()
    await uow.commit()


async def tenant_stats(session: AsyncSession, *, context: RequestContext) -> dict[str, int]:
    tid = context.tenant_id
    now = datetime.now(UTC)
    counts = {
        "members": select(func.count()).where(Membership.tenant_id == tid),
        "custom_roles": select(func.count()).where(Role.tenant_id == tid),
        "active_tokens": select(func.count()).where(
            ApiToken.tenant_id == tid,
            ApiToken.revoked_at.is_(None),
            (ApiToken.expires_at.is_(None)) | (ApiToken.expires_at > now),
        ),
        "audit_events": select(func.count()).where(AuditEvent.tenant_id == tid),
    }
    row = (await session.execute(select(*(q.scalar_subquery() for q in counts.values())))).one()
    return dict(zip(counts, (int(v) for v in row), strict=True))
