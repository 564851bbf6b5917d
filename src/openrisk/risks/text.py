"""Text that the databases can store: PostgreSQL refuses NUL characters in text and JSONB."""

from __future__ import annotations

from pydantic import AfterValidator

from openrisk.core.errors import ValidationFailed


def _no_nul(value: str) -> str:
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


NoNul = AfterValidator(_no_nul)


def reject_nul(field: str, *values: str | None) -> None:
    """422 naming ``field`` when a query value holds a NUL character."""
    for value in values:
        if value is not None and "\x00" in value:
            raise ValidationFailed.field(field, "must not contain NUL characters")
