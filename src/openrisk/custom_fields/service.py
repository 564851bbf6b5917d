"""Custom field definitions of a tenant."""

from __future__ import annotations

import uuid

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from openrisk.audit.service import diff, record
from openrisk.core.context import RequestContext
from openrisk.core.errors import Conflict, NotFound, ValidationFailed
from openrisk.core.events import DomainEvent
from openrisk.core.uow import UnitOfWork, commit_with
from openrisk.custom_fields.models import CustomField
from openrisk.custom_fields.schemas import CustomFieldCreate, CustomFieldUpdate, FieldType
from openrisk.risks import labels
from openrisk.risks.common import dialect_name
from openrisk.risks.models import Risk

_AUDITED = ("name", "label", "type", "required", "options", "description")


def _snapshot(field: CustomField) -> dict[str, object]:
    return {name: getattr(field, name) for name in _AUDITED}


async def definitions(session: AsyncSession, *, tenant_id: uuid.UUID) -> list[CustomField]:
    """Every custom field definition of the tenant, by name (forms, validation)."""
    rows = await session.scalars(
        select(CustomField).where(CustomField.tenant_id == tenant_id).order_by(CustomField.name)
    )
    return list(rows)


async def list_fields(
    session: AsyncSession, *, tenant_id: uuid.UUID, offset: int, limit: int
) -> tuple[list[CustomField], int]:
    total = await session.scalar(
        select(func.count()).select_from(CustomField).where(CustomField.tenant_id == tenant_id)
    )
    rows = await session.scalars(
        select(CustomField)
        .where(CustomField.tenant_id == tenant_id)
        .order_by(CustomField.name)
        .offset(offset)
        .limit(limit)
    )
    return list(rows), int(total or 0)


async def get_field(
    session: AsyncSession, *, tenant_id: uuid.UUID, field_id: uuid.UUID
) -> CustomField:
    field = await session.scalar(
        select(CustomField).where(CustomField.id == field_id, CustomField.tenant_id == tenant_id)
    )
    if field is None:
        raise NotFound("Custom field not found.")
    return field


def _event(kind: str, context: RequestContext, field: CustomField) -> DomainEvent:
    return DomainEvent(
        type=f"custom_field.{kind}",
        tenant_id=context.tenant_id,
        resource_id=field.id,
        data={"id": str(field.id), "name": field.name, "type": field.type},
        actor_id=context.user_id,
    )


async def create_field(
    *,
    uow: UnitOfWork,
    context: RequestContext,
    data: CustomFieldCreate,
) -> CustomField:
    session = uow.session
    exists = await session.scalar(
        select(CustomField.id).where(
            CustomField.tenant_id == context.tenant_id, CustomField.name == data.name
        )
    )
    if exists is not None:
        raise Conflict(f"A custom field named {data.name!r} already exists.")
    field = CustomField(tenant_id=context.tenant_id, **data.model_dump())
    session.add(field)
    try:
        await session.flush()
    except IntegrityError as error:  # a concurrent create of the same name
        await session.rollback()
        raise Conflict(f"A custom field named {data.name!r} already exists.") from error
    record(
        session,
        context=context,
        action="custom_field.create",
        resource_type="custom_field",
        resource_id=field.id,
        changes=diff({}, _snapshot(field)),
    )
    await commit_with(uow, [_event("created", context, field)])
    return field


async def update_field(
    *,
    uow: UnitOfWork,
    context: RequestContext,
    field_id: uuid.UUID,
    data: CustomFieldUpdate,
) -> CustomField:
    session = uow.session
    field = await get_field(session, tenant_id=context.tenant_id, field_id=field_id)
    before = _snapshot(field)
    changes = data.model_dump(exclude_unset=True)
    for name, value in changes.items():
        if value is None:
            raise ValidationFailed.field(name, "must not be null")
    if "options" in changes and field.type != FieldType.choice and changes["options"]:
        raise ValidationFailed.field("options", "only choice fields have options")
    if "options" in changes and field.type == FieldType.choice and not changes["options"]:
        raise ValidationFailed.field("options", "a choice field needs at least one option")
    for name, value in changes.items():
        setattr(field, name, value)
    await session.flush()
    record(
        session,
        context=context,
        action="custom_field.update",
        resource_type="custom_field",
        resource_id=field.id,
        changes=diff(before, _snapshot(field)),
    )
    await commit_with(uow, [_event("updated", context, field)])
    return field


async def delete_field(
    *,
    uow: UnitOfWork,
    context: RequestContext,
    field_id: uuid.UUID,
) -> None:
    """Delete the definition and strip its values from the tenant's risks."""
    session = uow.session
    field = await get_field(session, tenant_id=context.tenant_id, field_id=field_id)
    if dialect_name(session) == "postgresql":
        strip = (
            update(Risk)
            .where(
                Risk.tenant_id == context.tenant_id,
                func.jsonb_exists(Risk.custom_fields, field.name),
            )
            .values(custom_fields=Risk.custom_fields.op("-")(field.name))
        )
    else:
        path = f'$."{field.name}"'
        strip = (
            update(Risk)
            .where(
                Risk.tenant_id == context.tenant_id,
                func.json_type(Risk.custom_fields, path).is_not(None),
            )
            .values(custom_fields=func.json_remove(Risk.custom_fields, path))
        )
    await session.execute(strip.execution_options(synchronize_session=False))
    await labels.remove_kind(
        session, tenant_id=context.tenant_id, kind=labels.custom_kind(field.name)
    )
    record(
        session,
        context=context,
        action="custom_field.delete",
        resource_type="custom_field",
        resource_id=field.id,
        changes=diff(_snapshot(field), {}),
    )
    await session.delete(field)
    deleted = _event("deleted", context, field)
    risks_changed = DomainEvent(
        type="risk.updated",
        tenant_id=context.tenant_id,
        resource_id=None,
        data={"reason": "custom_field.deleted", "custom_field": field.name},
        actor_id=context.user_id,
    )
    await commit_with(uow, [deleted, risks_changed])
