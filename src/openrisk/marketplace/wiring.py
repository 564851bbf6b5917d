"""Plugging the marketplace into the application (called from ``create_app``)."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator

from fastapi import FastAPI
from sqlalchemy.exc import SQLAlchemyError

from openrisk.config import Settings
from openrisk.core.db.engine import Database
from openrisk.core.uow import UnitOfWork
from openrisk.marketplace.runtime import MarketplaceRuntime
from openrisk.marketplace.service import sync_catalogue

log = logging.getLogger(__name__)


async def ensure_catalogue(database: Database, runtime: MarketplaceRuntime) -> None:
    """Upsert the shipped connector catalogue once per process."""
    if runtime.catalogue_ready:
        return
    async with database.session() as session:
        written = await sync_catalogue(uow=runtime.unit_of_work(session))
    runtime.catalogue_ready = True
    if written:
        log.info("connector catalogue updated", extra={"connectors": written})


def install_marketplace(app: FastAPI, settings: Settings) -> None:
    """Runtime state and the catalogue upsert at start-up (deliveries are jobs:
    ``marketplace/tasks.py``, routed in ``openrisk/tasks.py``)."""
    runtime = MarketplaceRuntime.from_settings(settings)
    runtime.uow_factory = lambda session: UnitOfWork.for_app(app.state, session)
    app.state.marketplace = runtime

    inner = app.router.lifespan_context

    @contextlib.asynccontextmanager
    async def lifespan(application: FastAPI) -> AsyncIterator[None]:
        async with inner(application):
            try:
                await ensure_catalogue(application.state.db, runtime)
            except (SQLAlchemyError, OSError) as error:  # the server still starts (readiness)
                log.warning("connector catalogue not synced at start-up: %s", type(error).__name__)
            yield

    app.router.lifespan_context = lifespan
