"""Validation and coercion of custom field values (JSON bodies, CSV/XLSX cells, query filters)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Protocol

from openrisk.custom_fields.schemas import FieldType

MAX_TEXT = 1000
_TRUE = {"true", "yes", "y", "1", "on"}
_FALSE = {"false", "no", "n", "0", "off"}


class FieldDefinition(Protocol):
    @property
    def name(self) -> str: ...
    @property
    def type(self) -> str: ...
    @property
    def required(self) -> bool: ...
    @property
    def options(self) -> list[str]: ...


class InvalidValue(ValueError):
    """A value that does not fit its field; the message is user-facing."""


def coerce(definition: FieldDefinition, value: Any) -> str | int | float | bool:
    """The JSON value stored for ``value`` (strings are accepted for every type)."""
    kind = FieldType(definition.type)
    if kind is FieldType.text:
        if not isinstance(value, str | int | float) or isinstance(value, bool):
            raise InvalidValue("must be a string")
        text = str(value)
        if "\x00" in text:
            raise InvalidValue("must not contain NUL characters")
        if len(text) > MAX_TEXT:
            raise InvalidValue(f"must be at most {MAX_TEXT} characters")
        return text
    if kind is FieldType.number:
        return _number(value)
    if kind is FieldType.boolean:
        return _boolean(value)
    if kind is FieldType.date:
        return _date(value)
    if not isinstance(value, str) or value not in definition.options:
        raise InvalidValue("must be one of: " + ", ".join(definition.options))
    return value


def _number(value: Any) -> int | float:
    if isinstance(value, bool):
        raise InvalidValue("must be a number")
    if isinstance(value, int):
        number = Decimal(value)
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidValue("must be a finite number")
        number = Decimal(str(value))
    elif isinstance(value, str):
        try:
            number = Decimal(value.strip())
        except InvalidOperation:
            raise InvalidValue("must be a number") from None
        if not number.is_finite():
            raise InvalidValue("must be a finite number")
    else:
        raise InvalidValue("must be a number")
    if abs(number) > Decimal("1e15"):
        raise InvalidValue("must be between -1e15 and 1e15")
    if number == number.to_integral_value():
        return int(number)
    return float(number)


def _boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
    raise InvalidValue("must be true or false")


def _date(value: Any) -> str:
    if isinstance(value, datetime):
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, str):
        text = value.strip()
        try:
            return date.fromisoformat(text.split("T", 1)[0] if "T" in text else text).isoformat()
        except ValueError:
            pass
    raise InvalidValue("must be a date (YYYY-MM-DD)")


def validate_values(
    definitions: Sequence[FieldDefinition],
    values: Mapping[str, Any],
    *,
    current: Mapping[str, Any] | None = None,
    enforce_required: bool = True,
) -> tuple[dict[str, Any], list[dict[str, str]]]:
    """Merge ``values`` into ``current`` (None deletes a key) and validate the result.

    Returns (merged values, errors); each error names ``custom_fields.<name>``.
    """
    by_name = {d.name: d for d in definitions}
    merged: dict[str, Any] = {k: v for k, v in (current or {}).items() if k in by_name}
    errors: list[dict[str, str]] = []
    for key, value in values.items():
        definition = by_name.get(key)
        if definition is None:
            errors.append(_error(key, "is not a custom field of this tenant"))
            continue
        if value is None or (isinstance(value, str) and not value.strip()):
            merged.pop(key, None)
            continue
        try:
            merged[key] = coerce(definition, value)
        except InvalidValue as problem:
            errors.append(_error(key, str(problem)))
    if enforce_required:
        for definition in definitions:
            field = f"custom_fields.{definition.name}"
            if (
                definition.required
                and definition.name not in merged
                and not any(e["field"] == field for e in errors)
            ):
                errors.append(_error(definition.name, "is required"))
    return merged, errors


def _error(name: str, message: str) -> dict[str, str]:
    return {"field": f"custom_fields.{name}", "message": message, "type": "value_error"}
