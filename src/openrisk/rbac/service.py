"""Resolving who the caller is in a tenant and what the caller may do there."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from functools import lru_cache

from sqlalchemy import ColumnElement, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from openrisk.auth.models import User
from openrisk.core.context import Principal, RequestContext, RequestOrigin
from openrisk.core.errors import Forbidden, NotFound, Unauthorized
from openrisk.rbac.catalogue import is_own_scoped, split_grant
from openrisk.rbac.models import Role
from openrisk.tenants.models import Membership, Tenant


@lru_cache(maxsize=4096)
def grant_sets(grants: tuple[str, ...]) -> tuple[frozenset[str], frozenset[str]]:
    """Split grants into (codes on every row, codes on the caller's own rows only).

    Memoised: it runs on every request, and there are only as many grant sets as roles.
    An "own" grant on a code without that scope (stored before the catalogue refused them)
    grants nothing: it fails closed instead of widening to every row.
    """
    full: set[str] = set()
    own: set[str] = set()
    for grant in grants:
        code, scope = split_grant(grant)
        if scope is None:
            full.add(code)
        elif is_own_scoped(grant):
            own.add(code)
    return frozenset(full), frozenset(own - full)


@dataclass(frozen=True, slots=True)
class ResolvedMembership:
    """What a request context is made of; cacheable (no ORM objects)."""

    user_id: uuid.UUID
    email: str
    is_superuser: bool
    tenant_id: uuid.UUID
    tenant_slug: str
    tenant_status: str
    role_id: uuid.UUID
    role_name: str
    role_level: int
    grants: tuple[str, ...]

    def context(
        self,
        *,
        token_id: uuid.UUID | None = None,
        origin: RequestOrigin | None = None,
        allow_suspended: bool = False,
    ) -> RequestContext:
        if self.tenant_status != "active" and not allow_suspended:
            raise Forbidden("This tenant is suspended.")
        full, own = grant_sets(self.grants)
        return RequestContext(
            principal=Principal(
                user_id=self.user_id,
                email=self.email,
                is_superuser=self.is_superuser,
                token_id=token_id,
                token_tenant_id=self.tenant_id if token_id is not None else None,
            ),
            tenant_id=self.tenant_id,
            tenant_slug=self.tenant_slug,
            role_id=self.role_id,
            role_name=self.role_name,
            role_level=self.role_level,
            permissions=full,
            own_permissions=own,
            origin=origin or RequestOrigin(),
        )


def _tenant_filter(tenant_ref: str) -> ColumnElement[bool]:
    try:
        return or_(Tenant.id == uuid.UUID(tenant_ref), Tenant.slug == tenant_ref)
    except ValueError:
        return Tenant.slug == tenant_ref


async def resolve_membership(
    session: AsyncSession, *, user_id: uuid.UUID, tenant_ref: str | None
) -> ResolvedMembership:
    """One query: the user, the named (or default) tenant, the membership and its role.

    A user who is not a member of the named tenant gets NotFound, so that the tenant's
    existence is not revealed.
    """
    query = (
        select(
            User.email,
            User.is_superuser,
            Tenant.id,
            Tenant.slug,
            Tenant.status,
            Role.id,
            Role.name,
            Role.level,
            Role.permissions,
        )
        .select_from(Membership)
        .join(User, User.id == Membership.user_id)
        .join(Tenant, Tenant.id == Membership.tenant_id)
        .join(Role, Role.id == Membership.role_id)
        .where(Membership.user_id == user_id, User.is_active.is_(True))
    )
    if tenant_ref:
        query = query.where(_tenant_filter(tenant_ref))
    else:
        query = query.order_by(Membership.is_default.desc(), Membership.created_at).limit(1)
    row = (await session.execute(query)).first()
    if row is None:
        active = await session.scalar(
            select(User.id).where(User.id == user_id, User.is_active.is_(True))
        )
        if active is None:
            raise Unauthorized("Unknown or inactive user.")
        raise NotFound("Tenant not found.")
    email, is_superuser, tenant_id, slug, status, role_id, role_name, level, grants = row
    return ResolvedMembership(
        user_id=user_id,
        email=email,
        is_superuser=is_superuser,
        tenant_id=tenant_id,
        tenant_slug=slug,
        tenant_status=status,
        role_id=role_id,
        role_name=role_name,
        role_level=level,
        grants=tuple(grants),
    )


async def act_as_requester(
    session: AsyncSession, *, user_id: uuid.UUID | None, tenant_id: uuid.UUID, gone: str
) -> RequestContext:
    """The context of the member who queued a background job, with the session bound to the
    tenant, so the job runs with that member's permissions as they are now (NotFound naming
    ``gone`` when the member was deleted; NotFound or Forbidden when they left or lost access)."""
    from openrisk.core.db.tenancy import bind_session_to_tenant

    if user_id is None:
        raise NotFound(gone)
    membership = await resolve_membership(session, user_id=user_id, tenant_ref=str(tenant_id))
    await bind_session_to_tenant(session, tenant_id)
    return membership.context()
