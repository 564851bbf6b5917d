from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class Health(BaseModel):
    status: str
    version: str


class Readiness(BaseModel):
    status: str
    checks: dict[str, str]


class PoolStatsOut(BaseModel):
    max_open: int
    max_idle: int
    size: int
    in_use: int
    idle: int
    overflow: int
    waits: int
    timeouts: int
    lifetime_s: int
    max_idle_time_s: int
    healthy: bool


class CacheInvalidate(BaseModel):
    pattern: str = Field(
        min_length=1,
        max_length=200,
        pattern=r"^openrisk:",
        description="glob over cache keys, e.g. openrisk:t:{<tenant>}:* (must start openrisk:)",
    )


class CacheInvalidated(BaseModel):
    pattern: str
    deleted: int


class CacheStatsOut(BaseModel):
    stats: dict[str, Any]
