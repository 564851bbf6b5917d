from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request, status
from fastapi.security import OAuth2PasswordRequestForm

from openrisk.auth import service
from openrisk.auth.deps import PrincipalDep, request_origin
from openrisk.auth.schemas import (
    LoginRequest,
    MeOut,
    RefreshRequest,
    RegisterRequest,
    TokenPair,
    UserOut,
)
from openrisk.core.deps import CodecDep, RateLimitsDep, SessionDep, SettingsDep
from openrisk.core.errors import Forbidden
from openrisk.core.routing import api_router
from openrisk.core.uow import UowDep
from openrisk.tenants import members
from openrisk.tenants.member_schemas import AcceptInvitation

# credentials and refresh tokens refused, sign-up turned off, unknown invitations
router = api_router("/auth", tags=["auth"], answers=(401, 403, 404))


def _pair(tokens: service.IssuedTokens) -> TokenPair:
    return TokenPair(
        access_token=tokens.access_token,
        refresh_token=tokens.refresh_token,
        expires_in=tokens.expires_in,
        user=UserOut.model_validate(tokens.user),
    )


@router.post("/register", status_code=status.HTTP_201_CREATED)
async def register(
    body: RegisterRequest,
    request: Request,
    uow: UowDep,
    codec: CodecDep,
    settings: SettingsDep,
    limits: RateLimitsDep,
) -> TokenPair:
    if not settings.allow_signup:
        raise Forbidden("Sign-up is turned off on this server.")
    await service.throttle_signup(limits, settings=settings, origin=request_origin(request))
    tokens = await service.register(
        uow=uow,
        codec=codec,
        settings=settings,
        email=body.email,
        password=body.password,
        full_name=body.full_name,
        tenant_name=body.tenant_name,
    )
    return _pair(tokens)


@router.post("/login")
async def login(
    body: LoginRequest,
    request: Request,
    uow: UowDep,
    codec: CodecDep,
    settings: SettingsDep,
    limits: RateLimitsDep,
) -> TokenPair:
    tokens = await service.login(
        uow=uow,
        codec=codec,
        settings=settings,
        limits=limits,
        email=body.email,
        password=body.password,
        origin=request_origin(request),
    )
    return _pair(tokens)


@router.post("/token")
async def token(
    form: Annotated[OAuth2PasswordRequestForm, Depends()],
    request: Request,
    uow: UowDep,
    codec: CodecDep,
    settings: SettingsDep,
    limits: RateLimitsDep,
) -> TokenPair:
    """OAuth2 password flow, for the Authorize button of the interactive docs."""
    tokens = await service.login(
        uow=uow,
        codec=codec,
        settings=settings,
        limits=limits,
        email=form.username,
        password=form.password,
        origin=request_origin(request),
    )
    return _pair(tokens)


@router.post("/refresh")
async def refresh(
    body: RefreshRequest, uow: UowDep, codec: CodecDep, settings: SettingsDep
) -> TokenPair:
    tokens = await service.refresh(
        uow=uow, codec=codec, settings=settings, refresh_token=body.refresh_token
    )
    return _pair(tokens)


@router.post("/logout", status_code=status.HTTP_204_NO_CONTENT)
async def logout(body: RefreshRequest, uow: UowDep) -> None:
    """End the sign-in: its refresh tokens and, from the next request on, its access tokens."""
    await service.logout(uow=uow, refresh_token=body.refresh_token)


@router.get("/me")
async def me(principal: PrincipalDep, session: SessionDep) -> MeOut:
    user = await service.get_active_user(session, user_id=principal.user_id)
    memberships = await service.list_memberships(
        session, user_id=principal.user_id, only_tenant=principal.token_tenant_id
    )
    return MeOut(
        id=user.id,
        email=user.email,
        full_name=user.full_name,
        is_superuser=user.is_superuser,
        memberships=memberships,
    )


@router.post("/invitations/accept", status_code=status.HTTP_201_CREATED)
async def accept_invitation(
    body: AcceptInvitation, uow: UowDep, codec: CodecDep, settings: SettingsDep
) -> TokenPair:
    """Set a password through a one-time invitation link: the account and membership are created."""
    user = await members.accept_invitation(
        uow=uow, token=body.token, password=body.password, full_name=body.full_name
    )
    return _pair(await service.sign_in(uow=uow, codec=codec, settings=settings, user=user))
