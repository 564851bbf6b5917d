"""Authentication and the per-request context: bearer token → principal → tenant → permissions."""

from __future__ import annotations

import dataclasses
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import Depends, Header, Request
from fastapi.security import OAuth2PasswordBearer
from sqlalchemy.ext.asyncio import AsyncSession

from openrisk.auth.service import get_active_user, session_is_active
from openrisk.core.cache.hot_path import Authorization, vouch
from openrisk.core.context import Principal, RequestContext, RequestOrigin
from openrisk.core.db.tenancy import bind_session_to_tenant
from openrisk.core.deps import CodecDep, SessionDep
from openrisk.core.errors import Forbidden, NotFound, Unauthorized
from openrisk.core.logging import request_id_var
from openrisk.core.openapi import answers
from openrisk.core.security import AccessClaims, InvalidToken, TokenCodec, sha256_hex
from openrisk.rbac.authz_cache import AuthzCache, cached_membership, member_key
from openrisk.rbac.service import ResolvedMembership
from openrisk.tokens.service import (
    LAST_USED_RESOLUTION,
    TokenIdentity,
    find_active_token,
    intersect_grants,
    is_api_token,
    touch_last_used,
)

# auto_error=False: a missing token is answered by our own 401 problem+json
oauth2_scheme = OAuth2PasswordBearer(tokenUrl="/api/v1/auth/token", auto_error=False)
BearerToken = Annotated[str | None, Depends(oauth2_scheme)]
TenantHeader = Annotated[str | None, Header(alias="X-Tenant-ID", max_length=80)]

_last_touch: dict[uuid.UUID, float] = {}
Generation = int | Literal["read"] | None


def request_origin(request: Request) -> RequestOrigin:
    return RequestOrigin(
        ip=request.client.host if request.client else None,
        user_agent=request.headers.get("user-agent"),
        request_id=request_id_var.get(),
    )


def _decode_jwt(token: str, codec: TokenCodec) -> AccessClaims:
    try:
        return codec.decode_access(token)
    except InvalidToken as error:
        raise Unauthorized("Invalid or expired token") from error


async def _check_session(
    session: AsyncSession, authz: AuthzCache, claims: AccessClaims, generation: Generation
) -> None:
    """An access token lives only as long as its sign-in: logout and refresh-token reuse end it.

    The answer is kept in the authorization cache, whose generation every revocation bumps, so
    a revocation bites on the next request in every worker and host while a warm request pays
    no database read.
    """
    active = await authz.get_or_load(
        ("session", claims.session_id),
        lambda: session_is_active(session, session_id=claims.session_id, user_id=claims.user_id),
        generation=generation,
    )
    if not active:
        raise Unauthorized("This session has ended; sign in again.")


async def _token_identity(
    session: AsyncSession, authz: AuthzCache, secret: str, generation: Generation = "read"
) -> TokenIdentity:
    identity = await authz.get_or_load(
        ("token", sha256_hex(secret)),
        lambda: find_active_token(session, secret=secret),
        generation=generation,
    )
    if identity is None or (identity.expires_at and identity.expires_at <= datetime.now(UTC)):
        raise Unauthorized("Invalid, expired or revoked API token")
    return identity


async def _touch_token(session: AsyncSession, token_id: uuid.UUID) -> None:
    """Keep last_used_at without a write per request: at most once a minute per process."""
    now = time.monotonic()
    if now - _last_touch.get(token_id, float("-inf")) >= LAST_USED_RESOLUTION.total_seconds():
        _last_touch[token_id] = now
        await touch_last_used(session, token_id=token_id)


async def _resolve_api_token(
    session: AsyncSession,
    authz: AuthzCache,
    generation: Generation,
    secret: str,
    tenant_ref: str | None,
) -> tuple[ResolvedMembership, uuid.UUID]:
    """A token acts with its grants narrowed by its user's current role, in its own tenant only."""
    identity = await _token_identity(session, authz, secret, generation)
    try:
        membership = await cached_membership(
            authz, session, identity.user_id, str(identity.tenant_id), generation=generation
        )
    except NotFound as error:
        raise Unauthorized("The API token's user is no longer a member of its tenant") from error
    if tenant_ref and tenant_ref not in (str(membership.tenant_id), membership.tenant_slug):
        raise NotFound("Tenant not found.")
    await _touch_token(session, identity.token_id)
    grants = intersect_grants(list(identity.grants), list(membership.grants))
    return dataclasses.replace(membership, grants=grants), identity.token_id


async def resolve_context(
    request: Request,
    session: AsyncSession,
    codec: TokenCodec,
    bearer: str | None,
    tenant_ref: str | None,
    *,
    allow_suspended: bool = False,
) -> RequestContext:
    """Resolve the caller's membership in the named (or default) tenant, once per request."""
    if not bearer:
        raise Unauthorized("Not authenticated")
    authz: AuthzCache = request.app.state.authz
    generation = await authz.generation()  # one read: everything below is of this generation
    token_id, claims = None, None
    if is_api_token(bearer):
        membership, token_id = await _resolve_api_token(
            session, authz, generation, bearer, tenant_ref
        )
    else:
        claims = _decode_jwt(bearer, codec)
        await _check_session(session, authz, claims, generation)
        membership = await cached_membership(
            authz, session, claims.user_id, tenant_ref, generation=generation
        )
    context = membership.context(
        token_id=token_id, origin=request_origin(request), allow_suspended=allow_suspended
    )
    if claims is not None and generation is not None and not allow_suspended:
        # reusable while the token and the cached membership it was decided from both are
        cached_for = authz.expires_in(member_key(claims.user_id, tenant_ref), generation)
        valid_until = min(claims.expires_at.timestamp(), time.time() + cached_for)
        vouch(request.scope, Authorization(generation=generation, valid_until=valid_until))
    await bind_session_to_tenant(session, context.tenant_id)
    request.state.context = context
    return context


@answers(401, 403, 404)  # unknown, suspended or foreign tenant
async def get_context(
    request: Request,
    session: SessionDep,
    bearer: BearerToken,
    x_tenant_id: TenantHeader = None,
) -> RequestContext:
    """The context of the tenant named by ``X-Tenant-ID`` (id or slug), or the default one.
    (The token codec is the app's, read here: a dependency of its own cost every request a
    node of FastAPI's dependency solving.)"""
    return await resolve_context(request, session, request.app.state.codec, bearer, x_tenant_id)


ContextDep = Annotated[RequestContext, Depends(get_context)]


def require(code: str) -> Callable[..., Awaitable[RequestContext]]:
    """Dependency factory: the caller must hold ``code`` (at least on its own rows)."""

    async def check_permission(context: ContextDep) -> RequestContext:
        context.require(code)
        return context

    check_permission.permission = code  # type: ignore[attr-defined]  # read by route-table tests
    return check_permission


def require_in_path_tenant(
    code: str, *, allow_suspended: bool = False
) -> Callable[..., Awaitable[RequestContext]]:
    """Like ``require``, for ``/tenants/{tenant_id}/...``: the tenant is the one in the path.

    ``allow_suspended`` lets the tenant's own administration (reactivation) reach a suspended
    tenant that every other route refuses.
    """

    async def check_permission(
        request: Request,
        session: SessionDep,
        codec: CodecDep,
        bearer: BearerToken,
        tenant_id: uuid.UUID,
    ) -> RequestContext:
        context = await resolve_context(
            request, session, codec, bearer, str(tenant_id), allow_suspended=allow_suspended
        )
        context.require(code)
        return context

    check_permission.permission = code  # type: ignore[attr-defined]
    return check_permission


@answers(401)
async def get_principal(
    request: Request, session: SessionDep, codec: CodecDep, bearer: BearerToken
) -> Principal:
    """The authenticated user, for routes outside any tenant (``/auth/me``, ``/tenants``)."""
    if not bearer:
        raise Unauthorized("Not authenticated")
    token_id = token_tenant_id = None
    if is_api_token(bearer):
        identity = await _token_identity(session, request.app.state.authz, bearer)
        user_id, token_id, token_tenant_id = identity.user_id, identity.token_id, identity.tenant_id
    else:
        claims = _decode_jwt(bearer, codec)
        await _check_session(session, request.app.state.authz, claims, "read")
        user_id = claims.user_id
    user = await get_active_user(session, user_id=user_id)
    return Principal(
        user_id=user.id,
        email=user.email,
        is_superuser=user.is_superuser,
        token_id=token_id,
        token_tenant_id=token_tenant_id,
    )


PrincipalDep = Annotated[Principal, Depends(get_principal)]


@answers(403)
async def require_superuser(principal: PrincipalDep) -> Principal:
    if not principal.is_superuser:
        raise Forbidden("Platform operators only.")
    return principal


SuperuserDep = Annotated[Principal, Depends(require_superuser)]
