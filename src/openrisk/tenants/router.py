from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Depends, status

from openrisk.auth.deps import PrincipalDep
from openrisk.core.deps import SessionDep
from openrisk.core.pagination import Page, PageParams, page_params
from openrisk.core.routing import api_router
from openrisk.rbac.catalogue import ADMIN
from openrisk.rbac.service import resolve_membership
from openrisk.tenants import service
from openrisk.tenants.schemas import TenantCreate, TenantOut

router = api_router("/tenants", tags=["tenants"])


@router.get("")
async def list_tenants(
    principal: PrincipalDep,
    session: SessionDep,
    page: Annotated[PageParams, Depends(page_params)],
) -> Page[TenantOut]:
    """The tenants the caller is a member of."""
    tenants, total = await service.list_user_tenants(
        session, user_id=principal.user_id, offset=page.offset, limit=page.page_size
    )
    return Page(
        items=[TenantOut.model_validate(t) for t in tenants],
        total=total,
        page=page.page,
        page_size=page.page_size,
    )


@router.post("", status_code=status.HTTP_201_CREATED)
async def create_tenant(
    body: TenantCreate, principal: PrincipalDep, session: SessionDep
) -> TenantOut:
    """Create a tenant; the caller becomes its Admin."""
    tenant = await service.create_tenant(
        session, name=body.name, owner_id=principal.user_id, role_id=ADMIN.id, slug=body.slug
    )
    await session.commit()
    return TenantOut.model_validate(tenant)


@router.get("/{tenant_id}")
async def get_tenant(
    tenant_id: uuid.UUID, principal: PrincipalDep, session: SessionDep
) -> TenantOut:
    """A tenant the caller is a member of (404 otherwise, whatever exists)."""
    membership = await resolve_membership(
        session, user_id=principal.user_id, tenant_ref=str(tenant_id)
    )
    membership.context().require("tenant:read")
    tenant = await service.get_tenant(session, tenant_id=membership.tenant_id)
    return TenantOut.model_validate(tenant)
