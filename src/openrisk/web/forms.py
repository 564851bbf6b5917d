"""Form helpers: field errors for inline messages, and list inputs."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError
from starlette.datastructures import FormData

from openrisk.core.errors import AppError, ValidationFailed

FORM_ERROR = "__form__"  # errors that belong to no single field
_SEPARATORS = re.compile(r"[,\n]")


def _message(error: Mapping[str, Any]) -> str:
    kind = str(error.get("type", ""))
    ctx = error.get("ctx") or {}
    if kind == "missing" or (kind == "string_too_short" and ctx.get("min_length") == 1):
        return "This field is required."
    if kind in ("int_parsing", "int_type"):
        return "Enter a whole number."
    if kind in ("float_parsing", "decimal_parsing"):
        return "Enter a number."
    if kind == "enum":
        return "Choose one of the options."
    if kind in ("date_from_datetime_parsing", "date_parsing", "date_type"):
        return "Enter a date as YYYY-MM-DD."
    if kind == "uuid_parsing":
        return "Choose one of the options."
    if kind == "extra_forbidden":
        return "This field is not accepted here."
    if kind in ("greater_than_equal", "greater_than") and "ge" in ctx:
        return f"Enter {ctx['ge']} or more."
    if kind in ("less_than_equal", "less_than") and "le" in ctx:
        return f"Enter {ctx['le']} or less."
    if kind == "string_too_long" and "max_length" in ctx:
        return f"Use at most {ctx['max_length']} characters."
    return str(error.get("msg", "Invalid value.")).removeprefix("Value error, ")


def message_of(error: Mapping[str, Any]) -> str:
    """The message a form shows for one pydantic error."""
    return _message(error)


def _field(loc: Iterable[Any], nested: tuple[str, ...] = ("custom_fields", "configuration")) -> str:
    parts = [str(p) for p in loc]
    if not parts:
        return FORM_ERROR
    if parts[0] in nested and len(parts) > 1:
        return f"{parts[0]}.{parts[1]}"
    return parts[0]


def pydantic_errors(
    error: ValidationError, *, nested: tuple[str, ...] = ("custom_fields", "configuration")
) -> dict[str, str]:
    """``{field: message}``, first message per field (a list's items count for the list);
    ``nested`` objects name their fields ``object.field``."""
    found: dict[str, str] = {}
    for item in error.errors():
        found.setdefault(_field(item.get("loc", ()), nested), _message(item))
    return found


def service_errors(error: ValidationFailed) -> dict[str, str]:
    """``{field: message}`` of a service's 422 (``errors`` name the fields)."""
    found: dict[str, str] = {}
    for item in error.errors or []:
        name = str(item.get("field") or FORM_ERROR)
        found.setdefault(name, str(item.get("message", "Invalid value.")))
    if not found:
        found[FORM_ERROR] = error.detail
    return found


@dataclass
class Refused:
    """What a form's submission was refused for, by field (empty: it went through)."""

    errors: dict[str, str] = field(default_factory=dict)
    invalid_input: bool = False  # the fields did not validate (rather than the service refusing)

    def __bool__(self) -> bool:
        return bool(self.errors)


def first_message(error: ValidationError) -> str:
    """The first refusal's message, for a one-line form (a rating, a comment) whose page shows
    it as a flash message rather than beside a field."""
    return next(iter(pydantic_errors(error).values()))


@contextmanager
def refusals(
    *,
    nested: tuple[str, ...] = ("custom_fields", "configuration"),
    also: Mapping[type[AppError], str] | None = None,
) -> Iterator[Refused]:
    """``with forms.refusals() as refused:`` around a form's validation and service call: a
    Pydantic error or a service's 422 become field errors in ``refused.errors``; ``also``
    names the field (or ``FORM_ERROR``) under which other refusals are shown, e.g.
    ``{Conflict: "email"}``. Anything else propagates."""
    refused = Refused()
    extra = tuple(also or ())
    try:
        yield refused
    except ValidationError as error:
        refused.errors, refused.invalid_input = pydantic_errors(error, nested=nested), True
    except ValidationFailed as error:
        refused.errors = service_errors(error)
    except extra as error:
        name = next(name for kind, name in (also or {}).items() if isinstance(error, kind))
        refused.errors = {name: error.detail}


def text(form: FormData, name: str) -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


def optional(form: FormData, name: str) -> str | None:
    return text(form, name) or None


def strings(form: FormData, name: str) -> list[str]:
    return [v for v in form.getlist(name) if isinstance(v, str) and v]


def split_list(value: str) -> list[str]:
    """``"a, b\\nc"`` → ``["a", "b", "c"]``."""
    return [part.strip() for part in _SEPARATORS.split(value) if part.strip()]
