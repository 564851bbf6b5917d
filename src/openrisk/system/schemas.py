from __future__ import annotations

from pydantic import BaseModel


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
