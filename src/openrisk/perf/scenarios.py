"""The load-test scenarios and the thresholds each must meet.

baseline: cache disabled, 5 users, 2 min; warm: cache enabled, 10 users, 4 min; peak: cache
enabled, 10 → 50 → 25 → 0 users over 5 min. ``--quick`` runs each in 30 seconds (peak keeps its
shape, compressed). Thresholds (the run fails when one is missed): p95 < 100 ms, errors < 1 %,
and in warm a cache hit rate > 75 %.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace

QUICK_DURATION_S = 30.0
DEFAULT_MAX_P95_MS = 100.0
DEFAULT_MAX_ERROR_RATE = 0.01
DEFAULT_MIN_HIT_RATE = 0.75

# Peak: (fraction of the run, users at that moment); users are interpolated linearly between.
PEAK_STAGES: tuple[tuple[float, int], ...] = (
    (0.0, 10),
    (0.1, 10),
    (0.4, 50),
    (0.6, 50),
    (0.7, 25),
    (0.9, 25),
    (1.0, 0),
)


@dataclass(frozen=True)
class Thresholds:
    max_p95_ms: float = DEFAULT_MAX_P95_MS
    max_error_rate: float = DEFAULT_MAX_ERROR_RATE
    min_hit_rate: float | None = None  # only checked when set (warm)


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    cache_enabled: bool
    users: int  # the most users at once
    duration_s: float
    thresholds: Thresholds
    stages: tuple[tuple[float, int], ...] | None = None  # a shape (peak); None: constant users
    spawn_rate: float = 10.0  # users per second while starting a constant-users run

    def shortened(self, duration_s: float) -> Scenario:
        return replace(self, duration_s=duration_s)

    def stage_points(self) -> list[tuple[float, int]]:
        """The shape as (seconds from start, users) points; constant runs have two."""
        if self.stages is None:
            return [(0.0, self.users), (self.duration_s, self.users)]
        return [(fraction * self.duration_s, users) for fraction, users in self.stages]


SCENARIOS: dict[str, Scenario] = {
    "baseline": Scenario(
        name="baseline",
        description="cache disabled, 5 users, 2 min",
        cache_enabled=False,
        users=5,
        duration_s=120.0,
        thresholds=Thresholds(),
    ),
    "warm": Scenario(
        name="warm",
        description="cache enabled, 10 users, 4 min",
        cache_enabled=True,
        users=10,
        duration_s=240.0,
        thresholds=Thresholds(min_hit_rate=DEFAULT_MIN_HIT_RATE),
    ),
    "peak": Scenario(
        name="peak",
        description="cache enabled, ramp 10 → 50 → 25 → 0 users over 5 min",
        cache_enabled=True,
        users=max(users for _, users in PEAK_STAGES),
        duration_s=300.0,
        thresholds=Thresholds(),
        stages=PEAK_STAGES,
    ),
}

_DURATION = re.compile(
    r"^\s*(?:(\d+(?:\.\d+)?)h)?\s*(?:(\d+(?:\.\d+)?)m)?\s*(?:(\d+(?:\.\d+)?)s?)?\s*$"
)


def parse_duration(text: str) -> float:
    """`90`, `90s`, `2m`, `1m30s`, `1h` → seconds (> 0); ValueError otherwise."""
    match = _DURATION.match(text)
    if not match or not any(match.groups()):
        raise ValueError(f"not a duration: {text!r} (use e.g. 30s, 2m, 1m30s)")
    hours, minutes, seconds = (float(g) if g else 0.0 for g in match.groups())
    total = hours * 3600 + minutes * 60 + seconds
    if total <= 0:
        raise ValueError(f"duration must be positive: {text!r}")
    return total


def resolve(
    name: str,
    *,
    quick: bool = False,
    duration_s: float | None = None,
    max_p95_ms: float | None = None,
    min_hit_rate: float | None = None,
) -> Scenario:
    """The named scenario, shortened (`quick` or an explicit duration) and thresholds overridden."""
    scenario = SCENARIOS[name]
    if duration_s is not None:
        scenario = scenario.shortened(duration_s)
    elif quick:
        scenario = scenario.shortened(QUICK_DURATION_S)
    thresholds = scenario.thresholds
    if max_p95_ms is not None:
        thresholds = replace(thresholds, max_p95_ms=max_p95_ms)
    if min_hit_rate is not None and scenario.cache_enabled:
        thresholds = replace(thresholds, min_hit_rate=min_hit_rate)
    return replace(scenario, thresholds=thresholds)


def users_at(points: Sequence[tuple[float, int]], elapsed: float) -> int:
    """Users at ``elapsed`` seconds on a piecewise-linear shape of (seconds, users) points,
    rounded up so that a ramp starts at once; the last count after the last point."""
    for (t0, u0), (t1, u1) in itertools.pairwise(points):
        if t0 <= elapsed < t1:
            return math.ceil(u0 + (u1 - u0) * (elapsed - t0) / (t1 - t0))
    return points[-1][1] if points else 0
