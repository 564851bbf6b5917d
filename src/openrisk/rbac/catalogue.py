"""The 44-permission catalogue and the four predefined roles, exactly as SPEC §4."""

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


def split_grant(grant: str) -> tuple[str, str | None]:
    """Split a grant: ``risk:update:own`` → (``risk:update``, ``own``); no scope → None."""
    resource, action, *scope = grant.split(":")
    return f"{resource}:{action}", (scope[0] if scope else None)


def is_valid_grant(grant: str) -> bool:
    parts = grant.split(":")
    if len(parts) not in (2, 3):
        return False
    code, scope = split_grant(grant)
    return code in ALL_PERMISSIONS and scope in (None, OWN_SCOPE)


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
# SPEC §4 widens risk:update/delete to any risk for Managers; mitigation:update is widened too,
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
