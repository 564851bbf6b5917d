from __future__ import annotations

from typing import Annotated

from fastapi import Depends, status

from openrisk.auth.deps import PrincipalDep, require_in_path_tenant
from openrisk.core.context import RequestContext
from openrisk.core.deps import RateLimitsDep, SessionDep, SettingsDep
from openrisk.core.pagination import Page, PageParams, page_params
from openrisk.core.routing import api_router
from openrisk.core.uow import UowDep
from openrisk.tenants import service
from openrisk.tenants.schemas import TenantCreate, TenantOut, TenantStats, TenantUpdate

# tenant creation reserved to operators, or to a token's own tenant
router = api_router("/tenants", tags=["tenants"], answers=(403,))


@router.get("")
async def list_tenants(
    principal: PrincipalDep,
    session: SessionDep,
    page: Annotated[PageParams, Depends(page_params)],
) -> Page[TenantOut]:
    """The tenants the caller is a member of."""
    tenants, total = await service.list_user_tenants(
        session, principal=principal, offset=page.offset, limit=page.page_size
    )
    return Page(
        items=[TenantOut.model_validate(t) for t in tenants],
        total=total,
        page=page.page,
        page_size=page.page_size,
    )


@router.post("", status_code=status.HTTP_201_CREATED)
async def create_tenant(
    body: TenantCreate,
    principal: PrincipalDep,
    uow: UowDep,
    settings: SettingsDep,
    limits: RateLimitsDep,
) -> TenantOut:
    """Create a tenant; the caller becomes its Admin (OPENRISK_TENANT_CREATION says who may)."""
    tenant = await service.create_tenant_for(
        uow=uow,
        principal=principal,
        settings=settings,
        limits=limits,
        name=body.name,
        slug=body.slug,
    )
    return TenantOut.model_validate(tenant)


@router.get("/{tenant_id}")
async def get_tenant(
    context: Annotated[RequestContext, Depends(require_in_path_tenant("tenant:read"))],
    session: SessionDep,
) -> TenantOut:
    """A tenant the caller is a member of (404 otherwise, whatever exists)."""
    return TenantOut.model_validate(await service.get_tenant(session, tenant_id=context.tenant_id))


@router.patch("/{tenant_id}")
async def update_tenant(
    body: TenantUpdate,
    context: Annotated[
        RequestContext, Depends(require_in_path_tenant("tenant:update", allow_suspended=True))
    ],
    uow: UowDep,
) -> TenantOut:
    tenant = await service.update_tenant(
        uow=uow, context=context, name=body.name, status=body.status, settings=body.settings
    )
    return TenantOut.model_validate(tenant)


@router.delete("/{tenant_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_tenant(
    context: Annotated[RequestContext, Depends(require_in_path_tenant("tenant:delete"))],
    uow: UowDep,
) -> None:
    """Delete the tenant and everything it owns."""
    await service.delete_tenant(uow=uow, context=context)


@router.get("/{tenant_id}/stats")
async def tenant_stats(
    context: Annotated[RequestContext, Depends(require_in_path_tenant("tenant:read"))],
    session: SessionDep,
) -> TenantStats:
    counts = await service.tenant_stats(session, context=context)
    return TenantStats(tenant_id=context.tenant_id, **counts)
