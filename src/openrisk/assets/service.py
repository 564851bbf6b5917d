"""Assets of a tenant; criticality changes (and deletions) rescore the linked risks."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import case, delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from openrisk.assets.models import Asset
from openrisk.assets.schemas import NOT_NULLABLE, AssetCreate, AssetSort, AssetUpdate
from openrisk.audit.service import diff, record
from openrisk.core.context import RequestContext
from openrisk.core.db.base import utcnow
from openrisk.core.errors import NotFound, ValidationFailed
from openrisk.core.events import DomainEvent
from openrisk.core.uow import UnitOfWork, commit_with
from openrisk.risks import rescoring
from openrisk.risks.common import to_json
from openrisk.risks.models import Risk, RiskAsset
from openrisk.risks.scoring import Criticality

_FIELDS = ("name", "type", "criticality", "owner", "external_id", "description")
_CRITICALITY_RANK = case(
    {c.value: rank for rank, c in enumerate(Criticality)}, value=Asset.criticality, else_=0
)


def _snapshot(asset: Asset) -> dict[str, Any]:
    return to_json({name: getattr(asset, name) for name in _FIELDS})  # type: ignore[no-any-return]


def _event(kind: str, context: RequestContext, asset: Asset) -> DomainEvent:
    return DomainEvent(
        type=f"asset.{kind}",
        tenant_id=asset.tenant_id,
        resource_id=asset.id,
        data={"id": str(asset.id), **_snapshot(asset)},
        actor_id=context.user_id,
    )


async def risk_counts(
    session: AsyncSession, *, tenant_id: uuid.UUID, asset_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, int]:
    """Live risks per asset, for a page of assets, in one grouped query."""
    if not asset_ids:
        return {}
    rows = await session.execute(
        select(RiskAsset.asset_id, func.count())
        .join(Risk, Risk.id == RiskAsset.risk_id)
        .where(
            RiskAsset.asset_id.in_(list(asset_ids)),
            Risk.tenant_id == tenant_id,
            Risk.deleted_at.is_(None),
        )
        .group_by(RiskAsset.asset_id)
    )
    return {asset_id: int(n) for asset_id, n in rows}


async def list_assets(
    session: AsyncSession,
    *,
    tenant_id: uuid.UUID,
    q: str | None,
    types: Sequence[str],
    criticality: Sequence[str],
    sort: AssetSort,
    descending: bool,
    offset: int,
    limit: int,
) -> tuple[list[Asset], int]:
    where: list[Any] = [Asset.tenant_id == tenant_id, Asset.deleted_at.is_(None)]
    if q and q.strip():
        pattern = (
            "%"
            + q.strip().lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            + "%"
        )
        where.append(func.lower(Asset.name).like(pattern, escape="\\"))
    if types:
        where.append(Asset.type.in_(list(types)))
    if criticality:
        where.append(Asset.criticality.in_(list(criticality)))
    sort_keys: dict[AssetSort, list[Any]] = {
        AssetSort.name: [Asset.name, Asset.id],
        AssetSort.criticality: [_CRITICALITY_RANK, Asset.name, Asset.id],
        AssetSort.created_at: [Asset.created_at, Asset.id],
    }
    keys = sort_keys[sort]
    total = await session.scalar(select(func.count()).select_from(Asset).where(*where))
    rows = await session.scalars(
        select(Asset)
        .where(*where)
        .order_by(*(k.desc() if descending else k.asc() for k in keys))
        .offset(offset)
        .limit(limit)
    )
    return list(rows), int(total or 0)


async def get_asset(session: AsyncSession, *, tenant_id: uuid.UUID, asset_id: uuid.UUID) -> Asset:
    asset = await session.scalar(
        select(Asset).where(
            Asset.id == asset_id, Asset.tenant_id == tenant_id, Asset.deleted_at.is_(None)
        )
    )
    if asset is None:
        raise NotFound("Asset not found.")
    return asset


async def create_asset(
    *,
    uow: UnitOfWork,
    context: RequestContext,
    data: AssetCreate,
) -> Asset:
    session = uow.session
    asset = Asset(
        tenant_id=context.tenant_id,
        name=data.name,
        type=data.type,
        criticality=data.criticality.value,
        owner=data.owner,
        external_id=data.external_id,
        description=data.description,
    )
    session.add(asset)
    await session.flush()
    record(
        session,
        context=context,
        action="asset.create",
        resource_type="asset",
        resource_id=asset.id,
        changes=diff({}, _snapshot(asset)),
    )
    await commit_with(uow, [_event("created", context, asset)])
    return asset


async def update_asset(
    *,
    uow: UnitOfWork,
    context: RequestContext,
    asset_id: uuid.UUID,
    data: AssetUpdate,
) -> Asset:
    session = uow.session
    asset = await get_asset(session, tenant_id=context.tenant_id, asset_id=asset_id)
    changes = data.model_dump(exclude_unset=True)
    for name in NOT_NULLABLE & set(changes):
        if changes[name] is None:
            raise ValidationFailed.field(name, "must not be null")
    before = _snapshot(asset)
    for name, value in changes.items():
        setattr(asset, name, value.value if isinstance(value, Criticality) else value)
    changed = diff(before, _snapshot(asset))
    if not changed:
        return asset
    asset.updated_at = utcnow()
    await session.flush()
    record(
        session,
        context=context,
        action="asset.update",
        resource_type="asset",
        resource_id=asset.id,
        changes=changed,
    )
    rescored: list[DomainEvent] = []
    if "criticality" in changed:
        rescored = await rescoring.rescore_for_assets(
            session,
            tenant_id=context.tenant_id,
            asset_ids=[asset.id],
            changed_by=context.user_id,
            reason=f"asset {asset.id} criticality {before['criticality']} → {asset.criticality}",
        )
    await commit_with(uow, [_event("updated", context, asset), *rescored])
    return asset


async def delete_asset(
    *,
    uow: UnitOfWork,
    context: RequestContext,
    asset_id: uuid.UUID,
) -> None:
    """Soft-delete; the asset stops weighing on its risks, which are rescored."""
    session = uow.session
    asset = await get_asset(session, tenant_id=context.tenant_id, asset_id=asset_id)
    asset.deleted_at = utcnow()
    await session.flush()
    rescored = await rescoring.rescore_for_assets(
        session,
        tenant_id=context.tenant_id,
        asset_ids=[asset.id],
        changed_by=context.user_id,
        reason=f"asset {asset.id} deleted",
    )
    linked = set(
        await session.scalars(select(RiskAsset.risk_id).where(RiskAsset.asset_id == asset.id))
    )
    await session.execute(delete(RiskAsset).where(RiskAsset.asset_id == asset.id))
    unlinked = [
        DomainEvent(
            type="risk.updated",
            tenant_id=context.tenant_id,
            resource_id=risk_id,
            data={"id": str(risk_id), "reason": f"asset {asset.id} deleted"},
            actor_id=context.user_id,
        )
        for risk_id in sorted(linked - {e.resource_id for e in rescored})
    ]
    record(
        session,
        context=context,
        action="asset.delete",
        resource_type="asset",
        resource_id=asset.id,
        changes=diff(_snapshot(asset), {}),
    )
    await commit_with(uow, [_event("deleted", context, asset), *rescored, *unlinked])
