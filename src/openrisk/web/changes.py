"""Before/after changes (risk history, audit events) as people read them: names instead of
ids, scores with two decimals like everywhere else on the pages, labels instead of codes."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

CODE_WORD = re.compile(r"\b[A-Z][A-Z_]{2,}\b")
UUID_TEXT = re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b", re.I)
SCORE_FIELDS = frozenset({"score", "prev_score", "mean_score", "priority"})
CODE_FIELDS = frozenset({"status", "severity", "treatment", "criticality", "source", "action"})
FIELD_LABELS = {
    "asset_ids": "Assets",
    "owner_id": "Owner",
    "assignee_id": "Assignee",
    "review_date": "Review date",
    "due_date": "Due date",
    "custom_fields": "Custom fields",
    "external_id": "External id",
    "effort_days": "Effort (days)",
}
HIDDEN_ON_CREATE = frozenset({"owner_id", "custom_fields"})


@dataclass(frozen=True)
class ChangeLine:
    field: str
    before: str | None  # None: a plain value, not a before → after pair
    after: str


def referenced_ids(changes_list: Iterable[Mapping[str, Any] | None]) -> set[uuid.UUID]:
    """Every id mentioned in the changes (values, lists, ids inside texts such as reasons)."""
    found: set[uuid.UUID] = set()

    def walk(value: Any) -> None:
        if isinstance(value, Mapping):
            for item in value.values():
                walk(item)
        elif isinstance(value, list | tuple):
            for item in value:
                walk(item)
        elif isinstance(value, str):
            found.update(uuid.UUID(m) for m in UUID_TEXT.findall(value))

    for changes in changes_list:
        walk(changes)
    return found


def _code(text: str) -> str:
    return (text.replace("_", " ").capitalize()) if text.isupper() else text


def readable(value: Any, field: str, names: Mapping[str, str]) -> str:
    """One value, readable: ``16.0`` → ``16.00`` for scores, ids → names, codes → labels."""
    if value is None or value == "" or value == [] or value == {}:
        return "—"
    if isinstance(value, list | tuple):
        return ", ".join(readable(v, field, names) for v in value)
    if isinstance(value, Mapping):
        return ", ".join(f"{k}: {readable(v, k, names)}" for k, v in value.items())
    if field in SCORE_FIELDS and isinstance(value, int | float | str):
        try:
            return f"{float(value):.2f}"
        except ValueError:
            return str(value)
    if isinstance(value, bool):
        return "yes" if value else "no"
    text = str(value)
    if field in CODE_FIELDS:
        return _code(text)
    text = UUID_TEXT.sub(lambda m: names.get(m.group(0).lower(), m.group(0)[:8] + "…"), text)
    if field == "reason":  # our own sentences, e.g. "asset … criticality LOW → CRITICAL"
        text = CODE_WORD.sub(lambda m: _code(m.group(0)), text)
    return text


def change_lines(
    changes: Mapping[str, Any] | None, names: Mapping[str, str], *, created: bool = False
) -> list[ChangeLine]:
    """The lines of one history row or audit event. ``created``: initial values only."""
    lines: list[ChangeLine] = []
    for field, change in (changes or {}).items():
        if created and field in HIDDEN_ON_CREATE:
            continue
        label = FIELD_LABELS.get(field, field.replace("_", " ").capitalize())
        if isinstance(change, Mapping) and "after" in change:
            after = readable(change.get("after"), field, names)
            before = None if created else readable(change.get("before"), field, names)
            lines.append(ChangeLine(label, before, after))
        else:
            lines.append(ChangeLine(label, None, readable(change, field, names)))
    return lines
