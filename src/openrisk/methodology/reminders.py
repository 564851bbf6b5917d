"""Reminders of the methodology: reviews due soon or overdue (to the risk's owner), acceptances
about to expire and expired (to the risk's owner and the approver). Each is told once per
date: a review per next review date, an acceptance per expiry date."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import date, timedelta

from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from openrisk.auth.models import User
from openrisk.methodology.acceptance import APPROVED, EXPIRED
from openrisk.methodology.models import RiskAcceptance
from openrisk.notifications.recipients import with_recipient
from openrisk.notifications.service import Reason
from openrisk.risks.documents import DUE_SOON_DAYS
from openrisk.risks.enums import RiskStatus
from openrisk.risks.models import Risk
from openrisk.tenants.models import Tenant

# an acceptance that expired this long ago or less is still announced (a missed scan)
EXPIRED_NOTICE_DAYS = 7


async def review_reasons(
    session: AsyncSession, *, today: date, tenant_ids: Sequence[uuid.UUID] | None = None
) -> list[Reason]:
    """Live, open risks whose next review is within the "due soon" window or past."""
    query = select(
        Risk.id, Risk.tenant_id, Risk.title, Risk.next_review_date, User.id, User.email, Tenant.name
    )
    query = with_recipient(query, Risk.owner_id, Risk.tenant_id).where(
        Risk.deleted_at.is_(None),
        Risk.status != RiskStatus.CLOSED.value,
        Risk.next_review_date <= today + timedelta(days=DUE_SOON_DAYS),
    )
    if tenant_ids is not None:
        query = query.where(Risk.tenant_id.in_(list(tenant_ids)))
    reasons = []
    for risk_id, tenant_id, title, due, uid, email, tenant in (
        await session.execute(query.order_by(Risk.next_review_date, Risk.id))
    ).tuples():
        kind = "review.overdue" if due < today else "review.due_soon"
        reasons.append(
            Reason.dated(
                kind,
                subject_id=risk_id,
                on=due,
                recipient_id=uid,
                recipient=email,
                tenant_id=tenant_id,
                data={
                    "risk_id": str(risk_id),
                    "risk_title": title,
                    "review_date": due.isoformat(),
                    "tenant_name": tenant,
                },
            )
        )
    return reasons


async def acceptance_reasons(
    session: AsyncSession,
    *,
    today: date,
    days: int,
    tenant_ids: Sequence[uuid.UUID] | None = None,
) -> list[Reason]:
    """Approved acceptances expiring within ``days``, and those expired in the last week."""
    expiring = and_(
        RiskAcceptance.status == APPROVED,
        RiskAcceptance.expires_on >= today,
        RiskAcceptance.expires_on <= today + timedelta(days=days),
    )
    expired = and_(
        RiskAcceptance.status == EXPIRED,
        RiskAcceptance.expires_on >= today - timedelta(days=EXPIRED_NOTICE_DAYS),
    )
    reasons = []
    for recipient in (Risk.owner_id, RiskAcceptance.decided_by):
        query = select(
            RiskAcceptance.id,
            RiskAcceptance.tenant_id,
            RiskAcceptance.status,
            RiskAcceptance.expires_on,
            Risk.id,
            Risk.title,
            User.id,
            User.email,
            Tenant.name,
        ).join(Risk, and_(Risk.id == RiskAcceptance.risk_id, Risk.deleted_at.is_(None)))
        query = with_recipient(query, recipient, RiskAcceptance.tenant_id).where(
            or_(expiring, expired)
        )
        if tenant_ids is not None:
            query = query.where(RiskAcceptance.tenant_id.in_(list(tenant_ids)))
        for aid, tenant_id, status, expires, risk_id, title, uid, email, tenant in (
            await session.execute(query.order_by(RiskAcceptance.expires_on, RiskAcceptance.id))
        ).tuples():
            kind = "acceptance.expired" if status == EXPIRED else "acceptance.expiring"
            reasons.append(
                Reason.dated(
                    kind,
                    subject_id=aid,
                    on=expires,
                    recipient_id=uid,
                    recipient=email,
                    tenant_id=tenant_id,
                    data={
                        "risk_id": str(risk_id),
                        "risk_title": title,
                        "expires_on": expires.isoformat(),
                        "tenant_name": tenant,
                    },
                )
            )
    # the owner who also approved hears once
    return list({reason.key: reason for reason in reasons}.values())
