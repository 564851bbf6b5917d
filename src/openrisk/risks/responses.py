"""OpenAPI declarations of the problem+json error answers (RFC 9457) the register returns."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from pydantic import BaseModel, ConfigDict

from openrisk.core.errors import PROBLEM_JSON


class Problem(BaseModel):
    """An error (RFC 9457); validation errors list one entry per field in ``errors``."""

    model_config = ConfigDict(extra="allow")

    type: str = "about:blank"
    title: str
    status: int
    detail: str
    errors: list[dict[str, Any]] | None = None


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for FastAPI routes: each code answered with a problem+json body."""
    return {
        code: {
            "model": Problem,
            "description": HTTPStatus(code).phrase,
            "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}},
        }
        for code in codes
    }


# Every tenant route: bad input, no credentials, no permission, unknown tenant, invalid values.
ERRORS = errors(400, 401, 403, 404, 422)
