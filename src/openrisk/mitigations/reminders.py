"""Mitigation due-date reminders: the assignee (or, without one, the risk's owner) hears once
that a mitigation is due soon and once that it is overdue, for each due date it is given."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import date, timedelta

from sqlalchemy import and_, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from openrisk.auth.models import User
from openrisk.mitigations.models import Mitigation
from openrisk.mitigations.schemas import OPEN_STATUSES
from openrisk.notifications.recipients import with_recipient
from openrisk.notifications.service import Reason
from openrisk.risks.models import Risk
from openrisk.tenants.models import Tenant


async def due_reasons(
    session: AsyncSession,
    *,
    today: date,
    days: int,
    tenant_ids: Sequence[uuid.UUID] | None = None,
) -> list[Reason]:
    """Open mitigations of live risks due within ``days`` (due soon) or before today
    (overdue), across every tenant."""
    recipient = func.coalesce(Mitigation.assignee_id, Risk.owner_id)
    query = select(
        Mitigation.id,
        Mitigation.tenant_id,
        Mitigation.title,
        Mitigation.due_date,
        Risk.id,
        Risk.title,
        User.id,
        User.email,
        Tenant.name,
    ).join(Risk, and_(Risk.id == Mitigation.risk_id, Risk.deleted_at.is_(None)))
    query = with_recipient(query, recipient, Mitigation.tenant_id).where(
        Mitigation.deleted_at.is_(None),
        Mitigation.status.in_(OPEN_STATUSES),
        Mitigation.due_date.is_not(None),
        Mitigation.due_date <= today + timedelta(days=days),
    )
    if tenant_ids is not None:
        query = query.where(Mitigation.tenant_id.in_(list(tenant_ids)))
    reasons = []
    for mid, tenant_id, title, due, risk_id, risk_title, uid, email, tenant in (
        await session.execute(query.order_by(Mitigation.due_date, Mitigation.id))
    ).tuples():
        if due is None:  # excluded by the query; mypy cannot know
            continue
        kind = "mitigation.overdue" if due < today else "mitigation.due_soon"
        reasons.append(
            Reason.dated(
                kind,
                subject_id=mid,
                on=due,
                recipient_id=uid,
                recipient=email,
                tenant_id=tenant_id,
                data={
                    "title": title,
                    "due_date": due.isoformat(),
                    "risk_id": str(risk_id),
                    "risk_title": risk_title,
                    "tenant_name": tenant,
                },
            )
        )
    return reasons
