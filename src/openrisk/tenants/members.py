"""Members of a tenant: invitations, role changes and removals: a caller assigns only roles
below its own level and manages only members below it (Admins may do both for Admins)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import cast

from sqlalchemy import Select, Table, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from openrisk.audit.service import record
from openrisk.auth.models import User
from openrisk.auth.service import create_user, find_user_by_email
from openrisk.config import Settings
from openrisk.core.context import RequestContext
from openrisk.core.db.atomic import lock_row
from openrisk.core.errors import Conflict, Forbidden, NotFound
from openrisk.core.security import new_secret, sha256_hex
from openrisk.core.uow import UnitOfWork
from openrisk.notifications.invitations import queue_invitation
from openrisk.rbac.catalogue import ADMIN, OWN_SCOPE, split_grant
from openrisk.rbac.models import Role
from openrisk.rbac.roles import check_assignable_level, get_role, is_admin
from openrisk.tenants.models import Membership, Tenant
from openrisk.tenants.service import add_member
from openrisk.tokens.models import Invitation

INVITATION_TTL = timedelta(days=7)


@dataclass(frozen=True)
class MemberRow:
    user_id: uuid.UUID
    email: str
    full_name: str
    role_id: uuid.UUID
    role_name: str
    role_level: int
    joined_at: datetime


@dataclass(frozen=True)
class InviteResult:
    member: MemberRow | None
    invitation_token: str | None
    invitation_expires_at: datetime | None


def _member_query(
    tenant_id: uuid.UUID,
) -> Select[uuid.UUID, str, str, uuid.UUID, str, int, datetime]:
    return (
        select(
            User.id,
            User.email,
            User.full_name,
            Role.id,
            Role.name,
            Role.level,
            Membership.created_at,
        )
        .select_from(Membership)
        .join(User, User.id == Membership.user_id)
        .join(Role, Role.id == Membership.role_id)
        .where(Membership.tenant_id == tenant_id)
    )


async def list_members(
    session: AsyncSession, *, context: RequestContext, offset: int, limit: int
) -> tuple[list[MemberRow], int]:
    total = await session.scalar(
        select(func.count()).where(Membership.tenant_id == context.tenant_id)
    )
    rows = await session.execute(
        _member_query(context.tenant_id).order_by(User.email).offset(offset).limit(limit)
    )
    return [MemberRow(*row) for row in rows.tuples()], int(total or 0)


async def get_member(
    session: AsyncSession, *, context: RequestContext, user_id: uuid.UUID
) -> MemberRow:
    row = (
        await session.execute(_member_query(context.tenant_id).where(User.id == user_id))
    ).first()
    if row is None:
        raise NotFound("Member not found.")
    return MemberRow(*row)


async def _membership(
    session: AsyncSession, *, context: RequestContext, user_id: uuid.UUID
) -> tuple[Membership, Role]:
    row = (
        await session.execute(
            select(Membership, Role)
            .join(Role, Role.id == Membership.role_id)
            .where(Membership.tenant_id == context.tenant_id, Membership.user_id == user_id)
        )
    ).first()
    if row is None:
        raise NotFound("Member not found.")
    return row[0], row[1]


def _check_manageable(context: RequestContext, target: Role) -> None:
    """Only members below the caller's level (Admins may manage Admins)."""
    if not is_admin(context) and target.level >= context.role_level:
        raise Forbidden("You cannot manage a member whose level is not below your own.")


async def _admin_count(session: AsyncSession, tenant_id: uuid.UUID) -> int:
    count = await session.scalar(
        select(func.count()).where(
            Membership.tenant_id == tenant_id, Membership.role_id == ADMIN.id
        )
    )
    return int(count or 0)


async def _lock_memberships(session: AsyncSession, tenant_id: uuid.UUID) -> None:
    """Serialise membership changes of one tenant: two Admins demoting each other at once
    must not both see "another Admin remains" (the tenant row is the lock)."""
    await lock_row(session, cast(Table, Tenant.__table__), tenant_id)


async def _check_an_admin_remains(session: AsyncSession, tenant_id: uuid.UUID) -> None:
    """Run after the change, under the tenant lock: the change stands only if an Admin is left."""
    if await _admin_count(session, tenant_id) < 1:
        raise Conflict("The last Admin of a tenant cannot be demoted or removed.")


async def invite(
    *,
    uow: UnitOfWork,
    context: RequestContext,
    email: str,
    role_id: uuid.UUID,
    settings: Settings | None = None,
) -> InviteResult:
    """With ``settings`` whose e-mail is configured, an invitation's link is also mailed."""
    session = uow.session
    role = await get_role(session, context=context, role_id=role_id)
    check_assignable_level(context, role.level)
    user = await find_user_by_email(session, email=email)
    if user is None:
        return await _invite_unknown(
            uow=uow, context=context, email=email, role=role, settings=settings
        )
    existing = await session.scalar(
        select(Membership.id).where(
            Membership.tenant_id == context.tenant_id, Membership.user_id == user.id
        )
    )
    if existing is not None:
        raise Conflict("This person is already a member of the tenant.")
    await add_member(session, tenant_id=context.tenant_id, user_id=user.id, role_id=role.id)
    record(
        session,
        context=context,
        action="member.add",
        resource_type="member",
        resource_id=user.id,
        changes={"role": {"before": None, "after": role.name}, "email": email},
    )
    uow.authorization_changed()
    await uow.commit()
    return InviteResult(
        member=await get_member(session, context=context, user_id=user.id),
        invitation_token=None,
        invitation_expires_at=None,
    )


async def _invite_unknown(
    *, uow: UnitOfWork, context: RequestContext, email: str, role: Role, settings: Settings | None
) -> InviteResult:
    session = uow.session
    secret = new_secret()
    expires_at = datetime.now(UTC) + INVITATION_TTL
    invitation = Invitation(
        tenant_id=context.tenant_id,
        email=email.lower(),
        role_id=role.id,
        invited_by=context.user_id,
        token_hash=sha256_hex(secret),
        expires_at=expires_at,
    )
    session.add(invitation)
    await session.flush()
    record(
        session,
        context=context,
        action="member.invite",
        resource_type="invitation",
        resource_id=invitation.id,
        changes={"email": email.lower(), "role": role.name},
    )
    await _mail_link(uow, invitation, secret, role, settings)
    await uow.commit()
    return InviteResult(member=None, invitation_token=secret, invitation_expires_at=expires_at)


async def _mail_link(
    uow: UnitOfWork, invitation: Invitation, secret: str, role: Role, settings: Settings | None
) -> None:
    await queue_invitation(
        uow,
        settings=settings,
        tenant_id=invitation.tenant_id,
        invitation_id=invitation.id,
        token_hash=invitation.token_hash,
        token=secret,
        email=invitation.email,
        role_name=role.name,
        invited_by=invitation.invited_by,
        expires_at=invitation.expires_at,
        now=datetime.now(UTC),
    )


async def accept_invitation(*, uow: UnitOfWork, token: str, password: str, full_name: str) -> User:
    """Turn a pending invitation into an account and a membership (the link is single-use).

    The link is claimed by one compare-and-swap UPDATE: of parallel acceptances exactly one
    wins, the others get 409.
    """
    session = uow.session
    now = datetime.now(UTC)
    token_hash = sha256_hex(token)
    claimed = (
        await session.execute(
            update(Invitation)
            .where(
                Invitation.token_hash == token_hash,
                Invitation.accepted_at.is_(None),
                Invitation.expires_at > now,
            )
            .values(accepted_at=now)
            .returning(Invitation.tenant_id, Invitation.email, Invitation.role_id)
        )
    ).first()
    if claimed is None:
        accepted_at = await session.scalar(
            select(Invitation.accepted_at).where(Invitation.token_hash == token_hash)
        )
        if accepted_at is not None:
            raise Conflict("This invitation has already been accepted.")
        raise NotFound("This invitation is invalid or has expired.")
    tenant_id, email, role_id = claimed
    if await find_user_by_email(session, email=email):
        raise Conflict("An account with this email exists; sign in and ask to be added.")
    user = await create_user(session, email=email, password=password, full_name=full_name)
    await add_member(session, tenant_id=tenant_id, user_id=user.id, role_id=role_id)
    uow.authorization_changed()
    await uow.commit()
    return user


async def change_role(
    *, uow: UnitOfWork, context: RequestContext, user_id: uuid.UUID, role_id: uuid.UUID
) -> MemberRow:
    session = uow.session
    await _lock_memberships(session, context.tenant_id)
    membership, current = await _membership(session, context=context, user_id=user_id)
    _check_manageable(context, current)
    new_role = await get_role(session, context=context, role_id=role_id)
    check_assignable_level(context, new_role.level)
    if new_role.id != current.id:
        membership.role_id = new_role.id
        await session.flush()
        if current.id == ADMIN.id:
            await _check_an_admin_remains(session, context.tenant_id)
        record(
            session,
            context=context,
            action="member.role_change",
            resource_type="member",
            resource_id=user_id,
            changes={"role": {"before": current.name, "after": new_role.name}},
        )
        uow.authorization_changed()
        await uow.commit()
    return await get_member(session, context=context, user_id=user_id)


async def remove_member(*, uow: UnitOfWork, context: RequestContext, user_id: uuid.UUID) -> None:
    session = uow.session
    await _lock_memberships(session, context.tenant_id)
    membership, role = await _membership(session, context=context, user_id=user_id)
    _check_manageable(context, role)
    await session.delete(membership)
    await session.flush()
    if role.id == ADMIN.id:
        await _check_an_admin_remains(session, context.tenant_id)
    record(
        session,
        context=context,
        action="member.remove",
        resource_type="member",
        resource_id=user_id,
        changes={"role": {"before": role.name, "after": None}},
    )
    uow.authorization_changed()
    await uow.commit()


@dataclass(frozen=True)
class EffectivePermission:
    code: str
    scope: str  # "all" or "own"
    origin: str


async def effective_permissions(
    session: AsyncSession, *, context: RequestContext, user_id: uuid.UUID
) -> tuple[MemberRow, list[EffectivePermission]]:
    """Every permission the member holds in this tenant, and where it comes from."""
    member = await get_member(session, context=context, user_id=user_id)
    _, role = await _membership(session, context=context, user_id=user_id)
    kind = "predefined" if role.is_predefined else "custom"
    by_code: dict[str, EffectivePermission] = {}
    for grant in role.permissions:
        code, scope = split_grant(grant)
        scope_name = "own" if scope == OWN_SCOPE else "all"
        if by_code.get(code) is None or scope_name == "all":
            by_code[code] = EffectivePermission(
                code=code, scope=scope_name, origin=f"role {role.name} ({kind}, level {role.level})"
            )
    return member, sorted(by_code.values(), key=lambda p: p.code)


# --------------------------------------------------------------------------- pending invitations


@dataclass(frozen=True)
class PendingInvitation:
    id: uuid.UUID
    email: str
    role_id: uuid.UUID
    role_name: str
    role_level: int
    invited_by: uuid.UUID | None
    created_at: datetime
    expires_at: datetime

    @property
    def expired(self) -> bool:
        return self.expires_at <= datetime.now(UTC)


async def list_invitations(
    session: AsyncSession, *, context: RequestContext, offset: int, limit: int
) -> tuple[list[PendingInvitation], int]:
    """Invitations of the tenant not accepted yet (expired ones too, flagged), newest first."""
    where = (Invitation.tenant_id == context.tenant_id, Invitation.accepted_at.is_(None))
    total = await session.scalar(select(func.count()).select_from(Invitation).where(*where))
    rows = await session.execute(
        select(Invitation, Role.name, Role.level)
        .join(Role, Role.id == Invitation.role_id)
        .where(*where)
        .order_by(Invitation.created_at.desc(), Invitation.id)
        .offset(offset)
        .limit(limit)
    )
    found = [
        PendingInvitation(
            i.id, i.email, i.role_id, name, level, i.invited_by, i.created_at, i.expires_at
        )
        for i, name, level in rows.tuples()
    ]
    return found, int(total or 0)


async def _pending(
    session: AsyncSession, context: RequestContext, invitation_id: uuid.UUID
) -> tuple[Invitation, Role]:
    """A pending invitation of the tenant whose role the caller may give (else 404/403)."""
    row = (
        await session.execute(
            select(Invitation, Role)
            .join(Role, Role.id == Invitation.role_id)
            .where(
                Invitation.id == invitation_id,
                Invitation.tenant_id == context.tenant_id,
                Invitation.accepted_at.is_(None),
            )
            .with_for_update(of=Invitation)
        )
    ).first()
    if row is None:
        raise NotFound("Invitation not found (or already accepted).")
    check_assignable_level(context, row[1].level)
    return row[0], row[1]


async def renew_invitation(
    *,
    uow: UnitOfWork,
    context: RequestContext,
    invitation_id: uuid.UUID,
    settings: Settings | None = None,
) -> InviteResult:
    """A new one-time link (the old one stops working) valid for another full period: what
    "resend" means (the link is shown to the inviter, and mailed when e-mail is configured)."""
    session = uow.session
    invitation, role = await _pending(session, context, invitation_id)
    secret = new_secret()
    invitation.token_hash = sha256_hex(secret)
    invitation.expires_at = datetime.now(UTC) + INVITATION_TTL
    await session.flush()
    record(
        session,
        context=context,
        action="member.invite_renew",
        resource_type="invitation",
        resource_id=invitation.id,
        changes={"email": invitation.email, "role": role.name},
    )
    await _mail_link(uow, invitation, secret, role, settings)
    await uow.commit()
    return InviteResult(
        member=None, invitation_token=secret, invitation_expires_at=invitation.expires_at
    )


async def revoke_invitation(
    *, uow: UnitOfWork, context: RequestContext, invitation_id: uuid.UUID
) -> None:
    """The link stops working at once; the invitation is gone (the audit trail keeps it)."""
    session = uow.session
    invitation, role = await _pending(session, context, invitation_id)
    record(
        session,
        context=context,
        action="member.invite_revoke",
        resource_type="invitation",
        resource_id=invitation.id,
        changes={"email": invitation.email, "role": role.name},
    )
    await session.delete(invitation)
    await uow.commit()
