"""Recording a risk's review: it restarts the clock of the next one."""

from __future__ import annotations

import uuid
from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from openrisk.audit.service import record
from openrisk.core.context import RequestContext
from openrisk.core.db.base import utcnow
from openrisk.core.ids import new_id
from openrisk.core.uow import UnitOfWork, commit_with
from openrisk.methodology.levels import next_review
from openrisk.methodology.models import RiskReview
from openrisk.methodology.store import scoring_for
from openrisk.risks import history
from openrisk.risks.commands import risk_event
from openrisk.risks.enums import HistoryAction
from openrisk.risks.reads import RiskRecord, asset_ids_for, get_risk


def out(review: RiskReview) -> dict[str, Any]:
    return {
        "id": review.id,
        "risk_id": review.risk_id,
        "reviewed_on": review.reviewed_on,
        "outcome": review.outcome,
        "comment": review.comment,
        "reviewed_by": review.reviewed_by,
        "created_at": review.created_at,
    }


async def record_review(
    *,
    uow: UnitOfWork,
    context: RequestContext,
    risk_id: uuid.UUID,
    outcome: str,
    comment: str,
    today: date,
) -> RiskReview:
    """The risk was reviewed today (risk:update on it): ``last_reviewed_on`` is today and the
    next review date moves on by the band's review days."""
    session = uow.session
    risk = await get_risk(session, tenant_id=context.tenant_id, risk_id=risk_id)
    context.require_on("risk:update", risk.owner_id)
    scoring = await scoring_for(session, tenant_id=context.tenant_id)
    now = utcnow()
    review = RiskReview(
        id=new_id(),
        tenant_id=context.tenant_id,
        risk_id=risk.id,
        reviewed_on=today,
        outcome=outcome,
        comment=comment,
        reviewed_by=context.user_id,
        created_at=now,
    )
    session.add(review)
    before = {
        "last_reviewed_on": risk.last_reviewed_on.isoformat() if risk.last_reviewed_on else None,
        "next_review_date": risk.next_review_date.isoformat(),
    }
    risk.last_reviewed_on = today
    # an owner's review date already passed does not pull the next review back
    if risk.review_date is not None and risk.review_date <= today:
        risk.review_date = None
    risk.next_review_date = next_review(risk, scoring)
    risk.updated_at = now
    await session.flush()
    changes = {
        "last_reviewed_on": {"before": before["last_reviewed_on"], "after": today.isoformat()},
        "next_review_date": {
            "before": before["next_review_date"],
            "after": risk.next_review_date.isoformat(),
        },
        "review": {"before": None, "after": outcome},
        "review_id": str(review.id),
    }
    await history.append(
        session,
        [
            history.HistoryEntry.of(
                risk,
                tenant_id=risk.tenant_id,
                action=HistoryAction.UPDATE,
                prev_score=Decimal(risk.score),
                prev_status=risk.status,
                prev_severity=risk.severity,
                changed_by=context.user_id,
                changes=changes,
                created_at=now,
            )
        ],
    )
    record(
        session,
        context=context,
        action="risk.review",
        resource_type="risk",
        resource_id=risk.id,
        changes=changes,
    )
    asset_ids = (await asset_ids_for(session, [risk.id])).get(risk.id, [])
    event = risk_event("updated", context, RiskRecord(risk, asset_ids))
    await commit_with(uow, [event])
    return review


async def list_reviews(
    session: AsyncSession,
    *,
    context: RequestContext,
    risk_id: uuid.UUID,
    offset: int,
    limit: int,
) -> tuple[list[RiskReview], int]:
    await get_risk(session, tenant_id=context.tenant_id, risk_id=risk_id)
    where = (RiskReview.tenant_id == context.tenant_id, RiskReview.risk_id == risk_id)
    total = await session.scalar(select(func.count()).select_from(RiskReview).where(*where))
    rows = await session.scalars(
        select(RiskReview)
        .where(*where)
        .order_by(RiskReview.created_at.desc(), RiskReview.id)
        .offset(offset)
        .limit(limit)
    )
    return list(rows), int(total or 0)
