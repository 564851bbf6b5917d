"""Registration, login with throttling, refresh-token rotation with reuse detection."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import NoReturn

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from openrisk.audit.service import record_raw
from openrisk.auth.models import RefreshToken, User
from openrisk.auth.schemas import MembershipOut
from openrisk.config import Settings
from openrisk.core.context import RequestOrigin
from openrisk.core.db.atomic import flush_or_conflict
from openrisk.core.errors import Conflict, TooManyRequests, Unauthorized
from openrisk.core.ratelimit import RateLimits, parse_limits
from openrisk.core.security import (
    TokenCodec,
    hash_password,
    new_secret,
    sha256_hex,
    verify_password,
)
from openrisk.core.uow import UnitOfWork
from openrisk.rbac.catalogue import ADMIN
from openrisk.rbac.models import Role
from openrisk.tenants.models import Membership, Tenant
from openrisk.tenants.service import create_tenant


@dataclass(frozen=True)
class IssuedTokens:
    access_token: str
    refresh_token: str
    expires_in: int
    user: User


async def find_user_by_email(session: AsyncSession, *, email: str) -> User | None:
    result = await session.execute(select(User).where(func.lower(User.email) == email.lower()))
    return result.scalar_one_or_none()


async def create_user(
    session: AsyncSession,
    *,
    email: str,
    password: str,
    full_name: str = "",
    is_superuser: bool = False,
) -> User:
    if await find_user_by_email(session, email=email):
        raise Conflict("An account with this email already exists.")
    user = User(
        email=email.lower(),
        full_name=full_name,
        password_hash=hash_password(password),
        is_superuser=is_superuser,
    )
    session.add(user)
    # a parallel sign-up of the same email passed the check too: the unique index decides
    await flush_or_conflict(session, "An account with this email already exists.")
    return user


async def register(
    *,
    uow: UnitOfWork,
    codec: TokenCodec,
    settings: Settings,
    email: str,
    password: str,
    full_name: str,
    tenant_name: str,
) -> IssuedTokens:
    """Create the account and a new tenant in which it is Admin, then sign it in."""
    session = uow.session
    user = await create_user(session, email=email, password=password, full_name=full_name)
    await create_tenant(session, name=tenant_name, owner_id=user.id, role_id=ADMIN.id, default=True)
    tokens = await issue_tokens(session, codec=codec, settings=settings, user=user)
    await uow.commit()
    return tokens


async def _throttle(limits: RateLimits, *, settings: Settings, email: str, ip: str) -> None:
    """Refuse before any password is checked when this (account, address) or this address has
    used up its attempts.

    The (account, address) attempt is consumed here, atomically: of 40 parallel guesses exactly
    the limit's count reach the password check. No account-wide lock: someone else's guesses
    from elsewhere never lock the owner out. Later tiers of a limit are the backoff.
    """
    exceeded = await limits.check(parse_limits(settings.login_limit_ip), "login-ip", ip)
    if exceeded is None:
        exceeded = await limits.hit(
            parse_limits(settings.login_limit_account_ip), "login", email, ip
        )
    if exceeded is not None:
        raise TooManyRequests(
            f"Too many sign-in attempts; retry in {exceeded.retry_after} s.",
            headers=exceeded.headers,
        )


async def throttle_signup(limits: RateLimits, *, settings: Settings, origin: RequestOrigin) -> None:
    """Every sign-up creates a tenant: at most ``OPENRISK_SIGNUP_LIMIT_PER_IP`` per address."""
    exceeded = await limits.hit(
        parse_limits(settings.signup_limit_per_ip), "signup", origin.ip or "unknown"
    )
    if exceeded is not None:
        raise TooManyRequests(
            f"Too many sign-ups from this address; retry in {exceeded.retry_after} s.",
            headers=exceeded.headers,
        )


async def login(
    *,
    uow: UnitOfWork,
    codec: TokenCodec,
    settings: Settings,
    limits: RateLimits,
    email: str,
    password: str,
    origin: RequestOrigin,
) -> IssuedTokens:
    session = uow.session
    email = email.lower()
    ip = origin.ip or "unknown"
    await _throttle(limits, settings=settings, email=email, ip=ip)
    user = await find_user_by_email(session, email=email)
    # verify_password hashes against a dummy when the user is unknown: equal cost either way.
    # argon2 releases the GIL: in a thread, its ~25-50 ms no longer stall the other requests.
    valid = await asyncio.to_thread(verify_password, password, user.password_hash if user else None)
    if user is None or not valid or not user.is_active:
        await limits.hit(parse_limits(settings.login_limit_ip), "login-ip", ip)
        await _audit_login(session, user=user, email=email, origin=origin, outcome="failure")
        await uow.commit()
        raise Unauthorized("Invalid email or password.")
    user.last_login_at = datetime.now(UTC)
    await limits.clear(parse_limits(settings.login_limit_account_ip), "login", email, ip)
    await _audit_login(session, user=user, email=email, origin=origin, outcome="success")
    tokens = await issue_tokens(session, codec=codec, settings=settings, user=user)
    await uow.commit()
    return tokens


async def _audit_login(
    session: AsyncSession, *, user: User | None, email: str, origin: RequestOrigin, outcome: str
) -> None:
    """Logins are audited in the account's default tenant (outside any tenant when unknown)."""
    tenant_id = None
    if user is not None:
        tenant_id = await session.scalar(
            select(Membership.tenant_id)
            .where(Membership.user_id == user.id)
            .order_by(Membership.is_default.desc(), Membership.created_at)
            .limit(1)
        )
    record_raw(
        session,
        tenant_id=tenant_id,
        actor_user_id=user.id if user else None,
        origin=origin,
        action="auth.login",
        resource_type="user",
        resource_id=user.id if user else None,
        changes={"email": email},
        outcome=outcome,
    )


async def issue_tokens(
    session: AsyncSession,
    *,
    codec: TokenCodec,
    settings: Settings,
    user: User,
    family_id: uuid.UUID | None = None,
) -> IssuedTokens:
    family_id = family_id or uuid.uuid4()
    refresh_secret = new_secret()
    session.add(
        RefreshToken(
            user_id=user.id,
            family_id=family_id,
            token_hash=sha256_hex(refresh_secret),
            expires_at=datetime.now(UTC) + timedelta(days=settings.refresh_token_days),
        )
    )
    await session.flush()
    return IssuedTokens(
        access_token=codec.issue_access(user_id=user.id, session_id=family_id),
        refresh_token=refresh_secret,
        expires_in=int(codec.access_ttl.total_seconds()),
        user=user,
    )


async def _revoke_family(session: AsyncSession, family_id: uuid.UUID) -> None:
    await session.execute(
        update(RefreshToken)
        .where(RefreshToken.family_id == family_id, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=datetime.now(UTC))
    )


async def refresh(
    *, uow: UnitOfWork, codec: TokenCodec, settings: Settings, refresh_token: str
) -> IssuedTokens:
    """Rotate: the presented token is spent; presenting a spent one revokes its whole family.

    The token is spent by one compare-and-swap UPDATE, so of parallel refreshes with one token
    exactly one wins; every other is a reuse, and revokes the family (the winner's new tokens
    included), as a replayed stolen token must.
    """
    session = uow.session
    token_hash = sha256_hex(refresh_token)
    now = datetime.now(UTC)
    spent = (
        await session.execute(
            update(RefreshToken)
            .where(
                RefreshToken.token_hash == token_hash,
                RefreshToken.used_at.is_(None),
                RefreshToken.revoked_at.is_(None),
                RefreshToken.expires_at > now,
            )
            .values(used_at=now)
            .returning(RefreshToken.family_id, RefreshToken.user_id)
        )
    ).first()
    if spent is None:
        await _refuse_refresh(uow, token_hash=token_hash)
    family_id, user_id = spent
    user = await session.get(User, user_id)
    if user is None or not user.is_active:
        raise Unauthorized("Invalid refresh token.")
    tokens = await issue_tokens(
        session, codec=codec, settings=settings, user=user, family_id=family_id
    )
    await uow.commit()
    return tokens


async def _refuse_refresh(uow: UnitOfWork, *, token_hash: str) -> NoReturn:
    """Why a refresh token was not accepted; a spent one revokes its family on the way (and
    every worker's cached "this sign-in stands" answer: its access tokens die)."""
    session = uow.session
    token = await session.scalar(select(RefreshToken).where(RefreshToken.token_hash == token_hash))
    if token is not None and token.used_at is not None and token.revoked_at is None:
        await _revoke_family(session, token.family_id)
        uow.authorization_changed()
        await uow.commit()
        raise SessionRevoked(token.family_id)
    raise Unauthorized("Invalid refresh token.")


class SessionRevoked(Unauthorized):
    """A spent refresh token was presented again: the whole sign-in is revoked."""

    def __init__(self, family_id: uuid.UUID) -> None:
        super().__init__("Refresh token reuse detected; the session has been revoked.")
        self.family_id = family_id


async def logout(*, uow: UnitOfWork, refresh_token: str) -> uuid.UUID | None:
    """Revoke the sign-in of ``refresh_token``; its family id (None for an unknown token)."""
    session = uow.session
    family_id = await session.scalar(
        select(RefreshToken.family_id).where(RefreshToken.token_hash == sha256_hex(refresh_token))
    )
    if family_id is not None:
        await _revoke_family(session, family_id)
        uow.authorization_changed()
        await uow.commit()
    return family_id


async def session_is_active(
    session: AsyncSession, *, session_id: uuid.UUID, user_id: uuid.UUID
) -> bool:
    """Whether the sign-in (refresh-token family) behind an access token still stands.

    The family's rows are the revocation record: logout and reuse detection revoke them all.
    A family with no row at all is treated as ended (fail closed).
    """
    total, revoked = (
        await session.execute(
            select(func.count(RefreshToken.id), func.count(RefreshToken.revoked_at)).where(
                RefreshToken.family_id == session_id, RefreshToken.user_id == user_id
            )
        )
    ).one()
    return bool(total) and not revoked


async def get_active_user(session: AsyncSession, *, user_id: uuid.UUID) -> User:
    user = await session.get(User, user_id)
    if user is None or not user.is_active:
        raise Unauthorized("Unknown or inactive user.")
    return user


async def list_memberships(
    session: AsyncSession, *, user_id: uuid.UUID, only_tenant: uuid.UUID | None = None
) -> list[MembershipOut]:
    """The user's memberships; ``only_tenant`` narrows them to one (an API token's tenant)."""
    query = (
        select(Membership, Tenant, Role)
        .join(Tenant, Tenant.id == Membership.tenant_id)
        .join(Role, Role.id == Membership.role_id)
        .where(Membership.user_id == user_id)
        .order_by(Membership.is_default.desc(), Tenant.name)
    )
    if only_tenant is not None:
        query = query.where(Membership.tenant_id == only_tenant)
    rows = await session.execute(query)
    return [
        MembershipOut(
            tenant_id=tenant.id,
            tenant_name=tenant.name,
            tenant_slug=tenant.slug,
            role_id=role.id,
            role_name=role.name,
            role_level=role.level,
            is_default=membership.is_default,
        )
        for membership, tenant, role in rows.tuples()
    ]


async def sign_in(
    *, uow: UnitOfWork, codec: TokenCodec, settings: Settings, user: User
) -> IssuedTokens:
    session = uow.session
    tokens = await issue_tokens(session, codec=codec, settings=settings, user=user)
    await uow.commit()
    return tokens
