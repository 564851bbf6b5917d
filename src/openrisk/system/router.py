from __future__ import annotations

import asyncio

from fastapi import Request
from fastapi.responses import JSONResponse

from openrisk import __version__
from openrisk.auth.deps import SuperuserDep
from openrisk.core.cache import Cache, CacheError, ResponseCache
from openrisk.core.cache.hot_path import HotPath
from openrisk.core.deps import DatabaseDep
from openrisk.core.errors import ServiceUnavailable
from openrisk.core.routing import api_router
from openrisk.system.schemas import (
    CacheInvalidate,
    CacheInvalidated,
    CacheStatsOut,
    Health,
    PoolStatsOut,
    Readiness,
)

router = api_router(tags=["system"])

READY_CHECK_TIMEOUT_S = 2.0


@router.get("/health")
async def health() -> Health:
    """Liveness: the process answers."""
    return Health(status="ok", version=__version__)


@router.get("/health/ready", responses={503: {"model": Readiness}})
async def ready(request: Request, database: DatabaseDep) -> JSONResponse:
    """Readiness: 503 naming the database when it is down; a cache outage is only "degraded"."""
    checks: dict[str, str] = {}
    try:
        await asyncio.wait_for(database.ping(), READY_CHECK_TIMEOUT_S)
        checks["database"] = "ok"
    except Exception as error:  # any failure to reach the database means not ready
        checks["database"] = f"down: {type(error).__name__}"
    cache = getattr(request.app.state, "cache", None)
    if cache is not None:
        try:
            checks["cache"] = "ok" if await asyncio.wait_for(cache.ping(), 1.0) else "degraded"
        except Exception as error:
            checks["cache"] = f"degraded: {type(error).__name__}"
    ok = checks["database"] == "ok"
    status = (
        "ok" if ok and all(v == "ok" for v in checks.values()) else ("degraded" if ok else "down")
    )
    return JSONResponse(
        Readiness(status=status, checks=checks).model_dump(), status_code=200 if ok else 503
    )


@router.get("/system/pool")
async def pool(_: SuperuserDep, database: DatabaseDep) -> PoolStatsOut:
    """Live statistics of this process's database pool (platform operators only)."""
    return PoolStatsOut(**database.stats().as_dict(), healthy=database.healthy)


@router.get("/system/cache")
async def cache_stats(_: SuperuserDep, request: Request) -> CacheStatsOut:
    """Backend, hit/miss counts of this process and the backend's key count (operators only)."""
    responses: ResponseCache = request.app.state.response_cache
    hot_path: HotPath = request.app.state.hot_path
    return CacheStatsOut(stats={**await responses.stats(), "hot_path": hot_path.stats()})


@router.post("/system/cache/invalidate")
async def cache_invalidate(
    body: CacheInvalidate, _: SuperuserDep, request: Request
) -> CacheInvalidated:
    """Delete the keys matching a glob: an operator's tool (it scans), not a hot-path one."""
    cache: Cache = request.app.state.cache
    try:
        deleted = await cache.invalidate_pattern(body.pattern)
    except CacheError as error:
        raise ServiceUnavailable("The cache backend is unavailable.") from error
    return CacheInvalidated(pattern=body.pattern, deleted=deleted)
