"""Marketplace: the catalogue, install forms generated from each connector's JSON Schema,
installed apps (configure, enable/disable, sync, uninstall) and their logs.

The pages call the API's service functions with the request's unit of work: they commit, and
record the same domain events, themselves.
"""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import Request
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.datastructures import UploadFile
from starlette.responses import Response

from openrisk.core.deps import SessionDep
from openrisk.core.errors import Conflict, NotFound, ValidationFailed
from openrisk.core.uow import UnitOfWork, UowDep
from openrisk.marketplace import reviews, syncs
from openrisk.marketplace import service as market
from openrisk.marketplace.catalogue import load_catalogue
from openrisk.marketplace.drivers import DRIVERS
from openrisk.marketplace.runtime import MarketplaceRuntime
from openrisk.marketplace.schemas import AppCreate, AppUpdate, ConnectorSort, ReviewIn
from openrisk.marketplace.wiring import ensure_catalogue
from openrisk.web import forms, schema_form
from openrisk.web.context import FormDep, WebContext, WebDep
from openrisk.web.rendering import flash_redirect, redirect, render
from openrisk.web.session import set_flash
from openrisk.web.views.common import choice, page_router, pager

router = page_router()

CONNECTOR_STATUSES = ("active", "beta", "deprecated")
APPS_LIMIT = 100
LOG_PAGE = 25


async def _runtime(request: Request) -> MarketplaceRuntime:
    runtime: MarketplaceRuntime = request.app.state.marketplace
    if not runtime.catalogue_ready:
        await ensure_catalogue(request.app.state.db, runtime)
    return runtime


@router.get("/marketplace")
async def catalogue(request: Request, web: WebDep, session: SessionDep) -> Response:
    web.require("connector:read")
    await _runtime(request)
    q = (request.query_params.get("q") or "").strip()[:200]
    categories = sorted({spec.category for spec in load_catalogue()})
    category = choice(request, "category", categories, "")
    status = choice(request, "status", CONNECTOR_STATUSES, "")
    sort = ConnectorSort(
        choice(request, "sort", [s.value for s in ConnectorSort], ConnectorSort.name.value)
    )
    page = pager(request, default_size=20)
    connectors, total = await market.list_connectors(
        session,
        category=category or None,
        status=status or None,
        q=q or None,
        sort=sort,
        offset=page.offset,
        limit=page.page_size,
    )
    apps, apps_total = await market.list_apps(
        session, context=web.context, connector_id=None, status=None, offset=0, limit=APPS_LIMIT
    )
    return render(
        request,
        "marketplace/catalogue.html",
        {
            "connectors": connectors,
            "pager": page.with_total(total),
            "apps": [market.present(v) for v in apps],
            "apps_total": apps_total,
            "q": q,
            "category": category,
            "categories": categories,
            "status": status,
            "statuses": CONNECTOR_STATUSES,
            "sort": sort.value,
            "sorts": [s.value for s in ConnectorSort],
        },
        web=web,
        section="marketplace",
    )


async def _connector_page(
    request: Request,
    web: WebContext,
    session: AsyncSession,
    connector_id: str,
    *,
    values: dict[str, Any] | None = None,
    errors: dict[str, str] | None = None,
    status: int = 200,
) -> Response:
    web.require("connector:read")
    await _runtime(request)
    connector = await market.get_connector(session, connector_id=connector_id)
    apps, _ = await market.list_apps(
        session,
        context=web.context,
        connector_id=connector.id,
        status=None,
        offset=0,
        limit=APPS_LIMIT,
    )
    mine = await reviews.get_own_review(session, context=web.context, connector_id=connector.id)
    submitted = values or {}
    return render(
        request,
        "marketplace/connector.html",
        {
            "connector": connector,
            "fields": schema_form.fields_for(
                connector.config_schema, submitted.get("configuration")
            ),
            "values": submitted,
            "errors": errors or {},
            "apps": [market.present(v) for v in apps],
            "has_driver": connector.id in DRIVERS,
            "my_review": mine,
            "can_install": web.has("connector:install")
            and connector.status != "deprecated"
            and (connector.allow_multiple or not apps),
        },
        web=web,
        section="marketplace",
        status=status,
    )


@router.get("/marketplace/connectors/{connector_id}")
async def connector_detail(
    request: Request, connector_id: str, web: WebDep, session: SessionDep
) -> Response:
    return await _connector_page(request, web, session, connector_id[:64])


@router.post("/marketplace/connectors/{connector_id}/install")
async def install(
    request: Request, connector_id: str, web: FormDep, session: SessionDep, uow: UowDep
) -> Response:
    web.require("connector:install")
    form = web.form
    assert form is not None
    runtime = await _runtime(request)
    connector = await market.get_connector(session, connector_id=connector_id[:64])
    connector_key, connector_name = connector.id, connector.name  # outlive a rollback
    configuration = schema_form.parse(connector.config_schema, form)
    values: dict[str, Any] = {
        "name": forms.text(form, "name"),
        "auto_sync": form.get("auto_sync") == "on",
        "sync_interval_s": forms.text(form, "sync_interval_s") or "3600",
        "configuration": configuration,
    }
    with forms.refusals(also={Conflict: forms.FORM_ERROR}) as refused:
        body = AppCreate.model_validate(
            {
                "connector_id": connector_key,
                "name": values["name"] or None,
                "configuration": configuration,
                "auto_sync": values["auto_sync"],
                "sync_interval_s": values["sync_interval_s"],
            }
        )
        view = await market.install_app(
            uow=uow,
            context=web.context,
            runtime=runtime,
            connector_id=body.connector_id,
            name=body.name,
            configuration=body.configuration,
            auto_sync=body.auto_sync,
            sync_interval_s=body.sync_interval_s,
        )
    if refused:
        await session.rollback()
        return await _connector_page(
            request, web, session, connector_key, values=values, errors=refused.errors, status=422
        )
    return flash_redirect(
        request, f"/marketplace/apps/{view.app.id}", f"{connector_name} installed."
    )


@router.post("/marketplace/connectors/{connector_id}/review")
async def review(request: Request, connector_id: str, web: FormDep, uow: UowDep) -> Response:
    web.require("connector:review")
    assert web.form is not None
    target = f"/marketplace/connectors/{connector_id[:64]}"
    try:
        body = ReviewIn.model_validate(
            {"rating": forms.text(web.form, "rating"), "comment": forms.text(web.form, "comment")}
        )
    except ValidationError as error:
        message = "Rating: " + forms.first_message(error)
        return flash_redirect(request, target, message, level="error")
    await reviews.upsert_review(
        uow=uow,
        context=web.context,
        connector_id=connector_id[:64],
        rating=body.rating,
        comment=body.comment,
    )
    return flash_redirect(request, target, "Thank you for your review.")


# --------------------------------------------------------------------------- apps


async def _app_page(
    request: Request,
    web: WebContext,
    session: AsyncSession,
    app_id: uuid.UUID,
    *,
    configuration: dict[str, Any] | None = None,
    values: dict[str, Any] | None = None,
    errors: dict[str, str] | None = None,
    status: int = 200,
) -> Response:
    web.require("connector:read")
    await _runtime(request)
    view = await market.get_app(session, context=web.context, app_id=app_id)
    shown = market.present(view)
    page = pager(request, default_size=LOG_PAGE, sizes=(LOG_PAGE, 50, 100))
    logs, log_total = await syncs.list_logs(
        session,
        context=web.context,
        app_id=app_id,
        action=None,
        status=None,
        offset=page.offset,
        limit=page.page_size,
    )
    schema = view.connector.config_schema
    redeliverable = await syncs.dead_letter_ids(session, context=web.context, app_id=app_id)
    return render(
        request,
        "marketplace/app.html",
        {
            "app": shown,
            "connector": view.connector,
            "fields": schema_form.fields_for(
                schema,
                configuration if configuration is not None else view.app.configuration,
                stored_secrets=frozenset(view.app.secret_keys),
            ),
            "values": values
            or {
                "name": shown.name,
                "auto_sync": shown.auto_sync,
                "sync_interval_s": str(shown.sync_interval_s),
            },
            "errors": errors or {},
            "logs": logs,
            "redeliverable": {str(i) for i in redeliverable},
            "pager": page.with_total(log_total),
            "has_driver": view.app.connector_id in DRIVERS,
        },
        web=web,
        section="marketplace",
        status=status,
    )


@router.get("/marketplace/apps/{app_id}")
async def app_detail(
    request: Request, app_id: uuid.UUID, web: WebDep, session: SessionDep
) -> Response:
    return await _app_page(request, web, session, app_id)


@router.post("/marketplace/apps/{app_id}/configure")
async def configure(
    request: Request, app_id: uuid.UUID, web: FormDep, session: SessionDep, uow: UowDep
) -> Response:
    web.require("connector:configure")
    form = web.form
    assert form is not None
    runtime = await _runtime(request)
    current = await market.get_app(session, context=web.context, app_id=app_id)
    patch = schema_form.parse(current.connector.config_schema, form, patch=True)
    values: dict[str, Any] = {
        "name": forms.text(form, "name"),
        "auto_sync": form.get("auto_sync") == "on",
        "sync_interval_s": forms.text(form, "sync_interval_s"),
    }
    with forms.refusals() as refused:
        body = AppUpdate.model_validate(
            {
                "name": values["name"] or None,
                "configuration": patch,
                "auto_sync": values["auto_sync"],
                "sync_interval_s": values["sync_interval_s"] or None,
            }
        )
        _, changed = await market.configure_app(
            uow=uow,
            context=web.context,
            runtime=runtime,
            app_id=app_id,
            name=body.name,
            configuration=body.configuration,
            auto_sync=body.auto_sync,
            sync_interval_s=body.sync_interval_s,
        )
    if refused:
        await session.rollback()
        shown = {k: v for k, v in patch.items() if v is not None}
        return await _app_page(
            request,
            web,
            session,
            app_id,
            configuration=shown,
            values=values,
            errors=refused.errors,
            status=422,
        )
    return flash_redirect(
        request,
        f"/marketplace/apps/{app_id}",
        "Configuration saved." if changed else "Nothing changed.",
    )


async def _toggle(
    request: Request, web: WebContext, uow: UnitOfWork, app_id: uuid.UUID, *, enabled: bool
) -> Response:
    web.require("connector:configure")
    view, _ = await market.set_enabled(uow=uow, context=web.context, app_id=app_id, enabled=enabled)
    return flash_redirect(
        request,
        f"/marketplace/apps/{app_id}",
        f"{view.app.name} {'enabled' if enabled else 'disabled'}.",
    )


@router.post("/marketplace/apps/{app_id}/enable")
async def enable(request: Request, app_id: uuid.UUID, web: FormDep, uow: UowDep) -> Response:
    return await _toggle(request, web, uow, app_id, enabled=True)


@router.post("/marketplace/apps/{app_id}/disable")
async def disable(request: Request, app_id: uuid.UUID, web: FormDep, uow: UowDep) -> Response:
    return await _toggle(request, web, uow, app_id, enabled=False)


@router.post("/marketplace/apps/{app_id}/sync")
async def sync(request: Request, app_id: uuid.UUID, web: FormDep, uow: UowDep) -> Response:
    web.require("connector:sync")
    assert web.form is not None
    runtime = await _runtime(request)
    upload = web.form.get("file")
    content, filename = None, None
    if isinstance(upload, UploadFile) and upload.filename:
        content, filename = await upload.read(), upload.filename
    try:
        _, outcome = await syncs.sync_app(
            uow=uow,
            context=web.context,
            runtime=runtime,
            app_id=app_id,
            upload=content,
            upload_name=filename,
        )
    except (Conflict, ValidationFailed) as error:
        return flash_redirect(request, f"/marketplace/apps/{app_id}", error.detail, level="error")
    response = redirect(f"/marketplace/apps/{app_id}")
    level = "success" if outcome.status == "success" else "error"
    set_flash(request, response, f"Sync {outcome.status}: {outcome.detail}", level=level)
    return response


@router.post("/marketplace/apps/{app_id}/deliveries/{delivery_id}/redeliver")
async def redeliver(
    request: Request, app_id: uuid.UUID, delivery_id: uuid.UUID, web: FormDep, uow: UowDep
) -> Response:
    web.require("connector:configure")
    response = redirect(f"/marketplace/apps/{app_id}")
    try:
        letter = await syncs.redeliver(
            uow=uow, context=web.context, app_id=app_id, delivery_id=delivery_id
        )
    except (NotFound, Conflict) as error:
        set_flash(request, response, error.detail, level="error")
        return response
    set_flash(request, response, f"Redelivery of {letter.event_type} queued.")
    return response


@router.post("/marketplace/apps/{app_id}/uninstall")
async def uninstall(request: Request, app_id: uuid.UUID, web: FormDep, uow: UowDep) -> Response:
    web.require("connector:uninstall")
    view = await market.uninstall_app(uow=uow, context=web.context, app_id=app_id)
    return flash_redirect(request, "/marketplace", f"{view.app.name} uninstalled.")
