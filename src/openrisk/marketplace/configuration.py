"""App configuration: JSON Schema validation, write-only secrets, masking, merge patches.

- Secret (write-only) values are the top-level properties of the connector's schema marked
  ``"writeOnly": true`` (or ``"format": "password"``). They are split off before storage,
  encrypted, and never returned: responses show ``MASK`` ("********") in their place when a value
  is stored, and omit them otherwise.
- PATCH takes a JSON merge patch (RFC 7396) of the configuration: keys given replace the stored
  ones, ``null`` removes a key, and a secret sent back as ``MASK`` keeps the stored secret.
- Validation errors name the field as ``configuration.<path>`` and never echo a secret value.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from jsonschema import Draft202012Validator, FormatChecker
from jsonschema.exceptions import ValidationError as SchemaError

from openrisk.core.errors import ValidationFailed
from openrisk.marketplace.catalogue import secret_fields

MASK = "********"
_MAX_MESSAGE = 300


def merge_patch(target: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """RFC 7396 JSON merge patch of ``target`` by ``patch`` (a new dict)."""
    result = dict(target)
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        elif isinstance(value, dict) and isinstance(result.get(key), dict):
            result[key] = merge_patch(result[key], value)
        else:
            result[key] = value
    return result


def split_secrets(
    schema: dict[str, Any], configuration: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(public values, secret values)`` of a full configuration."""
    secrets = secret_fields(schema)
    public = {k: v for k, v in configuration.items() if k not in secrets}
    hidden = {k: v for k, v in configuration.items() if k in secrets}
    return public, hidden


def masked(
    schema: dict[str, Any], public: dict[str, Any], secret_names: Iterable[str]
) -> dict[str, Any]:
    """What clients see: public values, and MASK for each secret that is set."""
    shown = {k: v for k, v in public.items() if k not in secret_fields(schema)}
    shown.update(dict.fromkeys(sorted(secret_names), MASK))
    return shown


def unmask(
    schema: dict[str, Any], configuration: dict[str, Any], stored_secrets: dict[str, Any]
) -> dict[str, Any]:
    """Replace MASK placeholders of secret fields by the stored secret values."""
    result = dict(configuration)
    for name in secret_fields(schema):
        if result.get(name) == MASK:
            if name not in stored_secrets:
                raise ValidationFailed.field(
                    f"configuration.{name}", "no stored value to keep; send the secret itself"
                )
            result[name] = stored_secrets[name]
    return result


def _field(error: SchemaError) -> tuple[str, str | None]:
    """(dotted path of the offending field, its top-level key)."""
    path = [str(p) for p in error.absolute_path]
    required = error.validator_value
    if error.validator == "required" and isinstance(error.instance, dict):
        missing = (
            [p for p in required if p not in error.instance] if isinstance(required, list) else []
        )
        if missing:
            path.append(str(missing[0]))
    return ".".join(["configuration", *path]), (path[0] if path else None)


def validate(schema: dict[str, Any], configuration: dict[str, Any]) -> None:
    """Raise ValidationFailed (422) with one entry per invalid field of ``configuration``."""
    validator = Draft202012Validator(schema, format_checker=FormatChecker())
    secrets = secret_fields(schema)
    errors: list[dict[str, Any]] = []
    for error in sorted(
        validator.iter_errors(configuration), key=lambda e: [str(p) for p in e.path]
    ):
        field, top = _field(error)
        if error.validator == "required":
            message = "is required"
        elif error.validator == "additionalProperties":
            where = error.schema if isinstance(error.schema, dict) else {}
            known = set((where.get("properties") or {}).keys())
            extra = sorted(set(error.instance) - known) if isinstance(error.instance, dict) else []
            if extra:
                field = f"{field}.{extra[0]}"
            message = "is not a known setting of this connector"
        elif top in secrets:
            # never echo a secret: jsonschema messages quote the offending value
            message = f"is not valid ({error.validator})"
        else:
            message = error.message[:_MAX_MESSAGE]
        errors.append({"field": field, "message": message, "type": f"schema.{error.validator}"})
    if errors:
        fields = ", ".join(dict.fromkeys(e["field"] for e in errors))
        raise ValidationFailed(f"Invalid configuration: {fields}", errors=errors)
