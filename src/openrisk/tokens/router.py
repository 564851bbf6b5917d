"""API tokens: create (secret shown once), list, revoke."""

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
from openrisk.tokens import service
from openrisk.tokens.schemas import TokenCreate, TokenOut, TokenSecretOut

router = api_router("/tokens", tags=["tokens"])


def _secret_out(new: service.NewToken) -> TokenSecretOut:
    token = new.token
    return TokenSecretOut(
        id=token.id,
        name=token.name,
        token=new.secret,
        prefix=token.prefix,
        permissions=token.permissions,
        expires_at=token.expires_at,
    )


@router.get("")
async def list_tokens(
    context: Annotated[RequestContext, Depends(require("token:read"))],
    session: SessionDep,
    page: Annotated[PageParams, Depends(page_params)],
) -> Page[TokenOut]:
    """Your tokens (all of the tenant's with token:read on every row). Secrets never appear."""
    tokens, total = await service.list_tokens(
        session, context=context, offset=page.offset, limit=page.page_size
    )
    return Page(
        items=[TokenOut.model_validate(t) for t in tokens],
        total=total,
        page=page.page,
        page_size=page.page_size,
    )


@router.post("", status_code=status.HTTP_201_CREATED)
async def create_token(
    body: TokenCreate,
    context: Annotated[RequestContext, Depends(require("token:create"))],
    uow: UowDep,
) -> TokenSecretOut:
    """Create a token bound to this tenant; ``token`` is shown in this answer only."""
    new = await service.create_token(
        uow=uow,
        context=context,
        name=body.name,
        permissions=body.permissions,
        expires_in_days=body.expires_in_days,
    )
    return _secret_out(new)


@router.delete("/{token_id}", status_code=status.HTTP_204_NO_CONTENT)
async def revoke_token(
    token_id: uuid.UUID,
    context: Annotated[RequestContext, Depends(require("token:revoke"))],
    uow: UowDep,
) -> None:
    await service.revoke_token(uow=uow, context=context, token_id=token_id)


@router.post("/{token_id}/rotate", status_code=status.HTTP_201_CREATED)
async def rotate_token(
    token_id: uuid.UUID,
    context: Annotated[RequestContext, Depends(require("token:revoke"))],
    uow: UowDep,
) -> TokenSecretOut:
    """Revoke the token and return a new secret with the same grants."""
    new = await service.rotate_token(uow=uow, context=context, token_id=token_id)
    return _secret_out(new)
