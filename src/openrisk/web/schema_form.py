"""HTML form fields generated from a connector's configuration JSON Schema, and back.

Supported property shapes (those of the shipped catalogue, and the usual ones): strings
(text, url, email, long text, secrets), integers and numbers, booleans, enums, arrays of enums
(checkboxes) and arrays of strings (one per line). Values are converted to the schema's types
when they parse; otherwise they are passed on as typed so that the service's JSON Schema
validation names the field.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from starlette.datastructures import FormData

from openrisk.marketplace.catalogue import secret_fields

PREFIX = "cfg."
LONG_TEXT = 4096


@dataclass
class SchemaField:
    name: str
    label: str
    description: str
    kind: str  # text, url, email, password, textarea, integer, number, checkbox, select,
    #            choices (array of enum), lines (array of strings)
    required: bool
    options: list[str] = field(default_factory=list)
    value: Any = None
    minimum: float | None = None
    maximum: float | None = None
    max_length: int | None = None
    secret_set: bool = False

    @property
    def input_name(self) -> str:
        return PREFIX + self.name

    @property
    def error_key(self) -> str:
        return f"configuration.{self.name}"


def _kind(prop: dict[str, Any], secret: bool) -> tuple[str, list[str]]:
    if secret:
        return "password", []
    if "enum" in prop:
        return "select", [str(o) for o in prop["enum"]]
    kind = prop.get("type")
    if kind == "boolean":
        return "checkbox", []
    if kind in ("integer", "number"):
        return str(kind), []
    if kind == "array":
        items = prop.get("items") or {}
        if isinstance(items, dict) and "enum" in items:
            return "choices", [str(o) for o in items["enum"]]
        return "lines", []
    if prop.get("format") == "uri":
        return "url", []
    if prop.get("format") == "email":
        return "email", []
    if int(prop.get("maxLength", 0) or 0) > LONG_TEXT:
        return "textarea", []
    return "text", []


def fields_for(
    schema: dict[str, Any],
    values: dict[str, Any] | None = None,
    *,
    stored_secrets: frozenset[str] = frozenset(),
) -> list[SchemaField]:
    """One field per top-level property; ``values`` (or the defaults) pre-fill them."""
    properties: dict[str, Any] = schema.get("properties") or {}
    required = set(schema.get("required") or [])
    secrets = secret_fields(schema)
    current = values or {}
    fields: list[SchemaField] = []
    for name, prop in properties.items():
        if not isinstance(prop, dict):
            continue
        secret = name in secrets
        kind, options = _kind(prop, secret)
        value = None if secret else current.get(name, prop.get("default"))
        fields.append(
            SchemaField(
                name=name,
                label=str(prop.get("title") or name.replace("_", " ").capitalize()),
                description=str(prop.get("description") or ""),
                kind=kind,
                required=name in required,
                options=options,
                value=value,
                minimum=prop.get("minimum"),
                maximum=prop.get("maximum"),
                max_length=prop.get("maxLength"),
                secret_set=secret and name in stored_secrets,
            )
        )
    return fields


def _number(raw: str, kind: str) -> int | float | str:
    try:
        return int(raw) if kind == "integer" else float(raw)
    except ValueError:
        return raw  # the schema validation reports it, naming the field


def parse(schema: dict[str, Any], form: FormData, *, patch: bool = False) -> dict[str, Any]:
    """The configuration a submitted form describes.

    Installing (``patch=False``): empty inputs are left out, so the schema's ``required`` rule
    speaks. Configuring (``patch=True``, a JSON merge patch): an empty input removes the
    setting, except a secret, whose stored value is kept unless a new one is typed.
    """
    configuration: dict[str, Any] = {}
    for spec in fields_for(schema):
        key = spec.input_name
        if spec.kind == "checkbox":
            configuration[spec.name] = form.get(key) == "on"
            continue
        if spec.kind == "choices":
            configuration[spec.name] = [v for v in form.getlist(key) if isinstance(v, str)]
            continue
        raw = form.get(key)
        text = raw.strip() if isinstance(raw, str) else ""
        if spec.kind == "lines":
            items = [line.strip() for line in text.splitlines() if line.strip()]
            if items:
                configuration[spec.name] = items
            elif patch:
                configuration[spec.name] = None
        elif not text:
            if patch and spec.kind != "password":
                configuration[spec.name] = None
        elif spec.kind in ("integer", "number"):
            configuration[spec.name] = _number(text, spec.kind)
        else:
            configuration[spec.name] = raw if spec.kind == "textarea" else text
    return configuration
