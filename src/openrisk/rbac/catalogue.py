"""The 44-permission catalogue and the four predefined roles."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

CATALOGUE: dict[str, tuple[str, ...]] = {
    "risk": ("read", "create", "update", "delete", "export", "assign", "accept"),
    "mitigation": ("read", "create", "update", "delete", "assign"),
    "asset": ("read", "create", "update", "delete"),
    "dashboard": ("read",),
    "report": ("read", "create", "export"),
    "connector": ("read", "install", "configure", "uninstall", "sync", "review"),
    "member": ("read", "invite", "update_role", "remove"),
    "role": ("read", "create", "update", "delete"),
    "tenant": ("read", "update", "delete"),
    "audit": ("read", "export"),
    "token": ("read", "create", "revoke"),
    "custom_field": ("read", "manage"),
}

ALL_PERMISSIONS: tuple[str, ...] = tuple(
    f"{resource}:{action}" for resource, actions in CATALOGUE.items() for action in actions
)
assert len(ALL_PERMISSIONS) == 44

OWN_SCOPE = "own"
"""A grant written ``risk:update:own`` covers only rows the caller owns or is assigned to."""

OWN_SCOPED: frozenset[str] = frozenset(
    {
        "risk:update",
        "risk:delete",
        "mitigation:update",
        "token:read",
        "token:create",
        "token:revoke",
    }
)
"""The codes an "own" grant exists for: each is checked against the row's owner or assignee.

Reads and exports are not among them: the register is the tenant's shared record, and every
member who may read it reads all of it (dashboards, searches, matrices, exports and reports
are computed for the tenant). A tenant whose parts must not see each other's risks is two
tenants. Refusing ``risk:read:own`` is honest where accepting it would promise a row filter
that no list, dashboard or export applies.
"""


def split_grant(grant: str) -> tuple[str, str | None]:
    """Split a grant: ``risk:update:own`` → (``risk:update``, ``own``); no scope → None."""
    resource, action, *scope = grant.split(":")
    return f"{resource}:{action}", (scope[0] if scope else None)


def is_valid_grant(grant: str) -> bool:
    """A catalogue code, alone or with the "own" scope (only where that scope exists)."""
    parts = grant.split(":")
    if len(parts) not in (2, 3):
        return False
    code, scope = split_grant(grant)
    return code in ALL_PERMISSIONS and (scope is None or is_own_scoped(grant))


def is_own_scoped(grant: str) -> bool:
    """Whether ``grant`` is an "own" grant the product enforces row by row."""
    code, scope = split_grant(grant)
    return scope == OWN_SCOPE and code in OWN_SCOPED


@dataclass(frozen=True)
class PredefinedRole:
    id: uuid.UUID
    name: str
    level: int
    description: str
    grants: tuple[str, ...]


_VIEWER = tuple(
    p for p in ALL_PERMISSIONS if p.endswith(":read") and p not in ("audit:read", "token:read")
)
_ANALYST = (
    *_VIEWER,
    "risk:create",
    "risk:update:own",
    "risk:delete:own",
    "risk:export",
    "mitigation:create",
    "mitigation:update:own",
    "asset:create",
    "asset:update",
    "report:create",
    "report:export",
    "connector:review",
    "token:read:own",
    "token:create:own",
    "token:revoke:own",
)
# Managers may update and delete any risk, not only their own; mitigation:update is widened too,
# since a Manager may already assign and delete any mitigation of the tenant.
_MANAGER = (
    *(
        g
        for g in _ANALYST
        if g not in ("risk:update:own", "risk:delete:own", "mitigation:update:own")
    ),
    "risk:update",
    "risk:delete",
    "mitigation:update",
    "risk:assign",
    "risk:accept",
    "mitigation:delete",
    "mitigation:assign",
    "asset:delete",
    "connector:install",
    "connector:configure",
    "connector:sync",
    "connector:uninstall",
    "member:invite",
    "member:update_role",
    "audit:read",
    "custom_field:manage",
)

VIEWER = PredefinedRole(
    uuid.UUID("00000000-0000-4000-8000-000000000001"),
    "Viewer",
    0,
    "Reads everything but the audit log and tokens.",
    _VIEWER,
)
ANALYST = PredefinedRole(
    uuid.UUID("00000000-0000-4000-8000-000000000002"),
    "Analyst",
    3,
    "Works on their own risks and mitigations.",
    _ANALYST,
)
MANAGER = PredefinedRole(
    uuid.UUID("00000000-0000-4000-8000-000000000003"),
    "Manager",
    6,
    "Runs the register, connectors and members below them.",
    _MANAGER,
)
ADMIN = PredefinedRole(
    uuid.UUID("00000000-0000-4000-8000-000000000004"),
    "Admin",
    9,
    "Holds all 44 permissions.",
    ALL_PERMISSIONS,
)
PREDEFINED_ROLES: tuple[PredefinedRole, ...] = (VIEWER, ANALYST, MANAGER, ADMIN)
