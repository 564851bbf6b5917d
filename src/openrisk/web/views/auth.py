"""Signing in and out, switching tenant, accepting an invitation."""

from __future__ import annotations

import uuid

from fastapi import Request
from starlette.responses import Response

from openrisk.auth import service as auth
from openrisk.auth.deps import request_origin
from openrisk.auth.emails import InvalidEmail, normalise_email
from openrisk.core.deps import CodecDep, SessionDep, SettingsDep
from openrisk.core.errors import Conflict, NotFound, TooManyRequests, Unauthorized
from openrisk.core.security import TokenCodec
from openrisk.core.uow import UowDep
from openrisk.rbac.authz_cache import AuthzCache, cached_membership
from openrisk.tenants import members
from openrisk.tenants.service import get_tenant
from openrisk.web import forms
from openrisk.web.context import LoginRequired, signed_in
from openrisk.web.csrf import (
    CsrfFailed,
    anonymous_token,
    anonymous_token_valid,
    check_session_csrf,
    set_anonymous_cookie,
)
from openrisk.web.rendering import redirect, render
from openrisk.web.session import (
    clear_session,
    new_session,
    revoke_session,
    set_flash,
    write_session,
)
from openrisk.web.views.common import page_router

router = page_router()

MIN_PASSWORD = 10


def safe_next(target: str | None) -> str:
    """Only local paths: never an open redirect to another site."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


def _login_page(
    request: Request,
    *,
    email: str = "",
    error: str = "",
    errors: dict[str, str] | None = None,
    status: int = 200,
    next_url: str | None = None,
) -> Response:
    token = anonymous_token(request)
    response = render(
        request,
        "login.html",
        {
            "email": email,
            "error": error,
            "errors": errors or {},
            "next": safe_next(next_url or request.query_params.get("next")),
            "anon_csrf": token,
        },
        status=status,
    )
    set_anonymous_cookie(request, response, token)
    return response


def _start_session(
    request: Request, response: Response, codec: TokenCodec, tokens: auth.IssuedTokens
) -> None:
    claims = codec.decode_access(tokens.access_token)
    state = new_session(
        request.app.state.settings, user_id=claims.user_id, session_id=claims.session_id
    )
    write_session(request, response, state)


@router.get("/login")
async def login_form(request: Request, session: SessionDep) -> Response:
    try:
        await signed_in(request, session)
    except LoginRequired:
        return _login_page(request)
    return redirect(safe_next(request.query_params.get("next")))


@router.post("/login")
async def login(request: Request, uow: UowDep, codec: CodecDep, settings: SettingsDep) -> Response:
    form = await request.form()
    email, password = forms.text(form, "email"), str(form.get("password") or "")
    target = safe_next(forms.text(form, "next"))

    def again(error: str = "", errors: dict[str, str] | None = None, status: int = 200) -> Response:
        return _login_page(
            request, email=email, error=error, errors=errors, status=status, next_url=target
        )

    if not anonymous_token_valid(request, form):
        return again(CsrfFailed().detail, status=403)
    errors = {}
    if not email:
        errors["email"] = "Enter your email address."
    else:
        try:
            email = normalise_email(email)
        except InvalidEmail as error:
            errors["email"] = str(error)
    if not password:
        errors["password"] = "Enter your password."
    if errors:
        return again(errors=errors, status=422)
    try:
        tokens = await auth.login(
            uow=uow,
            codec=codec,
            settings=settings,
            limits=request.app.state.rate_limits,
            email=email,
            password=password,
            origin=request_origin(request),
        )
    except Unauthorized:
        return again("Invalid email or password.", status=401)
    except TooManyRequests as error:
        response = again(error.detail, status=429)
        response.headers.update(error.headers)
        return response
    response = redirect(target)
    _start_session(request, response, codec, tokens)
    return response


@router.post("/logout")
async def logout(request: Request, uow: UowDep) -> Response:
    response = redirect("/login")
    try:
        state = await signed_in(request, uow.session)
    except LoginRequired:
        clear_session(request, response)
        return response
    check_session_csrf(request, state, await request.form())
    # every worker drops its cached "this session is active" answer
    await revoke_session(uow=uow, session_id=state.session_id)
    clear_session(request, response)
    set_flash(request, response, "You are signed out.", level="info")
    return response


@router.post("/switch-tenant")
async def switch_tenant(request: Request, session: SessionDep) -> Response:
    """Make another of the user's tenants the current one (404 unless a member).

    Needs only the session, not a usable current tenant: one can leave a suspended tenant.
    """
    state = await signed_in(request, session)
    form = await request.form()
    check_session_csrf(request, state, form)
    try:
        tenant_id = uuid.UUID(forms.text(form, "tenant_id"))
    except ValueError:
        raise NotFound("Tenant not found.") from None
    authz: AuthzCache = request.app.state.authz
    membership = await cached_membership(authz, session, state.user_id, str(tenant_id))
    response = redirect(safe_next(forms.text(form, "next")))
    write_session(request, response, state.in_tenant(membership.tenant_id))
    name = (await get_tenant(session, tenant_id=membership.tenant_id)).name
    set_flash(request, response, f"You are now working in {name}.", level="info")
    return response


# --------------------------------------------------------------------------- invitations


def _invitation_page(
    request: Request,
    token: str,
    *,
    full_name: str = "",
    errors: dict[str, str] | None = None,
    status: int = 200,
) -> Response:
    anon = anonymous_token(request)
    response = render(
        request,
        "invitation.html",
        {"token": token, "full_name": full_name, "errors": errors or {}, "anon_csrf": anon},
        status=status,
    )
    set_anonymous_cookie(request, response, anon)
    return response


@router.get("/invitations/{token}")
async def invitation_form(request: Request, token: str) -> Response:
    return _invitation_page(request, token)


@router.post("/invitations/{token}")
async def accept_invitation(
    request: Request,
    token: str,
    uow: UowDep,
    codec: CodecDep,
    settings: SettingsDep,
) -> Response:
    """Set a password through a one-time invitation link; then the person is signed in."""
    form = await request.form()
    full_name, password = forms.text(form, "full_name"), str(form.get("password") or "")
    errors: dict[str, str] = {}
    if not anonymous_token_valid(request, form):
        errors[forms.FORM_ERROR] = CsrfFailed().detail
        return _invitation_page(request, token, full_name=full_name, errors=errors, status=403)
    if len(password) < MIN_PASSWORD:
        errors["password"] = f"Use at least {MIN_PASSWORD} characters."
    elif password != str(form.get("password_confirm") or ""):
        errors["password_confirm"] = "The two passwords differ."
    if len(full_name) > 200:
        errors["full_name"] = "Use at most 200 characters."
    if errors:
        return _invitation_page(request, token, full_name=full_name, errors=errors, status=422)
    try:
        user = await members.accept_invitation(
            uow=uow, token=token, password=password, full_name=full_name
        )
    except (NotFound, Conflict) as error:
        errors[forms.FORM_ERROR] = error.detail
        return _invitation_page(
            request, token, full_name=full_name, errors=errors, status=error.status
        )
    tokens = await auth.sign_in(uow=uow, codec=codec, settings=settings, user=user)
    response = redirect("/")
    _start_session(request, response, codec, tokens)
    set_flash(
        request, response, "Welcome to OpenRisk: your account is ready and you are signed in."
    )
    return response
