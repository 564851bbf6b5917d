"""Custom roles and the rules that stop privilege escalation: grant only what you hold,
assign only levels below your own; predefined roles are never edited or deleted, and a role
still assigned is never deleted."""

from __future__ import annotations

import uuid
from collections.abc import Iterable

from sqlalchemy import ColumnElement, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from openrisk.audit.service import diff, record
from openrisk.core.context import RequestContext
from openrisk.core.errors import Conflict, Forbidden, NotFound, ValidationFailed
from openrisk.core.uow import UnitOfWork
from openrisk.rbac.catalogue import (
    ADMIN,
    ALL_PERMISSIONS,
    OWN_SCOPE,
    OWN_SCOPED,
    is_own_scoped,
    is_valid_grant,
    split_grant,
)
from openrisk.rbac.models import Role
from openrisk.tenants.models import Membership


def is_admin(context: RequestContext) -> bool:
    return context.role_id == ADMIN.id


def holds_grant(context: RequestContext, grant: str) -> bool:
    """Whether the caller holds ``grant`` itself: an "own" grant is covered by either scope."""
    code, scope = split_grant(grant)
    return context.has(code) if scope == OWN_SCOPE else context.has_any_scope(code)


def check_grantable(context: RequestContext, grants: Iterable[str], *, field: str) -> list[str]:
    """A caller can grant only valid permissions it holds itself."""
    cleaned = sorted(set(grants))
    unscoped = [
        g
        for g in cleaned
        if ":" in g  # a malformed grant is reported as unknown below
        and split_grant(g)[1] == OWN_SCOPE
        and split_grant(g)[0] in ALL_PERMISSIONS
        and not is_own_scoped(g)
    ]
    if unscoped:
        raise ValidationFailed.field(
            field,
            f"the 'own' scope does not apply to {', '.join(unscoped)}: reads and exports cover "
            f"the whole tenant; 'own' exists for {', '.join(sorted(OWN_SCOPED))}",
        )
    invalid = [g for g in cleaned if not is_valid_grant(g)]
    if invalid:
        raise ValidationFailed.field(field, f"unknown permission(s): {', '.join(invalid)}")
    unheld = [g for g in cleaned if not holds_grant(context, g)]
    if unheld:
        raise Forbidden(f"You cannot grant permissions you do not hold: {', '.join(unheld)}")
    return cleaned


def check_assignable_level(context: RequestContext, level: int) -> None:
    """Roles below the caller's level; an Admin may use any level."""
    if not is_admin(context) and level >= context.role_level:
        raise Forbidden(f"You can only use roles below your own level ({context.role_level}).")


def _visible_roles(tenant_id: uuid.UUID) -> ColumnElement[bool]:
    return or_(Role.tenant_id.is_(None), Role.tenant_id == tenant_id)


async def list_roles(
    session: AsyncSession, *, context: RequestContext, offset: int, limit: int
) -> tuple[list[Role], int]:
    condition = _visible_roles(context.tenant_id)
    total = await session.scalar(select(func.count()).select_from(Role).where(condition))
    roles = await session.scalars(
        select(Role).where(condition).order_by(Role.level, Role.name).offset(offset).limit(limit)
    )
    return list(roles), int(total or 0)


async def get_role(session: AsyncSession, *, context: RequestContext, role_id: uuid.UUID) -> Role:
    role = await session.scalar(
        select(Role).where(Role.id == role_id, _visible_roles(context.tenant_id))
    )
    if role is None:
        raise NotFound("Role not found.")
    return role


async def _custom_role(
    session: AsyncSession, *, context: RequestContext, role_id: uuid.UUID
) -> Role:
    role = await get_role(session, context=context, role_id=role_id)
    if role.is_predefined:
        raise Forbidden("Predefined roles cannot be changed or deleted.")
    check_assignable_level(context, role.level)
    return role


def _snapshot(role: Role) -> dict[str, object]:
    return {
        "name": role.name,
        "description": role.description,
        "level": role.level,
        "permissions": sorted(role.permissions),
    }


async def _flush_unique(session: AsyncSession, name: str) -> None:
    try:
        await session.flush()
    except IntegrityError as error:
        await session.rollback()
        raise Conflict(f"A role named {name!r} already exists in this tenant.") from error


async def create_role(
    *,
    uow: UnitOfWork,
    context: RequestContext,
    name: str,
    description: str,
    level: int,
    permissions: list[str],
) -> Role:
    session = uow.session
    check_assignable_level(context, level)
    grants = check_grantable(context, permissions, field="permissions")
    predefined = await session.scalar(
        select(Role.id).where(Role.tenant_id.is_(None), func.lower(Role.name) == name.lower())
    )
    if predefined is not None:
        raise Conflict(f"{name!r} is the name of a predefined role.")
    role = Role(
        tenant_id=context.tenant_id,
        name=name,
        description=description,
        level=level,
        permissions=grants,
    )
    session.add(role)
    await _flush_unique(session, name)
    record(
        session,
        context=context,
        action="role.create",
        resource_type="role",
        resource_id=role.id,
        changes=diff({}, _snapshot(role)),
    )
    await uow.commit()
    return role


async def update_role(
    *,
    uow: UnitOfWork,
    context: RequestContext,
    role_id: uuid.UUID,
    name: str | None = None,
    description: str | None = None,
    level: int | None = None,
    permissions: list[str] | None = None,
) -> Role:
    session = uow.session
    role = await _custom_role(session, context=context, role_id=role_id)
    before = _snapshot(role)
    if level is not None:
        check_assignable_level(context, level)
        role.level = level
    if permissions is not None:
        role.permissions = check_grantable(context, permissions, field="permissions")
    if name is not None:
        role.name = name
    if description is not None:
        role.description = description
    await _flush_unique(session, role.name)
    action = "role.permissions" if permissions is not None else "role.update"
    record(
        session,
        context=context,
        action=action,
        resource_type="role",
        resource_id=role.id,
        changes=diff(before, _snapshot(role)),
    )
    uow.authorization_changed()
    await uow.commit()
    return role


async def delete_role(*, uow: UnitOfWork, context: RequestContext, role_id: uuid.UUID) -> None:
    session = uow.session
    role = await _custom_role(session, context=context, role_id=role_id)
    in_use = await session.scalar(select(func.count()).where(Membership.role_id == role.id))
    if in_use:
        raise Conflict(f"The role is still assigned to {in_use} member(s).")
    record(
        session,
        context=context,
        action="role.delete",
        resource_type="role",
        resource_id=role.id,
        changes=diff(_snapshot(role), {}),
    )
    await session.delete(role)
    uow.authorization_changed()
    await uow.commit()
