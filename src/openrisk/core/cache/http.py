"""Response caching for GET routes: stored bytes, ``X-Cache``, strong ``ETag``, 304.

A route hands over the parameters that shape its answer and a function that computes the
serialised body; a hit returns the stored bytes without touching the database, the ORM or
the response models. The same request again is then answered by the hot path
(`core.cache.hot_path`) before routing, as long as the caller's authorization holds.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence

from fastapi import Request
from pydantic import BaseModel
from starlette.responses import Response

from openrisk.core.cache.hot_path import REFRESH_KEY, HotPath
from openrisk.core.cache.keys import params_digest
from openrisk.core.cache.response import Lookup, ResponseCache
from openrisk.core.context import RequestContext

JSON = "application/json"


def dump(model: BaseModel) -> bytes:
    return model.__pydantic_serializer__.to_json(model)


def reader_variant(context: RequestContext, code: str) -> str:
    """Readers holding ``code`` on every row share answers; "own"-scoped readers never do."""
    return "all" if context.has_any_scope(code) else f"own-{context.user_id}"


async def cached_json(
    request: Request,
    *,
    tenant_id: uuid.UUID | None,
    namespace: str,
    depends_on: Sequence[str],
    compute: Callable[[], Awaitable[bytes]],
    params: Mapping[str, object] | None = None,
    variant: str = "all",
) -> Response:
    cache: ResponseCache = request.app.state.response_cache
    lookup = Lookup.build(
        tenant_id=str(tenant_id) if tenant_id else None,
        namespace=namespace,
        key_parts=(variant, params_digest(params or {}, {})),
        depends_on=depends_on,
    )
    answer = await cache.answer(lookup, compute, refresh=REFRESH_KEY in request.scope)
    if answer.status != "BYPASS":
        hot_path: HotPath = request.app.state.hot_path
        hot_path.remember(request.scope, lookup)
    if answer.not_modified(request.headers.get("if-none-match")):
        return Response(status_code=304, headers=answer.headers)
    return Response(answer.body, media_type=JSON, headers=answer.headers)
