"""A risk that leaves ACCEPTED by any other way than the workflow (a PATCH, a bulk status
change) ends its approved acceptance: the acceptance is ``revoked`` (an audit row saying why)
and the risk's own history row of the change names it."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from openrisk.audit.service import record
from openrisk.core.context import RequestContext
from openrisk.methodology.models import RiskAcceptance
from openrisk.risks.enums import RiskStatus
from openrisk.risks.models import Risk

APPROVED, REVOKED = "approved", "revoked"


def leaves_accepted(before_status: str, risk: Risk) -> bool:
    return before_status == RiskStatus.ACCEPTED and risk.status != RiskStatus.ACCEPTED


async def end_acceptances(
    session: AsyncSession,
    *,
    context: RequestContext,
    risks: Sequence[Risk],
    at: datetime,
) -> dict[uuid.UUID, dict[str, Any]]:
    """End the approved acceptances of ``risks`` (which left ACCEPTED); clear their
    ``acceptance_expires_on``. Returns, per risk, the changes its history row gains."""
    if not risks:
        return {}
    by_id = {r.id: r for r in risks}
    found = await session.scalars(
        select(RiskAcceptance).where(
            RiskAcceptance.tenant_id == context.tenant_id,
            RiskAcceptance.risk_id.in_(list(by_id)),
            RiskAcceptance.status == APPROVED,
        )
    )
    ended: dict[uuid.UUID, dict[str, Any]] = {}
    for acceptance in found:
        risk = by_id[acceptance.risk_id]
        acceptance.status = REVOKED
        acceptance.ended_at = acceptance.updated_at = at
        expiry = risk.acceptance_expires_on
        risk.acceptance_expires_on = None
        changes = {
            "acceptance": {"before": APPROVED, "after": REVOKED},
            "acceptance_id": str(acceptance.id),
            "acceptance_expires_on": {
                "before": expiry.isoformat() if expiry else None,
                "after": None,
            },
        }
        record(
            session,
            context=context,
            action="risk_acceptance.revoke",
            resource_type="risk_acceptance",
            resource_id=acceptance.id,
            changes={
                **changes,
                "risk_id": str(risk.id),
                "reason": f"the risk's status was set to {risk.status}",
            },
        )
        ended[risk.id] = changes
    return ended
