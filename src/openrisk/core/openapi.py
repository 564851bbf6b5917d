"""The OpenAPI document states every answer a route can give, derived from what the route uses.

Nothing is declared per route by hand: each operation's error answers follow from its
dependency tree and parameters, with the problem+json schema (RFC 9457):

* a bearer-token dependency: 401; a permission check (``permission`` on the dependency): 403;
* a dependency may state more answers with ``answers(...)`` (tenant context: 403, 404);
* a path parameter: 404; an ``If-Match`` header: 412 and 428;
* every route: 422 (its parameters and the input rules of ``core.inputs``), 429 (rate limits);
* a body: 413 (size), 400 as well for forms (unreadable multipart), 409 on a write (uniqueness,
  state that changed meanwhile);
* the database (a session or the database dependency): 503.

Routes keep what they declare themselves (successes, files, a 503 with its own body).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from http import HTTPStatus
from typing import Any, TypeVar

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from fastapi.security.base import SecurityBase
from pydantic import BaseModel, ConfigDict

from openrisk.core.deps import get_database, get_session
from openrisk.core.errors import PROBLEM_JSON

F = TypeVar("F", bound=Callable[..., Any])
_ANSWERS = "__openapi_answers__"
_WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_DATABASE = (get_session, get_database)
PROBLEM_REF = "#/components/schemas/Problem"


class Problem(BaseModel):
    """An error (RFC 9457); validation errors list one entry per field in ``errors``."""

    model_config = ConfigDict(extra="allow")

    type: str = "about:blank"
    title: str
    status: int
    detail: str
    errors: list[dict[str, Any]] | None = None


def answers(*codes: int) -> Callable[[F], F]:
    """Mark a dependency: routes that use it may answer ``codes`` (documented as problems)."""

    def mark(call: F) -> F:
        setattr(call, _ANSWERS, frozenset(codes) | getattr(call, _ANSWERS, frozenset()))
        return call

    return mark


def problem_response(code: int) -> dict[str, Any]:
    return {
        "description": HTTPStatus(code).phrase,
        "content": {PROBLEM_JSON: {"schema": {"$ref": PROBLEM_REF}}},
    }


def _dependants(dependant: Dependant) -> Iterator[Dependant]:
    yield dependant
    for sub in dependant.dependencies:
        yield from _dependants(sub)


def error_codes(route: APIRoute, method: str) -> set[int]:
    """The error answers ``route`` can give to ``method``, from its dependencies and parameters."""
    codes = {422, 429}
    for node in _dependants(route.dependant):
        call = node.call
        if isinstance(call, SecurityBase):
            codes.add(401)
        if getattr(call, "permission", None):
            codes.update((401, 403))
        codes.update(getattr(call, _ANSWERS, ()))
        if call in _DATABASE:
            codes.add(503)
        if node.path_params:
            codes.add(404)
        if any(p.alias.lower() == "if-match" for p in node.header_params):
            codes.update((412, 428))
    if route.body_field is not None:
        codes.add(413)
        if _is_form(route):
            codes.add(400)
    if method in _WRITES and 503 in codes:
        codes.add(409)
    return codes


def _is_form(route: APIRoute) -> bool:
    from fastapi import params

    field = route.body_field
    return field is not None and isinstance(field.field_info, params.Form)


def document_errors(schema: dict[str, Any], routes: Iterable[APIRoute]) -> dict[str, Any]:
    """Add each operation's error answers to ``schema`` (an OpenAPI document), in place."""
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components.setdefault("Problem", Problem.model_json_schema())
    for route in routes:
        if not route.include_in_schema:
            continue
        operations = schema["paths"].get(route.path_format, {})
        for method in route.methods or ():
            operation = operations.get(method.lower())
            if operation is None:
                continue
            responses = operation.setdefault("responses", {})
            for code, response in list(responses.items()):
                content = response.get("content")
                if code[0] not in "45":
                    continue
                if not content:  # declared by a router (``answers``): a problem
                    responses[code] = problem_response(int(code))
                elif PROBLEM_JSON in content:  # a problem, in no other type
                    response["content"] = {PROBLEM_JSON: content[PROBLEM_JSON]}
            for code in sorted(error_codes(route, method)):
                current = responses.get(str(code))
                if current is None or code == 422 or "content" not in current:
                    responses[str(code)] = problem_response(code)
    components.pop("HTTPValidationError", None)
    components.pop("ValidationError", None)
    return schema


def install_openapi(app: FastAPI, routes: Callable[[], Iterable[APIRoute]]) -> None:
    """``app.openapi()`` returns the document with every route's error answers."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = document_errors(generate(), list(routes()))
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
