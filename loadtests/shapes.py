"""The peak scenario's shape: users interpolated linearly between the configured points.

Added to the run by ``openrisk loadtest --scenario peak`` (``-f loadtests/locustfile.py,
loadtests/shapes.py``); the points come from ``OPENRISK_LOADTEST_CONFIG`` ("stages": [[seconds,
users], ...], e.g. 10 → 50 → 25 → 0 users over 5 minutes). The run ends at the last point.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from locust import LoadTestShape

from openrisk.perf.scenarios import users_at


def _stages() -> list[tuple[float, int]]:
    path = os.environ.get("OPENRISK_LOADTEST_CONFIG")
    if not path:
        raise RuntimeError("OPENRISK_LOADTEST_CONFIG is not set")
    stages = json.loads(Path(path).read_text()).get("stages") or []
    return [(float(at), int(users)) for at, users in stages]


class StagedShape(LoadTestShape):
    """Piecewise-linear user count; users are started and stopped as fast as the shape needs."""

    stages = _stages()

    def tick(self) -> tuple[int, float] | None:
        elapsed = self.get_run_time()
        if not self.stages or elapsed >= self.stages[-1][0]:
            return None
        return users_at(self.stages, elapsed), 100.0
