"""Domain errors and RFC 9457 problem+json rendering for every error the API returns."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from http import HTTPStatus
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from sqlalchemy import exc as sa_exc
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from openrisk.core.db.timeouts import StatementTimedOut

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"


class AppError(Exception):
    """Base of the errors services raise; routers never build error responses by hand."""

    status = 500
    title = "Internal Server Error"

    def __init__(
        self,
        detail: str = "",
        *,
        errors: Sequence[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail or self.title)
        self.detail = detail or self.title
        self.errors = list(errors) if errors else None
        self.headers = headers or {}


class BadRequest(AppError):
    status, title = 400, "Bad Request"


class Unauthorized(AppError):
    status, title = 401, "Unauthorized"

    def __init__(self, detail: str = "Not authenticated", **kwargs: Any) -> None:
        super().__init__(detail, **kwargs)
        self.headers.setdefault("WWW-Authenticate", "Bearer")


class Forbidden(AppError):
    status, title = 403, "Forbidden"


class NotFound(AppError):
    status, title = 404, "Not Found"


class Conflict(AppError):
    status, title = 409, "Conflict"


class PreconditionFailed(AppError):
    status, title = 412, "Precondition Failed"


class PayloadTooLarge(AppError):
    status, title = 413, "Payload Too Large"


class ValidationFailed(AppError):
    status, title = 422, "Unprocessable Content"

    @classmethod
    def field(cls, field: str, message: str) -> ValidationFailed:
        return cls(
            f"{field}: {message}",
            errors=[{"field": field, "message": message, "type": "value_error"}],
        )


class TooManyRequests(AppError):
    status, title = 429, "Too Many Requests"


class ServiceUnavailable(AppError):
    status, title = 503, "Service Unavailable"


def problem_response(
    status: int,
    detail: str,
    *,
    title: str | None = None,
    errors: Sequence[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": title or HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
    }
    if errors:
        body["errors"] = list(errors)
    try:
        content = orjson.dumps(body)
    except TypeError:  # text orjson refuses (a lone surrogate): escaped by the standard library
        content = json.dumps(body, ensure_ascii=True, default=str).encode()
    return Response(content, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def _field_name(loc: Sequence[Any]) -> str:
    parts = [str(p) for p in loc]
    if parts and parts[0] in {"body", "query", "path", "header", "cookie"} and len(parts) > 1:
        parts = parts[1:]
    return ".".join(parts)


def validation_errors(raw: Sequence[Any]) -> list[dict[str, Any]]:
    return [
        {
            "field": _field_name(err.get("loc", ())),
            "location": str(err.get("loc", ("body",))[0]),
            "message": err.get("msg", "invalid"),
            "type": err.get("type", "value_error"),
        }
        for err in raw
    ]


async def _app_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, AppError)
    return problem_response(
        error.status, error.detail, title=error.title, errors=error.errors, headers=error.headers
    )


async def _http_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, StarletteHTTPException)
    detail = error.detail if isinstance(error.detail, str) else HTTPStatus(error.status_code).phrase
    return problem_response(error.status_code, detail, headers=dict(error.headers or {}))


async def _validation_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, RequestValidationError)
    errors = validation_errors(error.errors())
    unreadable = next((e for e in errors if e["type"] == "json_invalid"), None)
    if unreadable is not None:  # the body as a whole: say so rather than name a position
        unreadable["field"] = "body"
        message = str(unreadable["message"])
        if "JSON" not in message:
            message = f"The request body is not valid JSON: {message}"
            unreadable["message"] = message
        return problem_response(422, message, errors=[unreadable])
    fields = ", ".join(sorted({e["field"] for e in errors})) or "request"
    return problem_response(422, f"Invalid value for: {fields}", errors=errors)


async def _pool_timeout(request: Request, error: Exception) -> Response:
    log.warning("database pool exhausted: %s", error)
    return problem_response(
        503,
        "The database is busy: no connection became free in time. Retry shortly.",
        headers={"Retry-After": "1"},
    )


async def _statement_timed_out(request: Request, error: Exception) -> Response:
    log.error("database statement timed out: %s", type(error.__cause__ or error).__name__)
    return problem_response(
        503, "The database did not answer in time. Retry shortly.", headers={"Retry-After": "2"}
    )


async def _database_unreachable(request: Request, error: Exception) -> Response:
    log.error("database error: %s", error)
    return problem_response(
        503, "The database is unavailable. Retry shortly.", headers={"Retry-After": "5"}
    )


async def _unexpected(request: Request, error: Exception) -> Response:
    log.exception("unhandled error", exc_info=error)
    return problem_response(500, "An unexpected error occurred.")


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(AppError, _app_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(sa_exc.TimeoutError, _pool_timeout)
    app.add_exception_handler(sa_exc.InterfaceError, _database_unreachable)
    app.add_exception_handler(sa_exc.OperationalError, _database_unreachable)
    app.add_exception_handler(StatementTimedOut, _statement_timed_out)
    app.add_exception_handler(OSError, _database_unreachable)
    app.add_exception_handler(Exception, _unexpected)
