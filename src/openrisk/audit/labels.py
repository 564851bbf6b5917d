"""Names of the resources audit events and history rows point at, for people reading them.

An audit event keeps only a resource type and id (the trail is append-only and must not change
when a risk is renamed); a page of events is labelled with at most one query per resource type
present, each filtered on the tenant. Deleted resources keep their last name, flagged ``gone``.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Executable, select
from sqlalchemy.ext.asyncio import AsyncSession

from openrisk.assets.models import Asset
from openrisk.auth.models import User
from openrisk.custom_fields.models import CustomField
from openrisk.marketplace.models import App, Connector
from openrisk.mitigations.models import Mitigation
from openrisk.rbac.models import Role
from openrisk.reports.models import Report
from openrisk.risks.models import Risk
from openrisk.tenants.models import Membership, Tenant
from openrisk.tokens.models import ApiToken, Invitation


@dataclass(frozen=True)
class Label:
    name: str
    href: str | None = None  # the page showing the resource, when it still exists
    gone: bool = False


Ref = tuple[str, str]  # (resource type, resource id as stored)


def _uuids(ids: Iterable[str]) -> list[uuid.UUID]:
    found = []
    for value in ids:
        try:
            found.append(uuid.UUID(value))
        except ValueError:
            continue
    return found


def _person(full_name: str, email: str) -> str:
    return f"{full_name} <{email}>" if full_name else email


def _query(kind: str, tenant_id: uuid.UUID, ids: list[uuid.UUID]) -> Executable | None:
    match kind:
        case "risk":
            return select(Risk.id, Risk.title, Risk.deleted_at).where(
                Risk.tenant_id == tenant_id, Risk.id.in_(ids)
            )
        case "asset":
            return select(Asset.id, Asset.name, Asset.deleted_at).where(
                Asset.tenant_id == tenant_id, Asset.id.in_(ids)
            )
        case "mitigation":
            return select(
                Mitigation.id, Mitigation.title, Mitigation.deleted_at, Mitigation.risk_id
            ).where(Mitigation.tenant_id == tenant_id, Mitigation.id.in_(ids))
        case "role":
            return select(Role.id, Role.name).where(
                (Role.tenant_id == tenant_id) | Role.tenant_id.is_(None), Role.id.in_(ids)
            )
        case "member" | "user":  # only people who are members now: no address of strangers
            return (
                select(User.id, User.full_name, User.email)
                .join(Membership, Membership.user_id == User.id)
                .where(Membership.tenant_id == tenant_id, User.id.in_(ids))
            )
        case "token":
            return select(ApiToken.id, ApiToken.name, ApiToken.revoked_at).where(
                ApiToken.tenant_id == tenant_id, ApiToken.id.in_(ids)
            )
        case "invitation":
            return select(Invitation.id, Invitation.email).where(
                Invitation.tenant_id == tenant_id, Invitation.id.in_(ids)
            )
        case "app":
            return select(App.id, App.name).where(App.tenant_id == tenant_id, App.id.in_(ids))
        case "custom_field":
            return select(CustomField.id, CustomField.label).where(
                CustomField.tenant_id == tenant_id, CustomField.id.in_(ids)
            )
        case "report":
            return select(Report.id, Report.filename).where(
                Report.tenant_id == tenant_id, Report.id.in_(ids)
            )
        case "tenant":
            return select(Tenant.id, Tenant.name).where(Tenant.id == tenant_id, Tenant.id.in_(ids))
    return None


def _label(kind: str, row: Any) -> Label:
    rid = row[0]
    match kind:
        case "risk":
            gone = row.deleted_at is not None
            return Label(row.title, None if gone else f"/risks/{rid}", gone)
        case "asset":
            gone = row.deleted_at is not None
            return Label(row.name, None if gone else f"/assets/{rid}", gone)
        case "mitigation":
            gone = row.deleted_at is not None
            return Label(
                row.title, None if gone else f"/risks/{row.risk_id}#mitigation-{rid}", gone
            )
        case "role":
            return Label(row.name, "/settings/roles")
        case "member" | "user":
            return Label(_person(row.full_name, row.email), f"/settings/members/{rid}")
        case "token":
            return Label(row.name, "/settings/tokens", row.revoked_at is not None)
        case "app":
            return Label(row.name, f"/marketplace/apps/{rid}")
    return Label(str(row[1]))


async def resource_labels(
    session: AsyncSession, *, tenant_id: uuid.UUID, refs: Iterable[Ref]
) -> dict[Ref, Label]:
    """``{(type, id): Label}`` for the references that still name something of the tenant."""
    by_kind: dict[str, set[str]] = defaultdict(set)
    for kind, rid in refs:
        if rid:
            by_kind[kind].add(rid)
    labels: dict[Ref, Label] = {}
    connectors = sorted(by_kind.pop("connector", set()))
    if connectors:
        rows = await session.execute(
            select(Connector.id, Connector.name).where(Connector.id.in_(connectors))
        )
        for cid, name in rows:
            labels[("connector", cid)] = Label(name, f"/marketplace/connectors/{cid}")
    for kind, ids in sorted(by_kind.items()):
        stmt = _query(kind, tenant_id, _uuids(ids))
        if stmt is None:
            continue
        for row in await session.execute(stmt):
            labels[(kind, str(row[0]))] = _label(kind, row)
    return labels


async def asset_names(
    session: AsyncSession, *, tenant_id: uuid.UUID, asset_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, str]:
    """Names of the tenant's assets (deleted ones too: history still mentions them)."""
    if not asset_ids:
        return {}
    rows = await session.execute(
        select(Asset.id, Asset.name).where(
            Asset.tenant_id == tenant_id, Asset.id.in_(list(asset_ids))
        )
    )
    return {aid: name for aid, name in rows}
