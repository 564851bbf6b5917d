"""Application factory: wiring only (settings, database, routers, middleware, lifespan)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta

from fastapi import APIRouter, FastAPI
from fastapi.routing import APIRoute
from starlette.responses import Response

from openrisk import __version__
from openrisk.assets.router import router as assets_router
from openrisk.audit.router import router as audit_router
from openrisk.auth.router import router as auth_router
from openrisk.config import Settings, get_settings
from openrisk.core.cache.factory import build_app_caches, memory_per_worker
from openrisk.core.cache.hot_path import HotPath, HotPathMiddleware
from openrisk.core.cache.invalidation import CacheInvalidator
from openrisk.core.db.engine import create_database
from openrisk.core.db.migrate import ensure_schema_current
from openrisk.core.errors import install_error_handlers
from openrisk.core.jobs import JobRuntime
from openrisk.core.jobs.worker import JobEngine
from openrisk.core.lifecycle import (
    check_database,
    freeze_heap,
    run_health_loop,
    warn_if_pool_exceeds_server,
)
from openrisk.core.logging import configure_logging
from openrisk.core.metrics import (
    instrument_engine,
    preinitialise_series,
    record_pool_gauges,
    render_latest,
    worker_metrics,
)
from openrisk.core.middleware import RequestContextMiddleware
from openrisk.core.openapi import install_openapi
from openrisk.core.outbox import SWEEP_BATCH, sweep_invalidations
from openrisk.core.pagination import CursorCodec
from openrisk.core.queue_metrics import refresh_queue_gauges
from openrisk.core.ratelimit import RateLimitMiddleware, RateLimits
from openrisk.core.routing import API_PREFIX, MethodNotAllowedMiddleware
from openrisk.core.security import TokenCodec
from openrisk.core.uow import UnitOfWork
from openrisk.custom_fields.router import router as custom_fields_router
from openrisk.dashboard.router import router as dashboard_router
from openrisk.marketplace.router import router as marketplace_router
from openrisk.marketplace.wiring import install_marketplace
from openrisk.methodology.acceptance_router import ROUTERS as acceptance_routers
from openrisk.methodology.router import router as risk_model_router
from openrisk.mitigations.router import ROUTERS as mitigation_routers
from openrisk.quantification.router import ROUTERS as quantification_routers
from openrisk.rbac.authz_cache import AuthzCache
from openrisk.rbac.router import router as rbac_router
from openrisk.reports.router import router as reports_router
from openrisk.risks.router import router as risks_router
from openrisk.saved_views.router import router as saved_views_router
from openrisk.system.router import router as system_router
from openrisk.tenants.members_router import router as members_router
from openrisk.tenants.router import router as tenants_router
from openrisk.tokens.router import router as tokens_router
from openrisk.web import install_web
from openrisk.web.docs import install_api_docs

log = logging.getLogger(__name__)

# Most requested first: FastAPI tries routes in order, and on a cached answer that scan cost a
# third of the CPU for the dashboard when it came last (docs/performance.md, "Profiling notes").
# No two routers answer the same path and method, so the order changes nothing else.
API_ROUTERS: tuple[APIRouter, ...] = (
    system_router,
    dashboard_router,
    risks_router,
    *mitigation_routers,
    *quantification_routers,
    assets_router,
    auth_router,
    tenants_router,
    members_router,
    rbac_router,
    tokens_router,
    audit_router,
    marketplace_router,
    reports_router,
    custom_fields_router,
    saved_views_router,
    risk_model_router,
    *acceptance_routers,
)


def iter_api_routes() -> Iterator[APIRoute]:
    """Every JSON API route (route-table driven tests use this: isolation, permission matrix)."""
    for router in API_ROUTERS:
        for route in router.routes:
            if isinstance(route, APIRoute):
                yield route


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    configure_logging(level=settings.log_level, json=settings.log_json)
    preinitialise_series()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        database = create_database(settings)
        instrument_engine(database.engine.sync_engine)
        app.state.db = database
        try:
            if settings.check_schema_on_start:
                await ensure_schema_current(database.engine)
            await warn_if_pool_exceeds_server(database, settings)
        except BaseException:
            await database.dispose()
            raise
        await check_database(database)
        health = asyncio.create_task(run_health_loop(database, settings.pool_health_interval_s))
        # The relay, the sweeper and jobs connect on their own (no pool): they never take a
        # request's connection, and their statements are not the requests' (query counts stay
        # exact). With PostgreSQL this process only enqueues unless OPENRISK_JOBS_IN_PROCESS.
        background = create_database(settings, pooled=False)
        app.state.background_db = background
        jobs = JobEngine(
            settings,
            JobRuntime(
                settings=settings,
                database=background,
                uow_factory=lambda session: UnitOfWork.for_app(app.state, session),
                state=app.state,
            ),
        )
        app.state.jobs = jobs
        app.state.outbox_relay = jobs.relay
        await jobs.start(
            run_jobs=settings.runs_jobs_in_process,
            also=lambda: sweep_invalidations(background, app.state.cache_invalidator),
        )

        async def apply_left_over_invalidations() -> None:
            """After an outage of the shared cache, nothing cached is served by this process
            until every invalidation left in the outbox (by any process) is applied."""
            invalidator, none_left = app.state.cache_invalidator, False
            while not none_left:
                applied = await sweep_invalidations(
                    background, invalidator, older_than=timedelta(0)
                )
                none_left = applied < SWEEP_BATCH

        app.state.cache.on_recovery = apply_left_over_invalidations
        if settings.freeze_heap_on_start:
            freeze_heap()
        try:
            async with worker_metrics(database.stats):
                yield
        finally:
            health.cancel()
            await jobs.stop()
            with contextlib.suppress(asyncio.CancelledError):
                await health
            await background.dispose()
            await database.dispose()
            await app.state.cache.close()

    app = FastAPI(
        title="OpenRisk",
        version=__version__,
        description="Multi-tenant risk register API.",
        lifespan=lifespan,
        openapi_url="/openapi.json",
        docs_url=None,  # served from the package by install_api_docs, not from a CDN
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.rate_limits = RateLimits(settings)
    caches = build_app_caches(settings)
    app.state.cache = caches.shared
    app.state.response_cache = caches.responses
    # Authorization answers may be reused only where every worker sees every change: not from
    # process memory when several workers each have their own (then: the database each time).
    authz_coherent = caches.coherent and not memory_per_worker(settings)
    app.state.authz = AuthzCache(caches.shared if authz_coherent else None)
    app.state.hot_path = HotPath(
        caches.responses,
        authz_generation_key=app.state.authz.generation_key,
        enabled=settings.cache_hot_path and authz_coherent,
    )
    # the unit of work's bumps (core/uow.py); leftovers are applied by the outbox sweeper
    app.state.cache_invalidator = CacheInvalidator(
        caches.responses,
        authz=lambda: app.state.authz.bump(strict=True),
    )
    app.state.cursors = CursorCodec(settings.secret_key)  # signs the lists' page cursors
    app.state.codec = TokenCodec(
        secret=settings.jwt_secret,
        algorithm=settings.jwt_algorithm,
        access_ttl=timedelta(minutes=settings.access_token_minutes),
    )
    install_marketplace(app, settings)
    install_error_handlers(app)
    for router in API_ROUTERS:
        app.include_router(router)
    install_web(app)
    install_api_docs(app)
    install_openapi(app, iter_api_routes)

    @app.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        database = getattr(app.state, "db", None)
        if database is not None:  # this worker's pool as of now; others refresh their own
            record_pool_gauges(database.stats())
        background = getattr(app.state, "background_db", None)
        if background is not None:  # the outbox and the job queue, as the database has them
            with contextlib.suppress(Exception):
                await refresh_queue_gauges(background)
        body, content_type = render_latest()
        return Response(body, media_type=content_type)

    app.add_middleware(HotPathMiddleware, hot_path=app.state.hot_path)  # inside the next ones
    app.add_middleware(
        MethodNotAllowedMiddleware, routes=list(iter_api_routes()), prefix=API_PREFIX
    )
    per_token, per_ip = settings.api_rate_limits
    if per_token or per_ip:  # before the hot path: a cached answer is still a request
        app.add_middleware(
            RateLimitMiddleware,
            limits=app.state.rate_limits,
            per_token=per_token,
            per_ip=per_ip,
        )
    app.add_middleware(
        RequestContextMiddleware,
        max_body_bytes=settings.max_body_bytes,
        larger={"/api/v1/risks/import": settings.max_import_bytes},
    )
    return app
