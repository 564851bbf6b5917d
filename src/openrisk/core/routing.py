"""Routers of the JSON API, and the answer to a method a path does not have (405 + Allow).

Each router carries the full ``/api/v1/...`` prefix itself (instead of being nested under a
prefixed parent) so that ``scope["route"].path`` is the full route template that metrics use.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

from fastapi import APIRouter
from fastapi.routing import APIRoute
from starlette.types import ASGIApp, Receive, Scope, Send

from openrisk.core.errors import problem_response
from openrisk.core.inputs import ValidatedRoute

API_PREFIX = "/api/v1"
_UUID = "[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}"
_PARAM = re.compile(r"{(\w+)(?::\w+)?}")


def api_router(prefix: str = "", *, tags: list[str], answers: Iterable[int] = ()) -> APIRouter:
    """A router of the API; ``answers``: error statuses every route of it may give besides the
    ones its dependencies imply (documented as problems in the OpenAPI document)."""
    router = APIRouter(prefix=f"{API_PREFIX}{prefix}", tags=list(tags), route_class=ValidatedRoute)
    router.responses = {code: {"description": HTTPStatus(code).phrase} for code in answers}
    return router


def _uuid_params(route: APIRoute) -> set[str]:
    """Path parameters of ``route`` that are UUIDs (in its own or its dependencies' signature)."""
    names: set[str] = set()
    stack = [route.dependant]
    while stack:
        node = stack.pop()
        stack.extend(node.dependencies)
        for field in node.path_params:
            annotation: Any = field.field_info.annotation
            if annotation is uuid.UUID:
                names.add(field.alias)
    return names


def _regex(path: str, uuids: set[str]) -> re.Pattern[str]:
    parts, last = [], 0
    for found in _PARAM.finditer(path):
        parts.append(re.escape(path[last : found.start()]))
        name = found.group(1)
        parts.append(f"(?:{_UUID})" if name in uuids else "[^/]+")
        last = found.end()
    parts.append(re.escape(path[last:]))
    return re.compile("^" + "".join(parts) + "$")


@dataclass(frozen=True)
class _Template:
    strict: re.Pattern[str]  # UUID parameters only match UUIDs
    loose: re.Pattern[str]
    methods: frozenset[str]


_SEEN_PATHS = 4096


class MethodNotAllowedMiddleware:
    """405 with the ``Allow`` header listing every method of the path, across all its routes.

    The router alone answers a path like ``/risks/bulk`` with the first route that matches it,
    ``/risks/{risk_id}``, so ``GET /risks/bulk`` became a 422 about ``risk_id`` and ``Allow``
    named the methods of one route only. Here a path is first matched against the templates with
    their UUID parameters taken as UUIDs (``/risks/bulk`` is then only the bulk route); when none
    match, against any value (``/risks/not-a-uuid`` stays the risk route and its 422).
    """

    def __init__(self, app: ASGIApp, *, routes: Iterable[APIRoute], prefix: str) -> None:
        self.app = app
        self.prefix = prefix
        grouped: dict[str, tuple[set[str], set[str]]] = {}
        for route in routes:
            methods, uuids = grouped.setdefault(route.path, (set(), set()))
            methods.update(route.methods or ())
            uuids.update(_uuid_params(route))
        self.templates = [
            _Template(_regex(path, uuids), _regex(path, set()), frozenset(methods))
            for path, (methods, uuids) in grouped.items()
        ]
        self._seen: dict[str, frozenset[str] | None] = {}

    def allowed(self, path: str) -> frozenset[str] | None:
        """The methods ``path`` has, or None when no API route has it (remembered for the
        last paths asked: matching every template cost more than routing the request)."""
        try:
            return self._seen[path]
        except KeyError:
            pass
        methods = self._allowed(path)
        if len(self._seen) >= _SEEN_PATHS:
            self._seen.clear()
        self._seen[path] = methods
        return methods

    def _allowed(self, path: str) -> frozenset[str] | None:
        for attribute in ("strict", "loose"):
            found = [t.methods for t in self.templates if getattr(t, attribute).match(path)]
            if found:
                return frozenset().union(*found)
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith(self.prefix):
            allowed = self.allowed(scope["path"])
            if allowed is not None and scope["method"] not in allowed:
                response = problem_response(
                    405,
                    f"{scope['method']} is not a method of this address.",
                    headers={"Allow": ", ".join(sorted(allowed))},
                )
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)
