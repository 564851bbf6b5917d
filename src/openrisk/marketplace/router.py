"""Marketplace routes: catalogue, reviews, installed apps, sync and logs.

Permissions: ``connector:read`` for every GET; ``connector:review`` to review;
``connector:install`` to install; ``connector:configure`` for PATCH, enable and disable;
``connector:sync`` to sync; ``connector:uninstall`` for DELETE. App configurations are answered
with each secret (write-only) setting replaced by ``"********"`` when it is set.
"""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Depends, File, Path, Query, Request, Response, UploadFile, status

from openrisk.auth.deps import require
from openrisk.core.cache.http import respond, serves
from openrisk.core.context import RequestContext
from openrisk.core.deps import DatabaseDep, SessionDep
from openrisk.core.pagination import Page, PageParams, page_params
from openrisk.core.routing import api_router
from openrisk.core.uow import UowDep
from openrisk.marketplace import answers, reviews, service, syncs
from openrisk.marketplace.runtime import MarketplaceRuntime
from openrisk.marketplace.schemas import (
    AppCreate,
    AppLogOut,
    AppOut,
    AppStatus,
    AppUpdate,
    ConnectorDetail,
    ConnectorOut,
    ConnectorSort,
    ConnectorStatus,
    RedeliveryOut,
    ReviewIn,
    ReviewOut,
    SyncOut,
)
from openrisk.marketplace.wiring import ensure_catalogue

router = api_router("/marketplace", tags=["marketplace"])

PageDep = Annotated[PageParams, Depends(page_params)]


async def get_runtime(request: Request, database: DatabaseDep) -> MarketplaceRuntime:
    runtime: MarketplaceRuntime = request.app.state.marketplace
    if not runtime.catalogue_ready:
        await ensure_catalogue(database, runtime)
    return runtime


RuntimeDep = Annotated[MarketplaceRuntime, Depends(get_runtime)]


# --------------------------------------------------------------------------- catalogue


@router.get("/connectors", response_model=Page[ConnectorOut])
@serves(answers.CATALOGUE)
async def list_connectors(
    request: Request,
    context: Annotated[RequestContext, Depends(require("connector:read"))],
    session: SessionDep,
    runtime: RuntimeDep,
    page: PageDep,
    category: Annotated[str | None, Query(max_length=40)] = None,
    status_: Annotated[ConnectorStatus | None, Query(alias="status")] = None,
    q: Annotated[str | None, Query(max_length=200)] = None,
    sort: ConnectorSort = ConnectorSort.name,
) -> Response:
    """The global connector catalogue; ``q`` searches name, id, category and description
    (``sort=relevance`` ranks name matches first). Cached, shared by every tenant."""
    return await respond(
        request,
        answers.CATALOGUE,
        session=session,
        category=category,
        status=status_.value if status_ else None,
        q=q,
        sort=sort,
        page=page.page,
        page_size=page.page_size,
    )


@router.get("/connectors/{connector_id}", response_model=ConnectorDetail)
@serves(answers.CONNECTOR)
async def get_connector(
    request: Request,
    connector_id: Annotated[str, Path(max_length=64)],
    context: Annotated[RequestContext, Depends(require("connector:read"))],
    session: SessionDep,
    runtime: RuntimeDep,
) -> Response:
    """A connector with its configuration JSON Schema and the caller's own review. Cached per
    caller (the review is theirs)."""
    return await respond(
        request, answers.CONNECTOR, session=session, context=context, connector_id=connector_id
    )


@router.get("/connectors/{connector_id}/reviews")
async def list_reviews(
    connector_id: str,
    context: Annotated[RequestContext, Depends(require("connector:read"))],
    session: SessionDep,
    runtime: RuntimeDep,
    page: PageDep,
) -> Page[ReviewOut]:
    """Reviews written from the caller's tenant (the connector's rating is the global mean)."""
    rows, total = await reviews.list_reviews(
        session,
        context=context,
        connector_id=connector_id,
        offset=page.offset,
        limit=page.page_size,
    )
    return Page(
        items=[ReviewOut.model_validate(r) for r in rows],
        total=total,
        page=page.page,
        page_size=page.page_size,
    )


@router.post(
    "/connectors/{connector_id}/reviews",
    status_code=status.HTTP_201_CREATED,
    responses={200: {"description": "The caller's existing review was updated."}},
)
async def review_connector(
    connector_id: str,
    body: ReviewIn,
    response: Response,
    context: Annotated[RequestContext, Depends(require("connector:review"))],
    uow: UowDep,
    runtime: RuntimeDep,
) -> ReviewOut:
    """Rate a connector 1..5. One review per user and connector in each tenant: reviewing again
    replaces it (200 instead of 201). The connector's rating is the mean of every tenant's
    reviews; review texts are shown only in the tenant they were written from."""
    review, created = await reviews.upsert_review(
        uow=uow,
        context=context,
        connector_id=connector_id,
        rating=body.rating,
        comment=body.comment,
    )
    if not created:
        response.status_code = status.HTTP_200_OK
    return ReviewOut.model_validate(review)


# --------------------------------------------------------------------------- apps


@router.get("/apps")
async def list_apps(
    context: Annotated[RequestContext, Depends(require("connector:read"))],
    session: SessionDep,
    page: PageDep,
    connector_id: Annotated[str | None, Query(max_length=64)] = None,
    status_: Annotated[AppStatus | None, Query(alias="status")] = None,
) -> Page[AppOut]:
    """The connectors installed in the current tenant."""
    views, total = await service.list_apps(
        session,
        context=context,
        connector_id=connector_id,
        status=status_.value if status_ else None,
        offset=page.offset,
        limit=page.page_size,
    )
    return Page(
        items=[service.present(v) for v in views],
        total=total,
        page=page.page,
        page_size=page.page_size,
    )


@router.post("/apps", status_code=status.HTTP_201_CREATED)
async def install_app(
    body: AppCreate,
    context: Annotated[RequestContext, Depends(require("connector:install"))],
    uow: UowDep,
    runtime: RuntimeDep,
) -> AppOut:
    """Install a connector: the configuration is validated against its JSON Schema (422 naming
    the field), secrets are stored encrypted. Deprecated connectors: 409; a second install of a
    single-install connector: 409."""
    view = await service.install_app(
        uow=uow,
        context=context,
        runtime=runtime,
        connector_id=body.connector_id,
        name=body.name,
        configuration=body.configuration,
        auto_sync=body.auto_sync,
        sync_interval_s=body.sync_interval_s,
    )
    return service.present(view)


@router.get("/apps/{app_id}", response_model=AppOut)
@serves(answers.APP)
async def get_app(
    request: Request,
    app_id: uuid.UUID,
    context: Annotated[RequestContext, Depends(require("connector:read"))],
    session: SessionDep,
) -> Response:
    """An installed app (secrets masked). Cached until the app changes."""
    return await respond(
        request,
        answers.APP,
        session=session,
        tenant_id=context.tenant_id,
        context=context,
        app_id=app_id,
    )


@router.patch("/apps/{app_id}")
async def configure_app(
    app_id: uuid.UUID,
    body: AppUpdate,
    context: Annotated[RequestContext, Depends(require("connector:configure"))],
    uow: UowDep,
    runtime: RuntimeDep,
) -> AppOut:
    """Change name, schedule or configuration. ``configuration`` is a JSON merge patch: keys
    sent replace the stored ones, ``null`` removes one, and a secret sent as ``"********"``
    keeps the stored secret."""
    view, _ = await service.configure_app(
        uow=uow,
        context=context,
        runtime=runtime,
        app_id=app_id,
        name=body.name,
        configuration=body.configuration,
        auto_sync=body.auto_sync,
        sync_interval_s=body.sync_interval_s,
    )
    return service.present(view)


@router.delete("/apps/{app_id}", status_code=status.HTTP_204_NO_CONTENT)
async def uninstall_app(
    app_id: uuid.UUID,
    context: Annotated[RequestContext, Depends(require("connector:uninstall"))],
    uow: UowDep,
) -> Response:
    """Uninstall: the app, its secrets and its logs are deleted (the audit trail stays)."""
    await service.uninstall_app(uow=uow, context=context, app_id=app_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


async def _toggle(
    app_id: uuid.UUID, context: RequestContext, uow: UowDep, *, enabled: bool
) -> AppOut:
    view, _ = await service.set_enabled(uow=uow, context=context, app_id=app_id, enabled=enabled)
    return service.present(view)


@router.post("/apps/{app_id}/enable")
async def enable_app(
    app_id: uuid.UUID,
    context: Annotated[RequestContext, Depends(require("connector:configure"))],
    uow: UowDep,
) -> AppOut:
    return await _toggle(app_id, context, uow, enabled=True)


@router.post("/apps/{app_id}/disable")
async def disable_app(
    app_id: uuid.UUID,
    context: Annotated[RequestContext, Depends(require("connector:configure"))],
    uow: UowDep,
) -> AppOut:
    """A disabled app receives no events and cannot sync until enabled again."""
    return await _toggle(app_id, context, uow, enabled=False)


@router.post("/apps/{app_id}/sync")
async def sync_app(
    app_id: uuid.UUID,
    context: Annotated[RequestContext, Depends(require("connector:sync"))],
    uow: UowDep,
    runtime: RuntimeDep,
    file: Annotated[UploadFile | None, File(description="csv-import: the CSV to import")] = None,
) -> SyncOut:
    """Run the connector's sync now. webhook: a signed ``ping`` event (one attempt);
    slack: a test message; csv-import: imports the uploaded CSV (multipart field ``file``) or
    else the ``csv_text`` of the configuration. Catalogue-only connectors: 409."""
    upload = await file.read() if file is not None else None
    view, outcome = await syncs.sync_app(
        uow=uow,
        context=context,
        runtime=runtime,
        app_id=app_id,
        upload=upload,
        upload_name=file.filename if file is not None else None,
    )
    return SyncOut(
        status=outcome.status,
        detail=outcome.detail,
        data=outcome.data,
        app=service.present(view),
    )


@router.post(
    "/apps/{app_id}/deliveries/{delivery_id}/redeliver", status_code=status.HTTP_202_ACCEPTED
)
async def redeliver(
    app_id: uuid.UUID,
    delivery_id: uuid.UUID,
    context: Annotated[RequestContext, Depends(require("connector:configure"))],
    uow: UowDep,
) -> RedeliveryOut:
    """Send a failed delivery again: a dead letter (its log entry has ``data.dead_letter``)
    is delivered anew, with the same event and the same ``X-OpenRisk-Delivery``, as a job
    (202: queued; its attempts appear in the app's log). 404 when the app has no such dead
    letter (never failed for good, or already redelivered); 409 when the app is disabled."""
    letter = await syncs.redeliver(uow=uow, context=context, app_id=app_id, delivery_id=delivery_id)
    return RedeliveryOut(delivery_id=letter.id, event_type=letter.event_type, status="queued")


@router.get("/apps/{app_id}/logs")
async def app_logs(
    app_id: uuid.UUID,
    context: Annotated[RequestContext, Depends(require("connector:read"))],
    session: SessionDep,
    page: PageDep,
    action: Annotated[str | None, Query(max_length=32)] = None,
    status_: Annotated[str | None, Query(alias="status", max_length=16)] = None,
) -> Page[AppLogOut]:
    """The app's log, newest first: install/configure/sync and every delivery attempt."""
    rows, total = await syncs.list_logs(
        session,
        context=context,
        app_id=app_id,
        action=action,
        status=status_,
        offset=page.offset,
        limit=page.page_size,
    )
    return Page(
        items=[AppLogOut.model_validate(r) for r in rows],
        total=total,
        page=page.page,
        page_size=page.page_size,
    )
