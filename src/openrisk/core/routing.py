"""Routers of the JSON API.

Each router carries the full ``/api/v1/...`` prefix itself (instead of being nested under a
prefixed parent) so that ``scope["route"].path`` is the full route template that metrics use.
"""

from __future__ import annotations

from fastapi import APIRouter

from openrisk.core.inputs import ValidatedRoute

API_PREFIX = "/api/v1"


def api_router(prefix: str = "", *, tags: list[str]) -> APIRouter:
    return APIRouter(prefix=f"{API_PREFIX}{prefix}", tags=list(tags), route_class=ValidatedRoute)
