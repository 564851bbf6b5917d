"""The marketplace's cached answers, declared beside the functions computing them: the
catalogue (global, shared by every tenant), a connector with the caller's own review, and an
installed app (secrets masked)."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from openrisk.core.cache.http import dump
from openrisk.core.cache.invalidation import CONNECTORS, app_key
from openrisk.core.cache.reads import cached_read
from openrisk.core.context import RequestContext
from openrisk.core.pagination import Page
from openrisk.marketplace import reviews, service
from openrisk.marketplace.catalogue import secret_fields
from openrisk.marketplace.drivers import DRIVERS
from openrisk.marketplace.schemas import ConnectorDetail, ConnectorOut, ConnectorSort, ReviewOut


async def catalogue_page(
    session: AsyncSession,
    *,
    category: str | None,
    status: str | None,
    q: str | None,
    sort: ConnectorSort,
    page: int,
    page_size: int,
) -> bytes:
    rows, total = await service.list_connectors(
        session,
        category=category,
        status=status,
        q=q,
        sort=sort,
        offset=(page - 1) * page_size,
        limit=page_size,
    )
    return dump(
        Page(
            items=[ConnectorOut.model_validate(c) for c in rows],
            total=total,
            page=page,
            page_size=page_size,
        )
    )


async def connector_detail(
    session: AsyncSession, *, context: RequestContext, connector_id: str
) -> bytes:
    connector = await service.get_connector(session, connector_id=connector_id)
    mine = await reviews.get_own_review(session, context=context, connector_id=connector_id)
    base = ConnectorOut.model_validate(connector)
    return dump(
        ConnectorDetail(
            **base.model_dump(),
            config_schema=connector.config_schema,
            secret_fields=sorted(secret_fields(connector.config_schema)),
            has_driver=connector.id in DRIVERS,
            my_review=ReviewOut.model_validate(mine) if mine else None,
        )
    )


async def app_detail(
    session: AsyncSession, *, tenant_id: uuid.UUID, context: RequestContext, app_id: uuid.UUID
) -> bytes:
    view = await service.get_app(session, context=context, app_id=app_id)
    return dump(service.present(view))


CATALOGUE = cached_read(
    catalogue_page,
    namespace="connector:list",
    ttl=900,
    varies_on=("category", "status", "q", "sort", "page", "page_size"),
    depends_on=(CONNECTORS,),
)
# global (the catalogue's), but the review shown is the caller's own in its tenant
CONNECTOR = cached_read(
    connector_detail,
    namespace="connector:detail",
    ttl=900,
    varies_on=("user", "connector_id"),
    depends_on=(CONNECTORS,),
)
# the app's tenant; what the answer shows does not depend on who in the tenant asks
APP = cached_read(
    app_detail,
    namespace="app:detail",
    ttl=1200,
    varies_on=("tenant", "reader:connector:read", "app_id"),
    depends_on=lambda inputs: (app_key(inputs["app_id"]),),
)
