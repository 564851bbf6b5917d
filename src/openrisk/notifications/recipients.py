"""Who may receive a tenant's e-mail: an active user who is still a member of an active tenant.

Reminder queries join ``reachable(user_id column, tenant_id column)`` so that a person who
left the tenant, was deactivated, or whose tenant is suspended is told nothing.
"""

from __future__ import annotations

from typing import Any, TypeVarTuple

from sqlalchemy import Select, and_

from openrisk.auth.models import User
from openrisk.tenants.models import Membership, Tenant

Ts = TypeVarTuple("Ts")


def with_recipient(query: Select[*Ts], user_id: Any, tenant_id: Any) -> Select[*Ts]:
    """``query`` joined to the recipient (``User.email``, ``User.id``) and its tenant
    (``Tenant.name``), keeping only reachable recipients."""
    return (
        query.join(User, and_(User.id == user_id, User.is_active.is_(True)))
        .join(Membership, and_(Membership.user_id == User.id, Membership.tenant_id == tenant_id))
        .join(Tenant, and_(Tenant.id == tenant_id, Tenant.status == "active"))
    )
