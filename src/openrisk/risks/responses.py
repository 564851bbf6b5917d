"""OpenAPI declarations of the problem+json error answers (RFC 9457) the register returns."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from openrisk.core.errors import PROBLEM_JSON
from openrisk.core.openapi import Problem


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
