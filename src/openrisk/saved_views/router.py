"""``/saved-views``: the caller's named register views in the current tenant."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Depends, status

from openrisk.auth.deps import require
from openrisk.core.context import RequestContext
from openrisk.core.deps import SessionDep
from openrisk.core.routing import api_router
from openrisk.core.uow import UowDep
from openrisk.saved_views import service
from openrisk.saved_views.schemas import SavedViewCreate, SavedViewOut

router = api_router("/saved-views", tags=["saved views"])
Reader = Annotated[RequestContext, Depends(require("risk:read"))]


@router.get("")
async def list_saved_views(context: Reader, session: SessionDep) -> list[SavedViewOut]:
    """Your saved register views, by name."""
    return [
        SavedViewOut.model_validate(v) for v in await service.list_views(session, context=context)
    ]


@router.post("", status_code=status.HTTP_201_CREATED)
async def create_saved_view(body: SavedViewCreate, context: Reader, uow: UowDep) -> SavedViewOut:
    """Keep the register's filters, sort and columns under a name (409 if the name is taken)."""
    view = await service.create_view(uow=uow, context=context, name=body.name, query=body.query)
    return SavedViewOut.model_validate(view)


@router.delete("/{view_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_saved_view(view_id: uuid.UUID, context: Reader, uow: UowDep) -> None:
    await service.delete_view(uow=uow, context=context, view_id=view_id)
