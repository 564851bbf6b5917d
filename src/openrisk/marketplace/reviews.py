"""Connector reviews: one per user and connector in a tenant; the rating they sum to is global."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Float, cast, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from openrisk.audit.service import diff, record
from openrisk.core.context import RequestContext
from openrisk.core.db.base import utcnow
from openrisk.core.errors import Conflict
from openrisk.core.events import DomainEvent
from openrisk.core.uow import UnitOfWork, commit_with
from openrisk.marketplace.models import Connector, ConnectorReview
from openrisk.marketplace.service import get_connector


async def get_own_review(
    session: AsyncSession, *, context: RequestContext, connector_id: str
) -> ConnectorReview | None:
    """The caller's review of a connector in the current tenant."""
    return await session.scalar(
        select(ConnectorReview).where(
            ConnectorReview.connector_id == connector_id,
            ConnectorReview.author_id == context.user_id,
            ConnectorReview.tenant_id == context.tenant_id,
        )
    )


async def _refresh_rating(session: AsyncSession, connector_id: str) -> None:
    reviews = select(ConnectorReview).where(ConnectorReview.connector_id == connector_id)
    await session.execute(
        update(Connector)
        .where(Connector.id == connector_id)
        .values(
            rating=select(cast(func.avg(ConnectorReview.rating), Float))
            .where(ConnectorReview.connector_id == connector_id)
            .scalar_subquery(),
            review_count=select(func.count()).select_from(reviews.subquery()).scalar_subquery(),
        )
    )


async def upsert_review(
    *,
    uow: UnitOfWork,
    context: RequestContext,
    connector_id: str,
    rating: int,
    comment: str,
) -> tuple[ConnectorReview, bool]:
    """One review per user and connector (in the current tenant): a second review replaces the
    first. Returns (review, created)."""
    session = uow.session
    await get_connector(session, connector_id=connector_id)
    review = await get_own_review(session, context=context, connector_id=connector_id)
    created = review is None
    before: dict[str, Any] = {}
    if review is None:
        review = ConnectorReview(
            connector_id=connector_id,
            tenant_id=context.tenant_id,
            author_id=context.user_id,
            rating=rating,
            comment=comment,
        )
        session.add(review)
    else:
        before = {"rating": review.rating, "comment": review.comment}
        review.rating, review.comment = rating, comment
        review.updated_at = utcnow()
    try:
        await session.flush()
    except IntegrityError as error:  # a concurrent first review by the same user
        raise Conflict("A review is being written for this connector; retry.") from error
    await _refresh_rating(session, connector_id)
    record(
        session,
        context=context,
        action="connector.review",
        resource_type="connector",
        resource_id=connector_id,
        changes=diff(before, {"rating": rating, "comment": comment}),
    )
    reviewed = DomainEvent(
        type="connector.reviewed",
        tenant_id=context.tenant_id,
        resource_id=connector_id,
        data={"rating": review.rating, "created": created},
        actor_id=context.user_id,
    )
    await commit_with(uow, [reviewed])
    return review, created


async def list_reviews(
    session: AsyncSession, *, context: RequestContext, connector_id: str, offset: int, limit: int
) -> tuple[list[ConnectorReview], int]:
    """Reviews of a connector written from the caller's tenant (the rating is global)."""
    await get_connector(session, connector_id=connector_id)
    query = select(ConnectorReview).where(
        ConnectorReview.tenant_id == context.tenant_id,
        ConnectorReview.connector_id == connector_id,
    )
    total = await session.scalar(select(func.count()).select_from(query.subquery()))
    rows = await session.scalars(
        query.order_by(ConnectorReview.updated_at.desc(), ConnectorReview.id)
        .offset(offset)
        .limit(limit)
    )
    return list(rows), int(total or 0)
