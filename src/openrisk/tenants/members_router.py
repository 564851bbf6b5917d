"""Members of the current tenant: list, invite, change roles, remove, explain."""

from __future__ import annotations

import dataclasses
import uuid
from typing import Annotated

from fastapi import Depends, status

from openrisk.auth.deps import require
from openrisk.core.context import RequestContext
from openrisk.core.deps import SessionDep, SettingsDep
from openrisk.core.pagination import Page, PageParams, page_params
from openrisk.core.routing import api_router
from openrisk.core.uow import UowDep
from openrisk.tenants import members
from openrisk.tenants.member_schemas import (
    EffectivePermissionOut,
    EffectivePermissionsOut,
    InvitationOut,
    InviteOut,
    MemberInvite,
    MemberOut,
    MemberRoleUpdate,
)

router = api_router("/members", tags=["members"])


def _out(row: members.MemberRow) -> MemberOut:
    return MemberOut(**dataclasses.asdict(row))


@router.get("")
async def list_members(
    context: Annotated[RequestContext, Depends(require("member:read"))],
    session: SessionDep,
    page: Annotated[PageParams, Depends(page_params)],
) -> Page[MemberOut]:
    rows, total = await members.list_members(
        session, context=context, offset=page.offset, limit=page.page_size
    )
    return Page(
        items=[_out(r) for r in rows], total=total, page=page.page, page_size=page.page_size
    )


@router.post("", status_code=status.HTTP_201_CREATED)
async def invite_member(
    body: MemberInvite,
    context: Annotated[RequestContext, Depends(require("member:invite"))],
    uow: UowDep,
    settings: SettingsDep,
) -> InviteOut:
    """An existing account becomes a member; an unknown email gets a one-time invitation
    (mailed to it when e-mail is configured)."""
    result = await members.invite(
        uow=uow, context=context, email=body.email, role_id=body.role_id, settings=settings
    )
    if result.member is not None:
        return InviteOut(status="member_added", member=_out(result.member))
    return InviteOut(
        status="invited",
        invitation_token=result.invitation_token,
        invitation_url=f"/invitations/{result.invitation_token}",
        invitation_expires_at=result.invitation_expires_at,
    )


@router.get("/invitations")
async def list_invitations(
    context: Annotated[RequestContext, Depends(require("member:read"))],
    session: SessionDep,
    page: Annotated[PageParams, Depends(page_params)],
) -> Page[InvitationOut]:
    """Invitations not accepted yet, newest first (expired ones flagged)."""
    rows, total = await members.list_invitations(
        session, context=context, offset=page.offset, limit=page.page_size
    )
    return Page(
        items=[InvitationOut(**{**vars(r), "expired": r.expired}) for r in rows],
        total=total,
        page=page.page,
        page_size=page.page_size,
    )


@router.post("/invitations/{invitation_id}/renew")
async def renew_invitation(
    invitation_id: uuid.UUID,
    context: Annotated[RequestContext, Depends(require("member:invite"))],
    uow: UowDep,
    settings: SettingsDep,
) -> InviteOut:
    """A new one-time link for a pending invitation; the previous link stops working (the new
    one is mailed when e-mail is configured)."""
    result = await members.renew_invitation(
        uow=uow, context=context, invitation_id=invitation_id, settings=settings
    )
    return InviteOut(
        status="invited",
        invitation_token=result.invitation_token,
        invitation_url=f"/invitations/{result.invitation_token}",
        invitation_expires_at=result.invitation_expires_at,
    )


@router.delete("/invitations/{invitation_id}", status_code=status.HTTP_204_NO_CONTENT)
async def revoke_invitation(
    invitation_id: uuid.UUID,
    context: Annotated[RequestContext, Depends(require("member:invite"))],
    uow: UowDep,
) -> None:
    """Withdraw a pending invitation: its link stops working at once."""
    await members.revoke_invitation(uow=uow, context=context, invitation_id=invitation_id)


@router.get("/{user_id}")
async def get_member(
    user_id: uuid.UUID,
    context: Annotated[RequestContext, Depends(require("member:read"))],
    session: SessionDep,
) -> MemberOut:
    return _out(await members.get_member(session, context=context, user_id=user_id))


@router.patch("/{user_id}")
async def change_member_role(
    user_id: uuid.UUID,
    body: MemberRoleUpdate,
    context: Annotated[RequestContext, Depends(require("member:update_role"))],
    uow: UowDep,
) -> MemberOut:
    row = await members.change_role(uow=uow, context=context, user_id=user_id, role_id=body.role_id)
    return _out(row)


@router.delete("/{user_id}", status_code=status.HTTP_204_NO_CONTENT)
async def remove_member(
    user_id: uuid.UUID,
    context: Annotated[RequestContext, Depends(require("member:remove"))],
    uow: UowDep,
) -> None:
    await members.remove_member(uow=uow, context=context, user_id=user_id)


@router.get("/{user_id}/permissions")
async def member_permissions(
    user_id: uuid.UUID,
    context: Annotated[RequestContext, Depends(require("member:read"))],
    session: SessionDep,
) -> EffectivePermissionsOut:
    """Effective permissions of a member and where each comes from."""
    row, permissions = await members.effective_permissions(
        session, context=context, user_id=user_id
    )
    return EffectivePermissionsOut(
        member=_out(row),
        permissions=[EffectivePermissionOut(**dataclasses.asdict(p)) for p in permissions],
    )
