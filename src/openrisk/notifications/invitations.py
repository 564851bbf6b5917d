"""The invitation e-mail: the one-time link goes to the invited address (when e-mail is
configured; the inviter is still shown the link either way)."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import select

from openrisk.auth.models import User
from openrisk.config import Settings
from openrisk.core.uow import UnitOfWork
from openrisk.notifications.service import SEALED, Reason, enabled, queue, secret_box
from openrisk.tenants.models import Tenant


async def queue_invitation(
    uow: UnitOfWork,
    *,
    settings: Settings | None,
    tenant_id: uuid.UUID,
    invitation_id: uuid.UUID,
    token_hash: str,
    token: str,
    email: str,
    role_name: str,
    invited_by: uuid.UUID | None,
    expires_at: datetime,
    now: datetime,
) -> None:
    """Queue the e-mail carrying ``token`` (sealed until sent, then dropped), in the
    invitation's own transaction. Each new link (a renewal) is a new reason."""
    if settings is None or not enabled(settings):
        return
    session = uow.session
    tenant_name = await session.scalar(select(Tenant.name).where(Tenant.id == tenant_id))
    inviter = None
    if invited_by is not None:
        row = (
            await session.execute(select(User.full_name, User.email).where(User.id == invited_by))
        ).first()
        if row is not None:
            inviter = row[0] or row[1]
    reason = Reason(
        kind="invitation",
        key=f"invitation:{invitation_id}:{token_hash}",
        tenant_id=tenant_id,
        recipient=email,
        subject_id=invitation_id,
        data={
            "tenant_name": tenant_name,
            "role": role_name,
            "invited_by": inviter,
            "expires_on": expires_at.date().isoformat(),
            SEALED: secret_box(settings).seal({"token": token}),
        },
    )
    await queue(uow, [reason], now=now)
