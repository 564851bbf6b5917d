"""Who is using the web UI, in which tenant, with which permissions.

The context is built exactly as the API builds it (``openrisk.auth.deps``): the membership is
resolved by ``rbac.service.resolve_membership`` through the same process-local authorization
cache (same keys, same invalidation), so a page and an API call by the same person always get
the same permissions, and a role change is seen on the next page.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.datastructures import FormData

from openrisk.auth.deps import request_origin
from openrisk.auth.schemas import MembershipOut
from openrisk.auth.service import list_memberships
from openrisk.core.context import RequestContext
from openrisk.core.deps import SessionDep
from openrisk.core.errors import AppError, NotFound, Unauthorized
from openrisk.rbac.authz_cache import AuthzCache
from openrisk.rbac.catalogue import ADMIN
from openrisk.rbac.service import ResolvedMembership, resolve_membership
from openrisk.web.csrf import check_session_csrf
from openrisk.web.session import WebSession, csrf_token, read_session, session_active


class LoginRequired(Exception):
    """No valid session: the page answers with a redirect to the login form."""


class NoTenant(AppError):
    status, title = 404, "No organisation"


@dataclass
class WebContext:
    """A signed-in request of the web UI."""

    context: RequestContext
    state: WebSession
    csrf: str
    memberships: list[MembershipOut]
    tenant_reset: bool = False  # the cookie named a tenant the user has left: rewrite it
    form: FormData | None = field(default=None)

    @property
    def user_id(self) -> uuid.UUID:
        return self.context.user_id

    @property
    def email(self) -> str:
        return self.context.principal.email

    @property
    def tenant_id(self) -> uuid.UUID:
        return self.context.tenant_id

    @property
    def tenant_name(self) -> str:
        for membership in self.memberships:
            if membership.tenant_id == self.context.tenant_id:
                return membership.tenant_name
        return self.context.tenant_slug

    @property
    def is_admin(self) -> bool:
        return self.context.role_id == ADMIN.id

    def has(self, code: str) -> bool:
        """Holds ``code`` at least on its own rows (what shows a control)."""
        return self.context.has(code)

    def has_all(self, code: str) -> bool:
        """Holds ``code`` on every row of the tenant."""
        return self.context.has_any_scope(code)

    def can_on(self, code: str, *owner_ids: uuid.UUID | None) -> bool:
        """Would ``context.require_on(code, *owner_ids)`` allow it? (decides what is shown;
        the services check again on submit)."""
        return code in self.context.permissions or (
            code in self.context.own_permissions and self.user_id in owner_ids
        )

    def can_use_level(self, level: int) -> bool:
        """Roles (and members) below one's level; Admins: any."""
        return self.is_admin or level < self.context.role_level

    def require(self, code: str) -> None:
        self.context.require(code)


@dataclass(frozen=True)
class _Identity:
    """Everything a page needs to know about its signed-in user, cached as one entry."""

    active: bool  # the sign-in was not revoked
    memberships: tuple[MembershipOut, ...] = ()
    membership: ResolvedMembership | None = None  # None: not a member of the named tenant


async def _load_identity(
    session: AsyncSession, state: WebSession, tenant_ref: str | None
) -> _Identity:
    if not await session_active(session, session_id=state.session_id, user_id=state.user_id):
        return _Identity(active=False)
    memberships = await list_memberships(session, user_id=state.user_id)
    try:
        membership = await resolve_membership(session, user_id=state.user_id, tenant_ref=tenant_ref)
    except NotFound:
        membership = None
    return _Identity(True, tuple(memberships), membership)


async def _identity(
    request: Request, session: AsyncSession, state: WebSession, tenant_ref: str | None
) -> _Identity:
    """One authorization-cache lookup per page (one round trip to the shared cache); any
    membership, role, token or session change empties it in every worker."""
    authz: AuthzCache = request.app.state.authz
    return await authz.get_or_load(
        ("web", state.session_id, state.user_id, tenant_ref),
        lambda: _load_identity(session, state, tenant_ref),
    )


async def signed_in(request: Request, session: AsyncSession) -> WebSession:
    """The request's session, if its cookie is valid and the sign-in was not revoked."""
    state = read_session(request)
    if state is None:
        raise LoginRequired()
    authz: AuthzCache = request.app.state.authz
    active = await authz.get_or_load(
        ("web-session", state.session_id),
        lambda: session_active(session, session_id=state.session_id, user_id=state.user_id),
    )
    if not active:
        raise LoginRequired()
    return state


async def web_context(request: Request, session: SessionDep) -> WebContext:
    state = read_session(request)
    if state is None:
        raise LoginRequired()
    tenant_ref = str(state.tenant_id) if state.tenant_id else None
    try:
        identity = await _identity(request, session, state, tenant_ref)
        reset = False
        if identity.active and identity.membership is None and tenant_ref is not None:
            # the tenant in the cookie was left meanwhile: back to the default one
            state, reset = state.in_tenant(None), True
            identity = await _identity(request, session, state, None)
    except Unauthorized as error:  # the account was deactivated
        raise LoginRequired() from error
    if not identity.active:
        raise LoginRequired()
    token = csrf_token(request, state)
    request.state.web_csrf = token
    request.state.web_memberships = list(identity.memberships)
    membership = identity.membership
    if membership is None:
        raise NoTenant("You are not a member of any organisation any more.")
    request.state.web_tenant_id = membership.tenant_id
    context = membership.context(origin=request_origin(request))  # Forbidden when suspended
    web = WebContext(
        context=context,
        state=state,
        csrf=token,
        memberships=list(identity.memberships),
        tenant_reset=reset,
    )
    request.state.web = web
    return web


WebDep = Annotated[WebContext, Depends(web_context)]


async def web_form(request: Request, web: WebDep) -> WebContext:
    """A signed-in form submission: the CSRF token is checked before anything else runs."""
    form = await request.form()
    check_session_csrf(request, web.state, form)
    web.form = form
    return web


FormDep = Annotated[WebContext, Depends(web_form)]
