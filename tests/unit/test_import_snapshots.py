"""An import diffs partial snapshots of the risks it updates (``commands.snapshot_before``)."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy.orm import configure_mappers

from openrisk.methodology import levels
from openrisk.risks import batch, commands
from openrisk.risks.scoring import DEFAULT_MODEL


def test_a_partial_snapshot_holds_every_snapshot_field_that_deriving_the_levels_sets() -> None:
    """A derived field that the whole snapshot holds but the partial one lacked would show as
    changed in the history and audit entry of every imported update."""
    configure_mappers()
    risk = batch.transient(
        {
            "impact": 3,
            "probability": 2,
            "inherent_impact": 4,
            "inherent_probability": 4,
            "target_impact": 1,
            "target_probability": 1,
            "review_date": None,
            "last_reviewed_on": None,
            "created_at": datetime(2026, 1, 1, tzinfo=UTC),
        }
    )
    derived = levels.derived(risk, DEFAULT_MODEL, ["HIGH"])
    held = set(derived) & commands._SNAPSHOT_NAMES
    assert {"score", "severity", "target_impact"} <= held  # the check sees the derived fields
    assert held <= {*commands._ENTRY_FIELDS, "score"}
