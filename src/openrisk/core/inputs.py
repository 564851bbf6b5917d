"""What the API accepts, for every route at once: text, JSON bodies, free-form JSON and instants.

The rules live here so that no route can forget one:

* text (JSON strings and keys, form fields, query and path values) holds no NUL character and no
  lone UTF-16 surrogate: PostgreSQL cannot store the first, UTF-8 cannot encode the second;
* a JSON body is nested at most ``MAX_JSON_DEPTH`` levels, its strings are at most
  ``MAX_JSON_STRING`` characters, its numbers are finite and within ``MAX_JSON_INTEGER``;
* a query value or form field is at most ``MAX_URL_VALUE`` characters, a path value
  ``MAX_PATH_VALUE``;
* free-form JSON a schema keeps as-is (``FreeJson``: tenant settings, connector configuration,
  custom field values) is nested at most ``FREE_JSON_MAX_DEPTH`` levels and at most
  ``FREE_JSON_MAX_BYTES`` long once serialised;
* an instant (``Instant``) carries a UTC offset and is representable in UTC.

``ValidatedRoute`` applies the first three to every API route before its dependencies run.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Coroutine, Iterator
from datetime import UTC, datetime
from typing import Annotated, Any

import orjson
from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from pydantic import AfterValidator, AwareDatetime, BeforeValidator
from starlette.datastructures import UploadFile
from starlette.responses import Response

MAX_JSON_DEPTH = 32
MAX_JSON_STRING = 100_000
MAX_JSON_INTEGER = 2**53 - 1
MAX_URL_VALUE = 2_048  # a query value, or a form field that is not a file
MAX_PATH_VALUE = 256
FREE_JSON_MAX_DEPTH = 8
FREE_JSON_MAX_BYTES = 64 * 1024

_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def text_problem(value: str, *, max_length: int | None = None) -> str | None:
    """Why ``value`` cannot be accepted as text, or None."""
    found = _UNSTORABLE.search(value)
    if found:
        if found.group() == "\x00":
            return "must not contain NUL characters"
        return "must not contain lone surrogates (invalid Unicode)"
    if max_length is not None and len(value) > max_length:
        return f"must be at most {max_length} characters long"
    return None


class InputRefused(RequestValidationError):
    """Text or JSON that no route accepts (pages show it as a bad request, the API as 422)."""


def _reject(location: str, path: tuple[str | int, ...], message: str, kind: str) -> None:
    raise InputRefused([{"loc": (location, *path), "msg": message, "type": kind, "input": None}])


def _walk(value: Any) -> Iterator[tuple[tuple[str | int, ...], Any, int]]:
    """Every node of a parsed JSON document with its path and depth (iteratively)."""
    stack: list[tuple[tuple[str | int, ...], Any, int]] = [((), value, 0)]
    while stack:
        path, node, depth = stack.pop()
        yield path, node, depth
        if isinstance(node, dict):
            stack.extend(((*path, key), item, depth + 1) for key, item in node.items())
        elif isinstance(node, list):
            stack.extend(((*path, i), item, depth + 1) for i, item in enumerate(node))


def json_problem(value: Any) -> tuple[tuple[str | int, ...], str] | None:
    """(path, message) of the first part of a parsed JSON body the API refuses, or None."""
    for path, node, depth in _walk(value):
        if depth > MAX_JSON_DEPTH:
            # the field, and where the nesting starts, without echoing all of it
            return path[:4], f"must not be nested deeper than {MAX_JSON_DEPTH} levels"
        if isinstance(node, dict):
            for key in node:
                problem = text_problem(key, max_length=MAX_JSON_STRING)
                if problem:  # the key itself is never echoed back
                    return path, f"a key {problem}"
        elif isinstance(node, str):
            problem = text_problem(node, max_length=MAX_JSON_STRING)
            if problem:
                return path, problem
        elif isinstance(node, bool):
            continue
        elif isinstance(node, int) and abs(node) > MAX_JSON_INTEGER:
            return path, f"must be between -{MAX_JSON_INTEGER} and {MAX_JSON_INTEGER}"
    return None


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def parse_json_body(raw: bytes) -> Any:
    """The parsed body, or a 422 naming ``body`` that says why it is not JSON the API reads."""
    try:
        return json.loads(raw, parse_constant=_no_constants)
    except json.JSONDecodeError as error:
        reason = f"{error.msg} (line {error.lineno}, column {error.colno})"
    except RecursionError:
        reason = "nested too deeply"
    except (ValueError, UnicodeDecodeError) as error:
        reason = str(error).split("\n")[0][:200]
    raise InputRefused(
        [
            {
                "loc": ("body",),
                "msg": f"The request body is not valid JSON: {reason}",
                "type": "json_invalid",
                "input": None,
            }
        ]
    )


def _is_json(request: Request) -> bool:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    return content_type == "application/json" or content_type.endswith("+json")


def _is_form(request: Request) -> bool:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    return content_type in ("application/x-www-form-urlencoded", "multipart/form-data")


async def check_request(request: Request, *, has_body: bool) -> None:
    """422 naming the field for text or JSON that no route accepts."""
    for name, value in request.path_params.items():
        problem = text_problem(str(value), max_length=MAX_PATH_VALUE)
        if problem:
            _reject("path", (name,), problem, "value_error")
    for name, value in request.query_params.multi_items():
        problem = text_problem(name) or text_problem(value, max_length=MAX_URL_VALUE)
        if problem:
            field = name if not text_problem(name) else "query"
            _reject("query", (field,), problem, "value_error")
    if not has_body:
        return
    if _is_json(request):
        raw = await request.body()
        if not raw:
            return
        parsed = parse_json_body(raw)
        found = json_problem(parsed)
        if found:
            _reject("body", found[0], found[1], "value_error")
        request._json = parsed  # FastAPI reads this instead of parsing the body again
    elif _is_form(request):
        form = await request.form()
        for name, item in form.multi_items():
            text = item.filename or "" if isinstance(item, UploadFile) else item
            problem = text_problem(name) or text_problem(text, max_length=MAX_URL_VALUE)
            if problem:
                field = name if not text_problem(name) else "form"
                _reject("body", (field,), problem, "value_error")


class ValidatedRoute(APIRoute):
    """An API route that refuses unstorable text and unreadable JSON before anything else runs."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        has_body = self.body_field is not None

        async def checked_handler(request: Request) -> Response:
            await check_request(request, has_body=has_body)
            return await handler(request)

        return checked_handler


def _json_depth(value: Any) -> int:
    return max((depth for _, _, depth in _walk(value)), default=0)


def _bounded_json(value: Any) -> Any:
    if _json_depth(value) > FREE_JSON_MAX_DEPTH:
        raise ValueError(f"must not be nested deeper than {FREE_JSON_MAX_DEPTH} levels")
    try:
        size = len(orjson.dumps(value))
    except (TypeError, orjson.JSONEncodeError) as error:
        raise ValueError("must be plain JSON") from error
    if size > FREE_JSON_MAX_BYTES:
        raise ValueError(f"must be at most {FREE_JSON_MAX_BYTES} bytes as JSON (is {size})")
    return value


FreeJson = AfterValidator(_bounded_json)
"""Bounds a free-form JSON value: ``Annotated[dict[str, Any], FreeJson]``."""


def _representable(value: datetime) -> datetime:
    try:
        return value.astimezone(UTC)
    except OverflowError as error:
        raise ValueError("is outside the range of representable instants") from error


def _iso_text(value: Any) -> Any:
    if isinstance(value, str) and "-" not in value[:10]:  # not a number of seconds either
        raise ValueError("must be an ISO 8601 date-time with an offset, e.g. 2026-01-01T00:00:00Z")
    return value


Instant = Annotated[AwareDatetime, BeforeValidator(_iso_text), AfterValidator(_representable)]
"""A date-time with a UTC offset (``2026-01-01T00:00:00Z``), normalised to UTC."""
