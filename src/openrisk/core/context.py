"""The request context: who is calling, in which tenant, with which permissions.

Resolved once per request (auth dependency) and passed explicitly to services; services never
re-derive the tenant from anything else.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from openrisk.core.errors import Forbidden
from openrisk.core.metrics import PERMISSION_ALLOW, PERMISSION_DENY


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated user, before any tenant is chosen."""

    user_id: uuid.UUID
    email: str
    is_superuser: bool
    token_id: uuid.UUID | None = None  # set when the caller authenticated with an API token
    # an API token's own tenant: such a caller sees and acts in that tenant only
    token_tenant_id: uuid.UUID | None = None


@dataclass(frozen=True, slots=True)
class RequestOrigin:
    """Where a request came from, for audit events."""

    ip: str | None = None
    user_agent: str | None = None
    request_id: str | None = None


@dataclass(frozen=True, slots=True)
class RequestContext:
    principal: Principal
    tenant_id: uuid.UUID
    tenant_slug: str
    role_id: uuid.UUID
    role_name: str
    role_level: int
    # codes granted on every row of the tenant, and codes granted only on the caller's own rows
    permissions: frozenset[str]
    own_permissions: frozenset[str] = field(default_factory=frozenset)
    origin: RequestOrigin = field(default_factory=RequestOrigin)

    @property
    def user_id(self) -> uuid.UUID:
        return self.principal.user_id

    def has(self, code: str) -> bool:
        """True when the caller holds ``code`` on at least its own rows."""
        return code in self.permissions or code in self.own_permissions

    def has_any_scope(self, code: str) -> bool:
        return code in self.permissions

    def require(self, code: str) -> None:
        if self.has(code):
            PERMISSION_ALLOW.inc()
            return
        PERMISSION_DENY.inc()
        raise Forbidden(f"Missing permission {code}")

    def require_on(self, code: str, *owner_ids: uuid.UUID | None) -> None:
        """Check ``code`` on a row of ``owner_ids``: "own" grants need the caller among them."""
        if code in self.permissions or (code in self.own_permissions and self.user_id in owner_ids):
            PERMISSION_ALLOW.inc()
            return
        PERMISSION_DENY.inc()
        raise Forbidden(f"Missing permission {code} on this resource")
