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
from openrisk.custom_fields import service
from openrisk.custom_fields.schemas import CustomFieldCreate, CustomFieldOut, CustomFieldUpdate
from openrisk.risks.responses import ERRORS, errors

router = api_router("/custom-fields", tags=["custom fields"])
router.responses = dict(ERRORS)

Reader = Annotated[RequestContext, Depends(require("custom_field:read"))]
Manager = Annotated[RequestContext, Depends(require("custom_field:manage"))]


@router.get("")
async def list_custom_fields(
    context: Reader, session: SessionDep, page: Annotated[PageParams, Depends(page_params)]
) -> Page[CustomFieldOut]:
    """The tenant's custom field definitions, by name."""
    fields, total = await service.list_fields(
        session, tenant_id=context.tenant_id, offset=page.offset, limit=page.page_size
    )
    return Page(
        items=[CustomFieldOut.model_validate(f) for f in fields],
        total=total,
        page=page.page,
        page_size=page.page_size,
    )


@router.post("", status_code=status.HTTP_201_CREATED, responses=errors(409))
async def create_custom_field(
    body: CustomFieldCreate, context: Manager, uow: UowDep
) -> CustomFieldOut:
    """Define a typed field that risks carry in ``custom_fields`` (409 on a duplicate name)."""
    field = await service.create_field(uow=uow, context=context, data=body)
    return CustomFieldOut.model_validate(field)


@router.get("/{field_id}", responses=errors(404))
async def get_custom_field(
    field_id: uuid.UUID, context: Reader, session: SessionDep
) -> CustomFieldOut:
    field = await service.get_field(session, tenant_id=context.tenant_id, field_id=field_id)
    return CustomFieldOut.model_validate(field)


@router.patch("/{field_id}", responses=errors(404))
async def update_custom_field(
    field_id: uuid.UUID,
    body: CustomFieldUpdate,
    context: Manager,
    uow: UowDep,
) -> CustomFieldOut:
    """Change the label, options, required flag or description (name and type are fixed)."""
    field = await service.update_field(uow=uow, context=context, field_id=field_id, data=body)
    return CustomFieldOut.model_validate(field)


@router.delete("/{field_id}", status_code=status.HTTP_204_NO_CONTENT, responses=errors(404))
async def delete_custom_field(field_id: uuid.UUID, context: Manager, uow: UowDep) -> None:
    """Delete the definition; its values are removed from the tenant's risks."""
    await service.delete_field(uow=uow, context=context, field_id=field_id)
