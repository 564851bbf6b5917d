"""Helpers for access-control tests: accounts with a given role in a given tenant."""

from __future__ import annotations

import uuid

import httpx
from fastapi import FastAPI

from openrisk.rbac.catalogue import PredefinedRole
from openrisk.tenants.service import add_member
from tests.conftest import Account, register


async def member_with_role(
    app: FastAPI, client: httpx.AsyncClient, owner: Account, role: PredefinedRole | str
) -> Account:
    """A new account that is a member of ``owner``'s tenant with ``role`` (predefined or id)."""
    account = await register(client, tenant_name="Own Sandbox")
    role_id = role.id if isinstance(role, PredefinedRole) else uuid.UUID(role)
    async with app.state.db.session() as session:
        await add_member(
            session,
            tenant_id=uuid.UUID(owner.tenant_id),
            user_id=uuid.UUID(account.user_id),
            role_id=role_id,
        )
        await session.commit()
    account.tenant_id = owner.tenant_id
    return account
