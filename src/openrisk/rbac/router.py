"""Permissions catalogue and custom roles."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Depends, status

from openrisk.auth.deps import require
from openrisk.core.context import RequestContext
from openrisk.core.deps import SessionDep
from openrisk.core.pagination import Page, PageParams, page_params
from openrisk.core.routing import api_router
from openrisk.core.uow import UowDep
from openrisk.rbac import roles
from openrisk.rbac.catalogue import ALL_PERMISSIONS
from openrisk.rbac.schemas import PermissionOut, RoleCreate, RoleOut, RolePermissions, RoleUpdate

router = api_router(tags=["roles"])
PageDep = Annotated[PageParams, Depends(page_params)]


@router.get("/permissions")
async def list_permissions(
    _: Annotated[RequestContext, Depends(require("role:read"))],
) -> Page[PermissionOut]:
    """The catalogue of the 44 permission codes."""
    items = [
        PermissionOut(code=code, resource=code.split(":")[0], action=code.split(":")[1])
        for code in ALL_PERMISSIONS
    ]
    return Page(items=items, total=len(items), page=1, page_size=len(items))


@router.get("/roles")
async def list_roles(
    context: Annotated[RequestContext, Depends(require("role:read"))],
    session: SessionDep,
    page: PageDep,
) -> Page[RoleOut]:
    """The four predefined roles and this tenant's custom roles."""
    items, total = await roles.list_roles(
        session, context=context, offset=page.offset, limit=page.page_size
    )
    return Page(
        items=[RoleOut.model_validate(r) for r in items],
        total=total,
        page=page.page,
        page_size=page.page_size,
    )


@router.post("/roles", status_code=status.HTTP_201_CREATED)
async def create_role(
    body: RoleCreate,
    context: Annotated[RequestContext, Depends(require("role:create"))],
    uow: UowDep,
) -> RoleOut:
    role = await roles.create_role(
        uow=uow,
        context=context,
        name=body.name,
        description=body.description,
        level=body.level,
        permissions=body.permissions,
    )
    return RoleOut.model_validate(role)


@router.get("/roles/{role_id}")
async def get_role(
    role_id: uuid.UUID,
    context: Annotated[RequestContext, Depends(require("role:read"))],
    session: SessionDep,
) -> RoleOut:
    return RoleOut.model_validate(await roles.get_role(session, context=context, role_id=role_id))


@router.patch("/roles/{role_id}")
async def update_role(
    role_id: uuid.UUID,
    body: RoleUpdate,
    context: Annotated[RequestContext, Depends(require("role:update"))],
    uow: UowDep,
) -> RoleOut:
    role = await roles.update_role(
        uow=uow,
        context=context,
        role_id=role_id,
        name=body.name,
        description=body.description,
        level=body.level,
    )
    return RoleOut.model_validate(role)


@router.put("/roles/{role_id}/permissions")
async def set_role_permissions(
    role_id: uuid.UUID,
    body: RolePermissions,
    context: Annotated[RequestContext, Depends(require("role:update"))],
    uow: UowDep,
) -> RoleOut:
    role = await roles.update_role(
        uow=uow, context=context, role_id=role_id, permissions=body.permissions
    )
    return RoleOut.model_validate(role)


@router.delete("/roles/{role_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_role(
    role_id: uuid.UUID,
    context: Annotated[RequestContext, Depends(require("role:delete"))],
    uow: UowDep,
) -> None:
    await roles.delete_role(uow=uow, context=context, role_id=role_id)
