"""The dashboard's chart axes read like counts and scores: whole steps, never 0.2 or 0.5."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from openrisk.web.charts import line_chart

DAYS = [date(2026, 1, 1) + timedelta(days=n) for n in range(30)]


@pytest.mark.parametrize(
    ("peak", "labels"),
    [
        (0, ["0", "1", "2", "3", "4"]),  # an empty tenant: an axis of whole counts
        (3, ["0", "1", "2", "3", "4"]),
        (13.05, ["0", "5", "10", "15", "20"]),
        (37.5, ["0", "10", "20", "30", "40"]),
        (179, ["0", "50", "100", "150", "200"]),
    ],
)
def test_y_axis_ticks_are_whole_steps(peak: float, labels: list[str]) -> None:
    chart = line_chart(DAYS, [0.0] * 29 + [float(peak)])
    assert [t.label for t in chart.y_ticks] == labels
    assert chart.y_ticks[0].position > chart.y_ticks[-1].position  # 0 at the bottom
