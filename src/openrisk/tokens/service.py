"""API tokens: ``orsk_`` secrets shown once, stored hashed, bound to one tenant,
acting with the intersection of their grants and their user's current permissions."""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import ColumnElement, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from openrisk.audit.service import record
from openrisk.core.context import RequestContext
from openrisk.core.errors import Forbidden, NotFound
from openrisk.core.security import sha256_hex
from openrisk.core.uow import UnitOfWork
from openrisk.rbac.catalogue import split_grant
from openrisk.rbac.roles import check_grantable
from openrisk.rbac.service import grant_sets
from openrisk.tokens.models import ApiToken

TOKEN_PREFIX = "orsk_"
DISPLAY_PREFIX_LENGTH = 12
LAST_USED_RESOLUTION = timedelta(minutes=1)  # at most one write per token per minute


@dataclass(frozen=True)
class NewToken:
    token: ApiToken
    secret: str


def is_api_token(bearer: str) -> bool:
    return bearer.startswith(TOKEN_PREFIX)


def _new_secret() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)  # 43 url-safe characters after the prefix


def _callers_grants(context: RequestContext) -> list[str]:
    return sorted([*context.permissions, *(f"{code}:own" for code in context.own_permissions)])


def intersect_grants(token_grants: list[str], role_grants: list[str]) -> tuple[str, ...]:
    """What a token may do: its grants, narrowed by what its user's role allows now."""
    role_full, role_own = grant_sets(tuple(role_grants))
    allowed: list[str] = []
    for grant in token_grants:
        code, _ = split_grant(grant)
        if code in role_full:
            allowed.append(grant)
        elif code in role_own:
            allowed.append(f"{code}:own")
    return tuple(allowed)


def _visible(context: RequestContext) -> list[ColumnElement[bool]]:
    """Token holders with token:read on every row see the tenant's tokens; others their own."""
    conditions: list[ColumnElement[bool]] = [ApiToken.tenant_id == context.tenant_id]
    if not context.has_any_scope("token:read"):
        conditions.append(ApiToken.user_id == context.user_id)
    return conditions


async def list_tokens(
    session: AsyncSession, *, context: RequestContext, offset: int, limit: int
) -> tuple[list[ApiToken], int]:
    conditions = _visible(context)
    total = await session.scalar(select(func.count()).select_from(ApiToken).where(*conditions))
    tokens = await session.scalars(
        select(ApiToken)
        .where(*conditions)
        .order_by(ApiToken.created_at.desc())
        .offset(offset)
        .limit(limit)
    )
    return list(tokens), int(total or 0)


def _refuse_api_token_caller(context: RequestContext, action: str) -> None:
    """Tokens cannot make tokens: a new secret is minted only by a signed-in person, so a
    leaked token can never outlive itself or widen into another token's grants."""
    if context.principal.token_id is not None:
        raise Forbidden(f"An API token cannot {action} tokens; sign in to manage tokens.")


async def create_token(
    *,
    uow: UnitOfWork,
    context: RequestContext,
    name: str,
    permissions: list[str] | None,
    expires_in_days: int | None,
) -> NewToken:
    session = uow.session
    _refuse_api_token_caller(context, "create")
    grants = check_grantable(
        context,
        permissions if permissions is not None else _callers_grants(context),
        field="permissions",
    )
    secret = _new_secret()
    token = ApiToken(
        tenant_id=context.tenant_id,
        user_id=context.user_id,
        name=name,
        prefix=secret[:DISPLAY_PREFIX_LENGTH],
        token_hash=sha256_hex(secret),
        permissions=grants,
        expires_at=(
            datetime.now(UTC) + timedelta(days=expires_in_days) if expires_in_days else None
        ),
    )
    session.add(token)
    await session.flush()
    record(
        session,
        context=context,
        action="token.create",
        resource_type="token",
        resource_id=token.id,
        changes={"name": name, "permissions": grants, "prefix": token.prefix},
    )
    await uow.commit()
    return NewToken(token=token, secret=secret)


async def _owned_token(
    session: AsyncSession, *, context: RequestContext, token_id: uuid.UUID
) -> ApiToken:
    token = await session.scalar(
        select(ApiToken).where(ApiToken.id == token_id, ApiToken.tenant_id == context.tenant_id)
    )
    if token is None:
        raise NotFound("Token not found.")
    context.require_on("token:revoke", token.user_id)
    return token


async def revoke_token(*, uow: UnitOfWork, context: RequestContext, token_id: uuid.UUID) -> None:
    session = uow.session
    token = await _owned_token(session, context=context, token_id=token_id)
    if token.revoked_at is None:
        token.revoked_at = datetime.now(UTC)
        record(
            session,
            context=context,
            action="token.revoke",
            resource_type="token",
            resource_id=token.id,
            changes={"prefix": token.prefix},
        )
        uow.authorization_changed()
        await uow.commit()


async def rotate_token(
    *, uow: UnitOfWork, context: RequestContext, token_id: uuid.UUID
) -> NewToken:
    """Revoke the token and issue a new secret with the same name, grants and lifetime left.

    Only the token's owner rotates it: the new secret acts as that owner, so anyone else
    (an Admin included, who may still revoke it) would be taking the owner's identity.
    """
    session = uow.session
    _refuse_api_token_caller(context, "rotate")
    old = await _owned_token(session, context=context, token_id=token_id)
    if old.revoked_at is not None:
        raise NotFound("Token not found.")
    if old.user_id != context.user_id:
        raise Forbidden("Only the token's owner can rotate it; you may revoke it.")
    context.require("token:create")
    old.revoked_at = datetime.now(UTC)
    secret = _new_secret()
    token = ApiToken(
        tenant_id=old.tenant_id,
        user_id=old.user_id,
        name=old.name,
        prefix=secret[:DISPLAY_PREFIX_LENGTH],
        token_hash=sha256_hex(secret),
        permissions=list(old.permissions),
        expires_at=old.expires_at,
    )
    session.add(token)
    await session.flush()
    record(
        session,
        context=context,
        action="token.rotate",
        resource_type="token",
        resource_id=token.id,
        changes={"replaces": str(old.id), "prefix": token.prefix},
    )
    uow.authorization_changed()
    await uow.commit()
    return NewToken(token=token, secret=secret)


@dataclass(frozen=True, slots=True)
class TokenIdentity:
    """What authenticating an API token yields; cacheable (no ORM objects)."""

    token_id: uuid.UUID
    tenant_id: uuid.UUID
    user_id: uuid.UUID
    grants: tuple[str, ...]
    expires_at: datetime | None
    last_used_at: datetime | None


async def find_active_token(session: AsyncSession, *, secret: str) -> TokenIdentity | None:
    token = await session.scalar(
        select(ApiToken).where(
            ApiToken.token_hash == sha256_hex(secret), ApiToken.revoked_at.is_(None)
        )
    )
    if token is None:
        return None
    return TokenIdentity(
        token_id=token.id,
        tenant_id=token.tenant_id,
        user_id=token.user_id,
        grants=tuple(token.permissions),
        expires_at=token.expires_at,
        last_used_at=token.last_used_at,
    )


async def touch_last_used(session: AsyncSession, *, token_id: uuid.UUID) -> None:
    """Record use at most once per minute per token, not once per request."""
    now = datetime.now(UTC)
    await session.execute(
        update(ApiToken)
        .where(
            ApiToken.id == token_id,
            (ApiToken.last_used_at.is_(None))
            | (ApiToken.last_used_at < now - LAST_USED_RESOLUTION),
        )
        .values(last_used_at=now)
    )
    await session.commit()
