"""Declared cached reads over HTTP: stored bytes, ``X-Cache``, strong ``ETag``, 304.

A route marked as serving a declared read (``@serves(READ)``) answers with
``respond(request, READ, **inputs)``: a hit returns the stored bytes without touching the
database, the ORM or the response models, and the same request again is answered by the hot
path (`core.cache.hot_path`) before routing, as long as the caller's authorization holds.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from fastapi import Request
from pydantic import BaseModel
from starlette.responses import Response

from openrisk.core.cache.hot_path import HotPath
from openrisk.core.cache.reads import CachedRead
from openrisk.core.cache.response import ResponseCache

JSON = "application/json"
F = TypeVar("F", bound=Callable[..., Any])


def dump(model: BaseModel) -> bytes:
    return model.__pydantic_serializer__.to_json(model)


def serves(read: CachedRead[Any]) -> Callable[[F], F]:
    """Mark a route as answering ``read`` (put it under the ``@router.get``): the route-table
    test then checks the request's fingerprint covers everything the route takes."""

    def mark(endpoint: F) -> F:
        endpoint.cached_read = read  # type: ignore[attr-defined]
        return endpoint

    return mark


def served_read(endpoint: Any) -> CachedRead[Any] | None:
    found: CachedRead[Any] | None = getattr(endpoint, "cached_read", None)
    return found


async def respond(request: Request, read: CachedRead[Any], **inputs: Any) -> Response:
    route = request.scope.get("route")
    if route is None or served_read(getattr(route, "endpoint", None)) is not read:
        raise RuntimeError(f"the route answering {read.namespace!r} is not marked @serves(it)")
    cache: ResponseCache = request.app.state.response_cache
    bound = read.bind(**inputs)
    answer = await read.answer_bound(cache, bound)
    if answer.status != "BYPASS":
        hot_path: HotPath = request.app.state.hot_path
        hot_path.remember(request.scope, bound.place)
    if answer.not_modified(request.headers.get("if-none-match")):
        return Response(status_code=304, headers=answer.headers)
    return Response(answer.body, media_type=JSON, headers=answer.headers)
