"""Marketplace logic: the catalogue and the per-tenant apps (install, configure, enable,
uninstall); reviews are in ``reviews``, syncs, redeliveries and app logs in ``syncs``.

Tenant-owned rows (apps, app logs, reviews) are always read with ``tenant_id = context.tenant_id``;
ids of another tenant are NotFound. The catalogue (connectors) is global. Secrets never leave
this module in clear text except towards the connector's own endpoint (drivers).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Float, case, cast, delete, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql import ColumnElement, Insert

from openrisk.audit.service import diff, record
from openrisk.core.context import RequestContext
from openrisk.core.db.base import utcnow
from openrisk.core.errors import Conflict, NotFound, ValidationFailed
from openrisk.core.events import DomainEvent
from openrisk.core.ids import new_id
from openrisk.core.uow import UnitOfWork, commit_with
from openrisk.marketplace import configuration as config_rules
from openrisk.marketplace import subscriptions
from openrisk.marketplace.catalogue import ConnectorSpec, load_catalogue
from openrisk.marketplace.crypto import SecretsUnreadable
from openrisk.marketplace.drivers import driver_for
from openrisk.marketplace.models import App, AppLog, Connector, ConnectorReview
from openrisk.marketplace.runtime import MarketplaceRuntime
from openrisk.marketplace.schemas import AppOut, ConnectorSort

CATALOGUE_FIELDS = (
    "name",
    "version",
    "category",
    "status",
    "capabilities",
    "description",
    "documentation_url",
    "config_schema",
    "allow_multiple",
)


# --------------------------------------------------------------------------- catalogue


def _spec_values(spec: ConnectorSpec) -> dict[str, Any]:
    return {
        "name": spec.name,
        "version": spec.version,
        "category": spec.category,
        "status": spec.status,
        "capabilities": list(spec.capabilities),
        "description": spec.description,
        "documentation_url": spec.documentation_url,
        "config_schema": spec.config_schema,
        "allow_multiple": spec.allow_multiple,
    }


async def sync_catalogue(*, uow: UnitOfWork, specs: tuple[ConnectorSpec, ...] = ()) -> int:
    """Upsert the shipped catalogue into ``connectors``; connectors no longer shipped become
    deprecated (installed apps keep working). Idempotent and safe when several workers start
    together (INSERT ... ON CONFLICT DO UPDATE). Returns the number of rows written; answers
    cached by an older release, in a shared cache, are then stale."""
    session = uow.session
    specs = specs or load_catalogue()
    stored = {c.id: c for c in await session.scalars(select(Connector))}
    now = utcnow()
    rows = []
    for spec in specs:
        values = _spec_values(spec)
        current = stored.get(spec.id)
        if current is not None and all(getattr(current, k) == v for k, v in values.items()):
            continue
        rows.append({"id": spec.id, **values, "created_at": now, "updated_at": now})
    if rows:
        upsert: Insert
        dialect = session.get_bind().dialect.name
        if dialect == "postgresql":
            from sqlalchemy.dialects.postgresql import insert as pg_insert

            stmt = pg_insert(Connector).values(rows)
            excluded = stmt.excluded
            upsert = stmt.on_conflict_do_update(
                index_elements=[Connector.id],
                set_={**{k: excluded[k] for k in CATALOGUE_FIELDS}, "updated_at": now},
            )
        else:
            from sqlalchemy.dialects.sqlite import insert as sqlite_insert

            lite = sqlite_insert(Connector).values(rows)
            upsert = lite.on_conflict_do_update(
                index_elements=[Connector.id],
                set_={**{k: lite.excluded[k] for k in CATALOGUE_FIELDS}, "updated_at": now},
            )
        await session.execute(upsert)
    shipped = {spec.id for spec in specs}
    gone = [cid for cid, c in stored.items() if cid not in shipped and c.status != "deprecated"]
    if gone:
        await session.execute(
            update(Connector)
            .where(Connector.id.in_(gone))
            .values(status="deprecated", updated_at=now)
        )
    await recount(session)
    written = len(rows) + len(gone)
    if written:
        uow.emit(DomainEvent(type="connector.synced", tenant_id=None, resource_id=None))
    await uow.commit()
    return written


def _like(q: str) -> str:
    escaped = q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


async def list_connectors(
    session: AsyncSession,
    *,
    category: str | None,
    status: str | None,
    q: str | None,
    sort: ConnectorSort,
    offset: int,
    limit: int,
) -> tuple[list[Connector], int]:
    query = select(Connector)
    if category:
        query = query.where(func.lower(Connector.category) == category.lower())
    if status:
        query = query.where(Connector.status == status)
    q = (q or "").strip()
    if q:
        pattern = _like(q)
        query = query.where(
            or_(
                Connector.id.ilike(pattern, escape="\\"),
                Connector.name.ilike(pattern, escape="\\"),
                Connector.category.ilike(pattern, escape="\\"),
                Connector.description.ilike(pattern, escape="\\"),
            )
        )
    total = await session.scalar(select(func.count()).select_from(query.subquery()))
    order: list[ColumnElement[Any]]
    if sort is ConnectorSort.rating:
        order = [func.coalesce(Connector.rating, 0).desc(), Connector.review_count.desc()]
    elif sort is ConnectorSort.installs:
        order = [Connector.install_count.desc()]
    elif sort is ConnectorSort.relevance and q:
        # ranked search: name matches first, then id/category, then description only
        order = [
            case(
                (Connector.name.ilike(_like(q).lstrip("%"), escape="\\"), 0),
                (Connector.name.ilike(_like(q), escape="\\"), 1),
                (Connector.id.ilike(_like(q), escape="\\"), 2),
                (Connector.category.ilike(_like(q), escape="\\"), 3),
                else_=4,
            )
        ]
    else:
        order = []
    rows = await session.scalars(
        query.order_by(*order, Connector.name, Connector.id).offset(offset).limit(limit)
    )
    return list(rows), int(total or 0)


async def get_connector(session: AsyncSession, *, connector_id: str) -> Connector:
    connector = await session.get(Connector, connector_id)
    if connector is None:
        raise NotFound("Connector not found.")
    return connector


# --------------------------------------------------------------------------- apps


@dataclass(frozen=True)
class AppView:
    app: App
    connector: Connector


def app_event(kind: str, context: RequestContext, view: AppView) -> DomainEvent:
    """``app.<kind>``: the app's catalogue counts and cached detail are stale."""
    return DomainEvent(
        type=f"app.{kind}",
        tenant_id=context.tenant_id,
        resource_id=view.app.id,
        data={
            "connector_id": view.app.connector_id,
            "name": view.app.name,
            "status": view.app.status,
        },
        actor_id=context.user_id,
    )


def present(view: AppView) -> AppOut:
    """The client's view of an app: secrets masked, never their values."""
    app, connector = view.app, view.connector
    return AppOut(
        id=app.id,
        connector_id=app.connector_id,
        connector_name=connector.name,
        connector_version=connector.version,
        name=app.name,
        status=app.status,
        configuration=config_rules.masked(
            connector.config_schema, app.configuration, app.secret_keys
        ),
        auto_sync=app.auto_sync,
        sync_interval_s=app.sync_interval_s,
        last_sync_at=app.last_sync_at,
        last_sync_status=app.last_sync_status,
        last_sync_error=app.last_sync_error,
        installed_by=app.installed_by,
        created_at=app.created_at,
        updated_at=app.updated_at,
    )


def app_log(app: App, action: str, status: str, detail: str, **data: Any) -> AppLog:
    return AppLog(
        tenant_id=app.tenant_id,
        app_id=app.id,
        action=action,
        status=status,
        detail=detail,
        data=data,
    )


def _snapshot(view: AppView) -> dict[str, Any]:
    """Audit-safe state of an app (secrets masked)."""
    shown = present(view)
    return {
        "name": shown.name,
        "status": shown.status,
        "configuration": shown.configuration,
        "auto_sync": shown.auto_sync,
        "sync_interval_s": shown.sync_interval_s,
    }


async def _count_install(session: AsyncSession, connector_id: str, delta: int) -> None:
    """Atomic +1/-1 on the global counter. (A request's session only sees its own tenant's
    apps under PostgreSQL row-level security, so it cannot recount them; the start-up
    catalogue sync recounts every tenant's apps.)"""
    new_count = Connector.install_count + delta
    await session.execute(
        update(Connector)
        .where(Connector.id == connector_id)
        .values(install_count=case((new_count < 0, 0), else_=new_count))
    )


async def recount(session: AsyncSession) -> None:
    """Recompute every connector's install count, rating and review count from the tables
    (start-up, with a session that sees every tenant)."""
    await session.execute(
        update(Connector).values(
            install_count=select(func.count(App.id))
            .where(App.connector_id == Connector.id)
            .scalar_subquery(),
            rating=select(cast(func.avg(ConnectorReview.rating), Float))
            .where(ConnectorReview.connector_id == Connector.id)
            .scalar_subquery(),
            review_count=select(func.count(ConnectorReview.id))
            .where(ConnectorReview.connector_id == Connector.id)
            .scalar_subquery(),
        )
    )


async def _validated(
    connector: Connector, configuration: dict[str, Any], runtime: MarketplaceRuntime
) -> dict[str, Any]:
    config_rules.validate(connector.config_schema, configuration)
    await driver_for(connector.id).validate(configuration, runtime=runtime)
    return configuration


def _store_configuration(
    app: App, connector: Connector, configuration: dict[str, Any], runtime: MarketplaceRuntime
) -> None:
    public, secrets = config_rules.split_secrets(connector.config_schema, configuration)
    app.configuration = public
    app.secrets_encrypted = runtime.box.seal(secrets)
    app.secret_keys = sorted(secrets)


async def install_app(
    *,
    uow: UnitOfWork,
    context: RequestContext,
    runtime: MarketplaceRuntime,
    connector_id: str,
    name: str | None,
    configuration: dict[str, Any],
    auto_sync: bool,
    sync_interval_s: int,
) -> AppView:
    session = uow.session
    await subscriptions.hold(session, tenant_id=context.tenant_id, exclusive=True)
    connector = await session.get(Connector, connector_id)
    if connector is None:
        raise ValidationFailed.field("connector_id", "no such connector in the catalogue")
    if connector.status == "deprecated":
        raise Conflict(f"The {connector.name} connector is deprecated and cannot be installed.")
    if not connector.allow_multiple:
        existing = await session.scalar(
            select(App.id).where(
                App.tenant_id == context.tenant_id, App.connector_id == connector.id
            )
        )
        if existing is not None:
            raise Conflict(f"{connector.name} is already installed in this tenant.")
    full = config_rules.unmask(connector.config_schema, configuration, {})
    await _validated(connector, full, runtime)
    app = App(
        id=new_id(),
        tenant_id=context.tenant_id,
        connector_id=connector.id,
        install_key=None if connector.allow_multiple else connector.id,
        name=name or connector.name,
        status="installed",
        auto_sync=auto_sync,
        sync_interval_s=sync_interval_s,
        installed_by=context.user_id,
    )
    _store_configuration(app, connector, full, runtime)
    session.add(app)
    try:
        await session.flush()
    except IntegrityError as error:  # a concurrent install of a single-install connector
        raise Conflict(f"{connector.name} is already installed in this tenant.") from error
    session.add(app_log(app, "install", "success", "installed", version=connector.version))
    await _count_install(session, connector.id, +1)
    view = AppView(app, connector)
    record(
        session,
        context=context,
        action="app.install",
        resource_type="app",
        resource_id=app.id,
        changes=diff({}, {"connector_id": connector.id, **_snapshot(view)}),
    )
    await commit_with(uow, [app_event("installed", context, view)])
    return view


async def list_apps(
    session: AsyncSession,
    *,
    context: RequestContext,
    connector_id: str | None,
    status: str | None,
    offset: int,
    limit: int,
) -> tuple[list[AppView], int]:
    where: list[ColumnElement[bool]] = [App.tenant_id == context.tenant_id]
    if connector_id:
        where.append(App.connector_id == connector_id)
    if status:
        where.append(App.status == status)
    total = await session.scalar(select(func.count()).select_from(App).where(*where))
    rows = await session.execute(
        select(App, Connector)
        .join(Connector, Connector.id == App.connector_id)
        .where(*where)
        .order_by(App.created_at.desc(), App.id)
        .offset(offset)
        .limit(limit)
    )
    return [AppView(app, connector) for app, connector in rows.tuples()], int(total or 0)


async def get_app(session: AsyncSession, *, context: RequestContext, app_id: uuid.UUID) -> AppView:
    row = (
        await session.execute(
            select(App, Connector)
            .join(Connector, Connector.id == App.connector_id)
            .where(App.id == app_id, App.tenant_id == context.tenant_id)
        )
    ).first()
    if row is None:
        raise NotFound("App not found.")
    return AppView(row[0], row[1])


async def configure_app(
    *,
    uow: UnitOfWork,
    context: RequestContext,
    runtime: MarketplaceRuntime,
    app_id: uuid.UUID,
    name: str | None = None,
    configuration: dict[str, Any] | None = None,
    auto_sync: bool | None = None,
    sync_interval_s: int | None = None,
) -> tuple[AppView, bool]:
    """PATCH an app; ``configuration`` is a merge patch. Returns (view, changed)."""
    session = uow.session
    view = await get_app(session, context=context, app_id=app_id)
    app, connector = view.app, view.connector
    before = _snapshot(view)
    secrets_changed: list[str] = []
    if configuration is not None:
        try:
            stored = runtime.box.open(app.secrets_encrypted)
        except SecretsUnreadable:
            stored = {}  # the patch must then send the secrets again
        schema = connector.config_schema
        merged = config_rules.merge_patch({**app.configuration, **stored}, configuration)
        full = await _validated(connector, config_rules.unmask(schema, merged, stored), runtime)
        _, new_secrets = config_rules.split_secrets(schema, full)
        secrets_changed = sorted(
            k for k in set(stored) | set(new_secrets) if stored.get(k) != new_secrets.get(k)
        )
        _store_configuration(app, connector, full, runtime)
    if name is not None:
        app.name = name
    if auto_sync is not None:
        app.auto_sync = auto_sync
    if sync_interval_s is not None:
        app.sync_interval_s = sync_interval_s
    if (app.auto_sync, app.sync_interval_s) != (before["auto_sync"], before["sync_interval_s"]):
        app.next_sync_at = None  # the schedule starts again at the next tick
    if configuration is not None and app.status == "error":
        app.status = "installed"  # a new configuration deserves a new chance
    changes: dict[str, Any] = diff(before, _snapshot(view))
    if secrets_changed:
        changes["secrets_changed"] = secrets_changed
    if not changes:
        return view, False
    app.updated_at = utcnow()
    session.add(
        app_log(app, "configure", "success", "configuration updated", fields=sorted(changes))
    )
    record(
        session,
        context=context,
        action="app.configure",
        resource_type="app",
        resource_id=app.id,
        changes=changes,
    )
    await commit_with(uow, [app_event("configured", context, view)])
    return view, True


async def set_enabled(
    *, uow: UnitOfWork, context: RequestContext, app_id: uuid.UUID, enabled: bool
) -> tuple[AppView, bool]:
    session = uow.session
    if enabled:
        await subscriptions.hold(session, tenant_id=context.tenant_id, exclusive=True)
    view = await get_app(session, context=context, app_id=app_id)
    app = view.app
    target = "installed" if enabled else "disabled"
    if (enabled and app.status != "disabled") or (not enabled and app.status == "disabled"):
        return view, False
    before = app.status
    app.status = target
    app.updated_at = utcnow()
    action = "enable" if enabled else "disable"
    session.add(app_log(app, action, "success", f"app {action}d"))
    record(
        session,
        context=context,
        action=f"app.{action}",
        resource_type="app",
        resource_id=app.id,
        changes=diff({"status": before}, {"status": target}),
    )
    await commit_with(uow, [app_event(f"{action}d", context, view)])
    return view, True


async def uninstall_app(*, uow: UnitOfWork, context: RequestContext, app_id: uuid.UUID) -> AppView:
    session = uow.session
    view = await get_app(session, context=context, app_id=app_id)
    snapshot = {"connector_id": view.app.connector_id, **_snapshot(view)}
    await session.execute(
        delete(AppLog).where(AppLog.tenant_id == context.tenant_id, AppLog.app_id == app_id)
    )
    await session.delete(view.app)
    await session.flush()
    await _count_install(session, view.connector.id, -1)
    record(
        session,
        context=context,
        action="app.uninstall",
        resource_type="app",
        resource_id=app_id,
        changes=diff(snapshot, {}),
    )
    await commit_with(uow, [app_event("uninstalled", context, view)])
    return view
