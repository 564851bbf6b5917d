"""Authentication and the per-request context: bearer token → principal → tenant → permissions."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Header, Request
from fastapi.security import OAuth2PasswordBearer

from openrisk.auth.service import get_active_user
from openrisk.core.context import Principal, RequestContext, RequestOrigin
from openrisk.core.deps import CodecDep, SessionDep
from openrisk.core.errors import Forbidden, Unauthorized
from openrisk.core.logging import request_id_var
from openrisk.core.security import AccessClaims, InvalidToken, TokenCodec
from openrisk.rbac.service import resolve_membership

# auto_error=False: a missing token is answered by our own 401 problem+json
oauth2_scheme = OAuth2PasswordBearer(tokenUrl="/api/v1/auth/token", auto_error=False)
BearerToken = Annotated[str | None, Depends(oauth2_scheme)]


def request_origin(request: Request) -> RequestOrigin:
    return RequestOrigin(
        ip=request.client.host if request.client else None,
        user_agent=request.headers.get("user-agent"),
        request_id=request_id_var.get(),
    )


def decode_bearer(token: str | None, codec: TokenCodec) -> AccessClaims:
    if not token:
        raise Unauthorized("Not authenticated")
    try:
        return codec.decode_access(token)
    except InvalidToken as error:
        raise Unauthorized("Invalid or expired token") from error


async def get_claims(token: BearerToken, codec: CodecDep) -> AccessClaims:
    return decode_bearer(token, codec)


async def get_context(
    request: Request,
    session: SessionDep,
    claims: Annotated[AccessClaims, Depends(get_claims)],
    x_tenant_id: Annotated[str | None, Header(max_length=80)] = None,
) -> RequestContext:
    """Resolve the caller's membership in the named (or default) tenant, once per request."""
    membership = await resolve_membership(session, user_id=claims.user_id, tenant_ref=x_tenant_id)
    context = membership.context(origin=request_origin(request))
    request.state.context = context
    return context


ContextDep = Annotated[RequestContext, Depends(get_context)]


def require(code: str) -> Callable[..., Awaitable[RequestContext]]:
    """Dependency factory: the caller must hold ``code`` (at least on its own rows)."""

    async def check_permission(context: ContextDep) -> RequestContext:
        context.require(code)
        return context

    check_permission.permission = code  # type: ignore[attr-defined]  # read by route-table tests
    return check_permission


async def get_principal(
    session: SessionDep, claims: Annotated[AccessClaims, Depends(get_claims)]
) -> Principal:
    user = await get_active_user(session, user_id=claims.user_id)
    return Principal(user_id=user.id, email=user.email, is_superuser=user.is_superuser)


PrincipalDep = Annotated[Principal, Depends(get_principal)]


async def require_superuser(principal: PrincipalDep) -> Principal:
    if not principal.is_superuser:
        raise Forbidden("Platform operators only.")
    return principal


SuperuserDep = Annotated[Principal, Depends(require_superuser)]
