"""Members, roles (the permission matrix grid) and API tokens of the current tenant.

Role assignment follows the permission rules: only roles below one's level (Admins: any),
only members below one's level, only permissions one holds. The pages offer only what these
rules allow; the services enforce them on submit.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from fastapi import Request
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import Response

from openrisk.core.deps import SessionDep
from openrisk.core.errors import Conflict, Forbidden, ValidationFailed
from openrisk.core.uow import UowDep
from openrisk.rbac import roles as role_service
from openrisk.rbac.catalogue import ALL_PERMISSIONS, CATALOGUE, OWN_SCOPE, OWN_SCOPED, split_grant
from openrisk.rbac.models import Role
from openrisk.rbac.schemas import RoleCreate, RoleUpdate
from openrisk.tenants import members
from openrisk.tenants.member_schemas import MemberInvite
from openrisk.tokens import service as tokens
from openrisk.tokens.models import ApiToken
from openrisk.tokens.schemas import TokenCreate
from openrisk.web import forms
from openrisk.web.context import FormDep, WebContext, WebDep
from openrisk.web.rendering import flash_redirect, render
from openrisk.web.views.common import (
    member_directory,
    page_router,
    pager,
    uuid_param,
)

router = page_router()

ROLES_LIMIT = 100
INVITATIONS_LIMIT = 100
TOKEN_EXPIRY_DAYS = ("7", "30", "90", "365", "never")


async def _roles(session: AsyncSession, web: WebContext) -> list[Role]:
    found, _ = await role_service.list_roles(
        session, context=web.context, offset=0, limit=ROLES_LIMIT
    )
    return found


def _flash_back(request: Request, url: str, message: str, *, level: str = "success") -> Response:
    return flash_redirect(request, url, message, level=level)


# --------------------------------------------------------------------------- members


async def _members_page(
    request: Request,
    web: WebContext,
    session: AsyncSession,
    *,
    invite_values: dict[str, str] | None = None,
    invite_errors: dict[str, str] | None = None,
    invitation: dict[str, Any] | None = None,
    status: int = 200,
) -> Response:
    web.require("member:read")
    page = pager(request, default_size=50, sizes=(50, 100))
    rows, total = await members.list_members(
        session, context=web.context, offset=page.offset, limit=page.page_size
    )
    all_roles = await _roles(session, web)
    pending: list[members.PendingInvitation] = []
    if web.has("member:invite"):
        pending, _ = await members.list_invitations(
            session, context=web.context, offset=0, limit=INVITATIONS_LIMIT
        )
    return render(
        request,
        "settings/members.html",
        {
            "members": rows,
            "pending": pending,
            "pager": page.with_total(total),
            "roles": all_roles,
            "assignable": [r for r in all_roles if web.can_use_level(r.level)],
            "invite_values": invite_values or {},
            "invite_errors": invite_errors or {},
            "invitation": invitation,
        },
        web=web,
        section="members",
        status=status,
    )


@router.get("/settings/members")
async def members_page(request: Request, web: WebDep, session: SessionDep) -> Response:
    return await _members_page(request, web, session)


@router.post("/settings/members")
async def invite_member(
    request: Request, web: FormDep, session: SessionDep, uow: UowDep
) -> Response:
    web.require("member:invite")
    assert web.form is not None
    values = {"email": forms.text(web.form, "email"), "role_id": forms.text(web.form, "role_id")}
    with forms.refusals(also={Conflict: "email"}) as refused:
        body = MemberInvite.model_validate(values)
        result = await members.invite(
            uow=uow,
            context=web.context,
            email=body.email,
            role_id=body.role_id,
            settings=request.app.state.settings,
        )
    if refused:
        return await _members_page(
            request, web, session, invite_values=values, invite_errors=refused.errors, status=422
        )
    if result.member is not None:
        return _flash_back(request, "/settings/members", f"{result.member.email} is now a member.")
    link = str(request.base_url).rstrip("/") + f"/invitations/{result.invitation_token}"
    invitation = {"email": body.email, "url": link, "expires_at": result.invitation_expires_at}
    return await _members_page(request, web, session, invitation=invitation)


@router.post("/settings/invitations/{invitation_id}/renew")
async def renew_invitation(
    request: Request, invitation_id: uuid.UUID, web: FormDep, session: SessionDep, uow: UowDep
) -> Response:
    """A fresh one-time link for a pending invitation, shown once (the old one stops working)."""
    web.require("member:invite")
    result = await members.renew_invitation(
        uow=uow,
        context=web.context,
        invitation_id=invitation_id,
        settings=request.app.state.settings,
    )
    pending = await members.list_invitations(session, context=web.context, offset=0, limit=1_000)
    email = next((i.email for i in pending[0] if i.id == invitation_id), "")
    link = str(request.base_url).rstrip("/") + f"/invitations/{result.invitation_token}"
    invitation = {"email": email, "url": link, "expires_at": result.invitation_expires_at}
    return await _members_page(request, web, session, invitation=invitation)


@router.post("/settings/invitations/{invitation_id}/revoke")
async def revoke_invitation(
    request: Request, invitation_id: uuid.UUID, web: FormDep, uow: UowDep
) -> Response:
    web.require("member:invite")
    await members.revoke_invitation(uow=uow, context=web.context, invitation_id=invitation_id)
    return _flash_back(
        request, "/settings/members", "Invitation withdrawn: its link no longer works."
    )


@router.get("/settings/members/{user_id}")
async def member_detail(
    request: Request, user_id: uuid.UUID, web: WebDep, session: SessionDep
) -> Response:
    """Effective permissions of a member and where each comes from."""
    web.require("member:read")
    member, permissions = await members.effective_permissions(
        session, context=web.context, user_id=user_id
    )
    return render(
        request,
        "settings/member.html",
        {"member": member, "permissions": permissions},
        web=web,
        section="members",
    )


@router.post("/settings/members/{user_id}/role")
async def change_role(request: Request, user_id: uuid.UUID, web: FormDep, uow: UowDep) -> Response:
    web.require("member:update_role")
    assert web.form is not None
    role_id = uuid_param(forms.text(web.form, "role_id"))
    if role_id is None:
        return _flash_back(request, "/settings/members", "Choose a role.", level="error")
    try:
        row = await members.change_role(
            uow=uow, context=web.context, user_id=user_id, role_id=role_id
        )
    except Conflict as error:
        return _flash_back(request, "/settings/members", error.detail, level="error")
    return _flash_back(request, "/settings/members", f"{row.email} is now {row.role_name}.")


@router.post("/settings/members/{user_id}/remove")
async def remove_member(
    request: Request, user_id: uuid.UUID, web: FormDep, uow: UowDep
) -> Response:
    web.require("member:remove")
    try:
        await members.remove_member(uow=uow, context=web.context, user_id=user_id)
    except Conflict as error:
        return _flash_back(request, "/settings/members", error.detail, level="error")
    return _flash_back(request, "/settings/members", "Member removed.")


# --------------------------------------------------------------------------- roles


@dataclass(frozen=True)
class MatrixRow:
    resource: str
    action: str
    code: str
    first_of_resource: bool
    rows_of_resource: int


MATRIX: tuple[MatrixRow, ...] = tuple(
    MatrixRow(resource, action, f"{resource}:{action}", i == 0, len(actions))
    for resource, actions in CATALOGUE.items()
    for i, action in enumerate(actions)
)


def grant_scopes(grants: list[str]) -> dict[str, str]:
    """``{code: "all" | "own"}`` of a role's grants ("all" wins over "own")."""
    scopes: dict[str, str] = {}
    for grant in grants:
        code, scope = split_grant(grant)
        if scope != OWN_SCOPE or code not in scopes:
            scopes[code] = "own" if scope == OWN_SCOPE else "all"
    return scopes


def grants_from_form(form: Any) -> list[str]:
    """The grid column of one role: a select per permission, "", "all" or "own"."""
    grants: list[str] = []
    for code in ALL_PERMISSIONS:
        scope = form.get(code)
        if scope == "all":
            grants.append(code)
        elif scope == "own":
            grants.append(f"{code}:{OWN_SCOPE}")
    return grants


def _role_values(form: Any) -> dict[str, Any]:
    return {
        "name": forms.text(form, "name"),
        "description": forms.text(form, "description"),
        "level": forms.text(form, "level"),
        "scopes": grant_scopes(grants_from_form(form)),
    }


async def _roles_page(
    request: Request,
    web: WebContext,
    session: AsyncSession,
    *,
    editing: uuid.UUID | None = None,
    values: dict[str, Any] | None = None,
    errors: dict[str, str] | None = None,
    status: int = 200,
) -> Response:
    web.require("role:read")
    all_roles = await _roles(session, web)
    columns = [
        {
            "role": role,
            "scopes": (values["scopes"] if values is not None and editing == role.id else None)
            or grant_scopes(role.permissions),
            "editable": not role.is_predefined
            and web.has("role:update")
            and web.can_use_level(role.level),
            "form_id": f"role-{role.id}",
        }
        for role in all_roles
    ]
    new_values = values if values is not None and editing is None else {}
    return render(
        request,
        "settings/roles.html",
        {
            "columns": columns,
            "matrix": MATRIX,
            "own_scoped": OWN_SCOPED,
            "levels": [lvl for lvl in range(10) if web.can_use_level(lvl)],
            "new_values": new_values,
            "new_scopes": new_values.get("scopes", {}),
            "editing": editing,
            "values": values or {},
            "errors": errors or {},
        },
        web=web,
        section="roles",
        status=status,
    )


@router.get("/settings/roles")
async def roles_page(request: Request, web: WebDep, session: SessionDep) -> Response:
    return await _roles_page(request, web, session)


def _role_errors(error: Exception) -> dict[str, str]:
    if isinstance(error, ValidationError):
        return forms.pydantic_errors(error)
    if isinstance(error, ValidationFailed):
        return forms.service_errors(error)
    if isinstance(error, Conflict):
        return {"name": error.detail}
    assert isinstance(error, Forbidden)
    return {forms.FORM_ERROR: error.detail}


@router.post("/settings/roles")
async def create_role(request: Request, web: FormDep, session: SessionDep, uow: UowDep) -> Response:
    web.require("role:create")
    assert web.form is not None
    values = _role_values(web.form)
    try:
        body = RoleCreate.model_validate(
            {
                "name": values["name"],
                "description": values["description"],
                "level": values["level"],
                "permissions": grants_from_form(web.form),
            }
        )
        role = await role_service.create_role(
            uow=uow,
            context=web.context,
            name=body.name,
            description=body.description,
            level=body.level,
            permissions=body.permissions,
        )
    except (ValidationError, ValidationFailed, Conflict, Forbidden) as error:
        await session.rollback()
        return await _roles_page(
            request, web, session, values=values, errors=_role_errors(error), status=422
        )
    return _flash_back(request, "/settings/roles", f"Role “{role.name}” created.")


@router.post("/settings/roles/{role_id}")
async def update_role(
    request: Request, role_id: uuid.UUID, web: FormDep, session: SessionDep, uow: UowDep
) -> Response:
    web.require("role:update")
    assert web.form is not None
    values = _role_values(web.form)
    try:
        body = RoleUpdate.model_validate(
            {
                "name": values["name"],
                "description": values["description"],
                "level": values["level"],
            }
        )
        role = await role_service.update_role(
            uow=uow,
            context=web.context,
            role_id=role_id,
            name=body.name,
            description=body.description,
            level=body.level,
            permissions=grants_from_form(web.form),
        )
    except (ValidationError, ValidationFailed, Conflict) as error:
        await session.rollback()
        return await _roles_page(
            request,
            web,
            session,
            editing=role_id,
            values=values,
            errors=_role_errors(error),
            status=422,
        )
    return _flash_back(request, "/settings/roles", f"Role “{role.name}” saved.")


@router.post("/settings/roles/{role_id}/delete")
async def delete_role(request: Request, role_id: uuid.UUID, web: FormDep, uow: UowDep) -> Response:
    web.require("role:delete")
    try:
        await role_service.delete_role(uow=uow, context=web.context, role_id=role_id)
    except Conflict as error:
        return _flash_back(request, "/settings/roles", error.detail, level="error")
    return _flash_back(request, "/settings/roles", "Role deleted.")


# --------------------------------------------------------------------------- tokens


def _own_grants(web: WebContext) -> list[str]:
    """The grants a token may carry: the caller's own, with their scope."""
    context = web.context
    return sorted(
        [*context.permissions, *(f"{code}:{OWN_SCOPE}" for code in context.own_permissions)]
    )


async def _tokens_page(
    request: Request,
    web: WebContext,
    session: AsyncSession,
    *,
    created: tokens.NewToken | None = None,
    values: dict[str, Any] | None = None,
    errors: dict[str, str] | None = None,
    status: int = 200,
) -> Response:
    if not web.has("token:create"):
        web.require("token:read")
    page = pager(request)
    rows: list[ApiToken] = []
    total = 0
    if web.has("token:read"):
        rows, total = await tokens.list_tokens(
            session, context=web.context, offset=page.offset, limit=page.page_size
        )
    return render(
        request,
        "settings/tokens.html",
        {
            "tokens": rows,
            "pager": page.with_total(total),
            "created": created,
            "values": values or {"expires": "90", "permissions": []},
            "errors": errors or {},
            "expiry_options": TOKEN_EXPIRY_DAYS,
            "grants": _own_grants(web),
            "directory": await member_directory(request, session, web),
        },
        web=web,
        section="tokens",
        status=status,
    )


@router.get("/settings/tokens")
async def tokens_page(request: Request, web: WebDep, session: SessionDep) -> Response:
    return await _tokens_page(request, web, session)


@router.post("/settings/tokens")
async def create_token(
    request: Request, web: FormDep, session: SessionDep, uow: UowDep
) -> Response:
    web.require("token:create")
    assert web.form is not None
    expires = forms.text(web.form, "expires")
    chosen = forms.strings(web.form, "permissions")
    values = {"name": forms.text(web.form, "name"), "expires": expires, "permissions": chosen}
    with forms.refusals(also={Forbidden: "permissions"}) as refused:
        body = TokenCreate.model_validate(
            {
                "name": values["name"],
                "permissions": chosen or None,
                "expires_in_days": None if expires == "never" else (expires or 90),
            }
        )
        new = await tokens.create_token(
            uow=uow,
            context=web.context,
            name=body.name,
            permissions=body.permissions,
            expires_in_days=body.expires_in_days,
        )
    if refused:
        return await _tokens_page(
            request, web, session, values=values, errors=refused.errors, status=422
        )
    # the secret is shown in this answer only (no redirect, no caching)
    return await _tokens_page(request, web, session, created=new)


@router.post("/settings/tokens/{token_id}/revoke")
async def revoke_token(
    request: Request, token_id: uuid.UUID, web: FormDep, uow: UowDep
) -> Response:
    web.require("token:revoke")
    await tokens.revoke_token(uow=uow, context=web.context, token_id=token_id)
    return _flash_back(request, "/settings/tokens", "Token revoked.")
