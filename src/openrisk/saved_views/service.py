"""Saved views: a person's named register filter sets (filters, sort, columns) in a tenant.

They belong to one person: nobody else lists, uses or deletes them, whatever their role.
"""

from __future__ import annotations

import urllib.parse
import uuid

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from openrisk.core.context import RequestContext
from openrisk.core.errors import Conflict, NotFound, ValidationFailed
from openrisk.core.uow import UnitOfWork
from openrisk.saved_views.models import SavedView

MAX_VIEWS = 50
# What a view keeps of the register's query string (never a page number or a cursor)
KEPT = frozenset(
    {
        "q",
        "status",
        "severity",
        "tag",
        "owner_id",
        "asset_id",
        "min_score",
        "max_score",
        "impact",
        "probability",
        "sort",
        "order",
        "page_size",
        "col",
    }
)


def clean_query(query: str) -> str:
    """The register parameters of ``query`` (leading ``?`` allowed), others dropped."""
    pairs = urllib.parse.parse_qsl(query.lstrip("?"), keep_blank_values=False)
    return urllib.parse.urlencode([(k, v) for k, v in pairs if k in KEPT])


async def list_views(session: AsyncSession, *, context: RequestContext) -> list[SavedView]:
    rows = await session.scalars(
        select(SavedView)
        .where(SavedView.tenant_id == context.tenant_id, SavedView.user_id == context.user_id)
        .order_by(func.lower(SavedView.name), SavedView.id)
        .limit(MAX_VIEWS)
    )
    return list(rows)


async def create_view(
    *, uow: UnitOfWork, context: RequestContext, name: str, query: str
) -> SavedView:
    """A new view, or 409 when the person already has one of that name."""
    session = uow.session
    context.require("risk:read")
    count = await session.scalar(
        select(func.count()).where(
            SavedView.tenant_id == context.tenant_id, SavedView.user_id == context.user_id
        )
    )
    if int(count or 0) >= MAX_VIEWS:
        raise ValidationFailed.field("name", f"You can keep at most {MAX_VIEWS} views.")
    view = SavedView(
        tenant_id=context.tenant_id, user_id=context.user_id, name=name, query=clean_query(query)
    )
    session.add(view)
    try:
        await session.flush()
    except IntegrityError as error:
        await session.rollback()
        raise Conflict(f"You already have a view named “{name}”.") from error
    await uow.commit()
    return view


async def delete_view(*, uow: UnitOfWork, context: RequestContext, view_id: uuid.UUID) -> None:
    session = uow.session
    view = await session.scalar(
        select(SavedView).where(
            SavedView.id == view_id,
            SavedView.tenant_id == context.tenant_id,
            SavedView.user_id == context.user_id,
        )
    )
    if view is None:
        raise NotFound("Saved view not found.")
    await session.delete(view)
    await uow.commit()
