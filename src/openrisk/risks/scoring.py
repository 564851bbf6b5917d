"""Risk scoring, pure and exact (Decimal arithmetic, no floating-point surprises).

A tenant chooses its risk model (``ScoringModel``: N×M levels, bands, asset factors, appetite);
``DEFAULT_MODEL`` is the one every tenant starts with, and the module-level functions use it:

- base = impact × probability (1..25)
- score = round(base × mean(asset factor), 2); factors LOW 0.8, MEDIUM 1.0, HIGH 1.25,
  CRITICAL 1.5; no assets → 1.0. Ties round half up (10.245 → 10.25).
- severity: CRITICAL ≥ 20, HIGH ≥ 15, MEDIUM ≥ 10, LOW otherwise.
- global risk score = max(0, 100 − floor(mean score × 4)); 100 with no risks.
- mitigation priority = round(score / max(cost + effort_days, 2), 2).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import ROUND_FLOOR, ROUND_HALF_UP, Decimal
from enum import StrEnum


class Severity(StrEnum):
    LOW = "LOW"
    MEDIUM = "MEDIUM"
    HIGH = "HIGH"
    CRITICAL = "CRITICAL"


class Criticality(StrEnum):
    LOW = "LOW"
    MEDIUM = "MEDIUM"
    HIGH = "HIGH"
    CRITICAL = "CRITICAL"


ASSET_FACTORS: dict[str, Decimal] = {
    Criticality.LOW: Decimal("0.8"),
    Criticality.MEDIUM: Decimal("1.0"),
    Criticality.HIGH: Decimal("1.25"),
    Criticality.CRITICAL: Decimal("1.5"),
}
SEVERITY_THRESHOLDS: tuple[tuple[Decimal, Severity], ...] = (
    (Decimal(20), Severity.CRITICAL),
    (Decimal(15), Severity.HIGH),
    (Decimal(10), Severity.MEDIUM),
)
MIN_SCORE = Decimal("0.8")
MAX_SCORE = Decimal("37.5")
CENT = Decimal("0.01")
LEVELS = range(1, 6)


def _check_level(name: str, value: int) -> None:
    if value not in LEVELS:
        raise ValueError(f"{name} must be an integer from 1 to 5, got {value!r}")


def base_score(impact: int, probability: int) -> int:
    _check_level("impact", impact)
    _check_level("probability", probability)
    return impact * probability


def asset_factor(criticalities: Iterable[str]) -> Decimal:
    """Mean factor of the linked assets' criticalities (1.0 without assets); exact fraction."""
    factors = [ASSET_FACTORS[Criticality(c)] for c in criticalities]
    if not factors:
        return Decimal(1)
    return sum(factors, Decimal(0)) / len(factors)


def compute_score(impact: int, probability: int, criticalities: Iterable[str] = ()) -> Decimal:
    """The stored score, with two decimals (e.g. (2, 5, [LOW, HIGH]) → Decimal('10.25'))."""
    base = base_score(impact, probability)
    factors = [ASSET_FACTORS[Criticality(c)] for c in criticalities]
    if not factors:
        return Decimal(base).quantize(CENT)
    # base × sum / n in one division keeps the result exact whenever it is representable
    raw = Decimal(base) * sum(factors, Decimal(0)) / len(factors)
    return raw.quantize(CENT, rounding=ROUND_HALF_UP)


@dataclass(frozen=True)
class Band:
    """A severity band: every score from ``min_score`` up to the next band's minimum."""

    name: str
    min_score: Decimal
    color: str


LEVELS_MEMO = 4_096  # cells remembered per model (levels² × the criticality mixes in use)


@dataclass(frozen=True)
class ScoringModel:
    """How a tenant scores risks: ``impact_levels`` × ``probability_levels`` (levels 1..N),
    a factor per asset criticality, bands in ascending ``min_score`` (the first one at 0) and
    the appetite (risks scoring above it are flagged)."""

    impact_levels: int
    probability_levels: int
    factors: Mapping[str, Decimal]
    bands: tuple[Band, ...]
    appetite_score: Decimal
    review_days: Mapping[str, int] = field(default_factory=dict)
    # (impact, probability, criticalities) → (score, severity, within appetite), see ``levels``
    _levels: dict[tuple[int, int, tuple[str, ...]], tuple[Decimal, str, bool]] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def levels(
        self, impact: int, probability: int, criticalities: tuple[str, ...] = ()
    ) -> tuple[Decimal, str, bool]:
        """The score, severity and appetite flag of a cell (``criticalities`` sorted), memoised:
        an import scores the same few cells tens of thousands of times."""
        key = (impact, probability, criticalities)
        found = self._levels.get(key)
        if found is None:
            score = self.score(impact, probability, criticalities)
            found = (score, self.severity(score), self.within_appetite(score))
            if len(self._levels) < LEVELS_MEMO:
                self._levels[key] = found
        return found

    def days_between_reviews(self, band: str) -> int:
        return int(self.review_days.get(band, DEFAULT_REVIEW_DAYS.get(band, 365)))

    def check_levels(self, impact: int, probability: int) -> None:
        for name, value, top in (
            ("impact", impact, self.impact_levels),
            ("probability", probability, self.probability_levels),
        ):
            if not 1 <= value <= top:
                raise ValueError(f"{name} must be an integer from 1 to {top}, got {value!r}")

    def score(self, impact: int, probability: int, criticalities: Iterable[str] = ()) -> Decimal:
        """impact × probability × mean factor of the linked assets (1.0 without), 2 decimals,
        ties half up."""
        self.check_levels(impact, probability)
        base = impact * probability
        factors = [self.factors[Criticality(c)] for c in criticalities]
        if not factors:
            return Decimal(base).quantize(CENT)
        raw = Decimal(base) * sum(factors, Decimal(0)) / len(factors)
        return raw.quantize(CENT, rounding=ROUND_HALF_UP)

    def severity(self, score: Decimal | float) -> str:
        value = Decimal(str(score))
        for band in reversed(self.bands):
            if value >= band.min_score:
                return band.name
        return self.bands[0].name

    def band(self, name: str) -> Band | None:
        return next((b for b in self.bands if b.name == name), None)

    def within_appetite(self, score: Decimal | float) -> bool:
        return Decimal(str(score)) <= self.appetite_score

    @property
    def max_score(self) -> Decimal:
        top = max(self.factors.values())
        return (Decimal(self.impact_levels * self.probability_levels) * top).quantize(CENT)


DEFAULT_BAND_COLORS = {
    "LOW": "#2e7d32",
    "MEDIUM": "#f9a825",
    "HIGH": "#ef6c00",
    "CRITICAL": "#c62828",
}
DEFAULT_REVIEW_DAYS = {"CRITICAL": 30, "HIGH": 90, "MEDIUM": 180, "LOW": 365}
# HIGH and CRITICAL risks (15 and more) are above the default appetite.
DEFAULT_APPETITE = Decimal("14.99")
DEFAULT_MODEL = ScoringModel(
    impact_levels=5,
    probability_levels=5,
    factors=ASSET_FACTORS,
    bands=(
        Band("LOW", Decimal(0), DEFAULT_BAND_COLORS["LOW"]),
        *(
            Band(sev.value, threshold, DEFAULT_BAND_COLORS[sev.value])
            for threshold, sev in reversed(SEVERITY_THRESHOLDS)
        ),
    ),
    appetite_score=DEFAULT_APPETITE,
    review_days=DEFAULT_REVIEW_DAYS,
)


def severity_for(score: Decimal | float) -> Severity:
    value = Decimal(str(score))
    for threshold, severity in SEVERITY_THRESHOLDS:
        if value >= threshold:
            return severity
    return Severity.LOW


def global_risk_score(mean_score: Decimal | float | None) -> int:
    """Dashboard health: 100 with no risks, lower as the mean score grows; never below 0."""
    if mean_score is None:
        return 100
    scaled = (Decimal(str(mean_score)) * 4).to_integral_value(rounding=ROUND_FLOOR)
    return max(0, 100 - int(scaled))


def mitigation_priority(score: Decimal | float, cost: int, effort_days: int) -> Decimal:
    """Score per unit of cost and effort: the higher, the sooner the mitigation pays off."""
    divisor = max(cost + effort_days, 2)
    return (Decimal(str(score)) / divisor).quantize(CENT, rounding=ROUND_HALF_UP)
