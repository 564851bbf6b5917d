from __future__ import annotations

from openrisk.rbac.catalogue import (
    ADMIN,
    ALL_PERMISSIONS,
    ANALYST,
    MANAGER,
    PREDEFINED_ROLES,
    VIEWER,
    is_valid_grant,
)
from openrisk.rbac.service import grant_sets


def test_catalogue_has_the_44_codes_of_the_spec() -> None:
    assert len(ALL_PERMISSIONS) == len(set(ALL_PERMISSIONS)) == 44
    assert "custom_field:manage" in ALL_PERMISSIONS


def test_viewer_reads_everything_but_audit_and_tokens() -> None:
    full, own = grant_sets(VIEWER.grants)
    assert full == {p for p in ALL_PERMISSIONS if p.endswith(":read")} - {
        "audit:read",
        "token:read",
    }
    assert not own


def test_analyst_updates_and_deletes_only_own_risks() -> None:
    full, own = grant_sets(ANALYST.grants)
    assert {"risk:update", "risk:delete", "mitigation:update", "token:create"} <= own
    assert "risk:update" not in full and "risk:create" in full
    assert "risk:assign" not in full | own


def test_manager_acts_on_any_risk_and_admin_holds_everything() -> None:
    full, own = grant_sets(MANAGER.grants)
    assert {"risk:update", "risk:delete", "audit:read", "custom_field:manage"} <= full
    assert "role:create" not in full | own
    assert set(ADMIN.grants) == set(ALL_PERMISSIONS)
    assert [r.level for r in (VIEWER, ANALYST, MANAGER, ADMIN)] == [0, 3, 6, 9]


def test_grants_are_validated() -> None:
    assert is_valid_grant("risk:update:own")
    assert not is_valid_grant("risk:fly")
    assert not is_valid_grant("risk:update:everyone")


def test_own_scope_exists_only_where_a_row_owner_is_checked() -> None:
    assert is_valid_grant("risk:update:own") and is_valid_grant("token:revoke:own")
    for unenforced in ("risk:read:own", "risk:export:own", "report:read:own", "asset:update:own"):
        assert not is_valid_grant(unenforced)
    # every predefined "own" grant is one that is enforced
    for role in PREDEFINED_ROLES:
        assert all(is_valid_grant(grant) for grant in role.grants)
    assert grant_sets(("risk:read:own", "risk:update:own")) == (
        frozenset(),
        frozenset({"risk:update"}),
    )
