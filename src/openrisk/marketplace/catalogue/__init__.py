"""The connector catalogue shipped with OpenRisk: one JSON file per connector in this folder.

Connectors are global (no tenant). At start-up the catalogue is upserted into the ``connectors``
table (see ``openrisk.marketplace.service.sync_catalogue``), so adding or evolving a connector is a
change to a JSON file here, not a migration. Secret properties of a ``config_schema`` are marked
``"writeOnly": true``; they must be top-level properties.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

CONNECTOR_STATUSES = ("active", "beta", "deprecated")


@dataclass(frozen=True)
class ConnectorSpec:
    id: str
    name: str
    version: str
    category: str
    status: str
    capabilities: tuple[str, ...]
    description: str
    config_schema: dict[str, Any]
    allow_multiple: bool = False
    documentation_url: str | None = None

    @property
    def secret_fields(self) -> frozenset[str]:
        return secret_fields(self.config_schema)


def secret_fields(schema: dict[str, Any]) -> frozenset[str]:
    """Top-level properties marked write-only (``writeOnly: true`` or ``format: password``)."""
    properties: dict[str, Any] = schema.get("properties") or {}
    return frozenset(
        name
        for name, prop in properties.items()
        if isinstance(prop, dict) and (prop.get("writeOnly") or prop.get("format") == "password")
    )


def _spec(raw: dict[str, Any]) -> ConnectorSpec:
    if raw["status"] not in CONNECTOR_STATUSES:
        raise ValueError(f"connector {raw['id']}: unknown status {raw['status']!r}")
    return ConnectorSpec(
        id=raw["id"],
        name=raw["name"],
        version=raw["version"],
        category=raw["category"],
        status=raw["status"],
        capabilities=tuple(raw.get("capabilities", ())),
        description=raw.get("description", ""),
        config_schema=raw["config_schema"],
        allow_multiple=bool(raw.get("allow_multiple", False)),
        documentation_url=raw.get("documentation_url"),
    )


@cache
def load_catalogue() -> tuple[ConnectorSpec, ...]:
    """Every connector of this folder, sorted by id."""
    folder = resources.files(__name__)
    specs = [
        _spec(json.loads(entry.read_text(encoding="utf-8")))
        for entry in folder.iterdir()
        if entry.name.endswith(".json")
    ]
    ids = [s.id for s in specs]
    if len(ids) != len(set(ids)):
        raise ValueError("duplicate connector ids in the catalogue")
    return tuple(sorted(specs, key=lambda s: s.id))
