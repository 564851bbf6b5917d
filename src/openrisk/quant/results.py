"""What a simulation tells a reader: annual loss statistics, the loss exceedance curve and the
return on each mitigation, for one risk (``simulate_risk``)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from openrisk.quant.distributions import FloatArray
from openrisk.quant.simulation import QuantifiedRisk, simulate_chunks

CURVE_POINTS = 64
QUANTILES = (0.5, 0.9, 0.95, 0.99)


@dataclass(frozen=True, slots=True)
class LossSummary:
    """Statistics of the simulated annual loss (``mean`` is the annualised loss expectancy)."""

    mean: float
    median: float
    p90: float
    p95: float
    p99: float
    maximum: float
    p_at_least_one: float

    @classmethod
    def of(cls, ordered: FloatArray, *, mean: float) -> LossSummary:
        """From the annual losses sorted ascending and their mean (taken in year order, like
        every other mean of the run, so that smaller years always give a smaller mean). A year
        "has an event" when it has a loss: an event whose loss a mitigation removed entirely
        does not count."""
        n = len(ordered)
        if n == 0:
            raise ValueError("a loss summary needs at least one iteration")
        years_with_events = n - int(np.searchsorted(ordered, 0.0, side="right"))
        median, p90, p95, p99 = sorted_quantiles(ordered, QUANTILES)
        return cls(
            mean=mean,
            median=median,
            p90=p90,
            p95=p95,
            p99=p99,
            maximum=float(ordered[-1]),
            p_at_least_one=years_with_events / n,
        )


def sorted_quantiles(ordered: FloatArray, probabilities: tuple[float, ...]) -> list[float]:
    """Quantiles of losses already sorted ascending, interpolated linearly between order
    statistics exactly as ``np.quantile``'s default does (which would partition them again)."""
    positions = np.asarray(probabilities) * (len(ordered) - 1)
    below = np.floor(positions).astype(np.int64)
    above = np.minimum(below + 1, len(ordered) - 1)
    fraction = positions - below
    values = ordered[below] + fraction * (ordered[above] - ordered[below])
    return [float(v) for v in values]


def exceedance(ordered: FloatArray, thresholds: FloatArray) -> FloatArray:
    """P(annual loss > t) for each threshold t, from losses sorted ascending."""
    above = len(ordered) - np.searchsorted(ordered, thresholds, side="right")
    return above / len(ordered)


def probability_above(ordered: FloatArray, threshold: float) -> float:
    return float(exceedance(ordered, np.array([threshold]))[0])


def curve_thresholds(*ordered: FloatArray, points: int = CURVE_POINTS) -> FloatArray:
    """Log-spaced losses from the smallest positive simulated loss to the largest."""
    positive = [a[np.searchsorted(a, 0.0, side="right") :] for a in ordered]
    positive = [a for a in positive if len(a)]
    if not positive:
        return np.logspace(0.0, 1.0, points)
    low = min(float(a[0]) for a in positive)
    high = max(float(a[-1]) for a in positive)
    if high <= low * (1.0 + 1e-9):
        high = low * 10.0
    thresholds = np.logspace(math.log10(low), math.log10(high), points)
    thresholds[0], thresholds[-1] = low, high  # 10 ** log10(x) may round below x
    return thresholds


@dataclass(frozen=True, slots=True)
class ExceedanceCurve:
    """P(annual loss > threshold), inherent and residual, on the same thresholds."""

    thresholds: tuple[float, ...]
    inherent: tuple[float, ...]
    residual: tuple[float, ...]

    @classmethod
    def of(cls, inherent: FloatArray, residual: FloatArray) -> ExceedanceCurve:
        thresholds = curve_thresholds(inherent, residual)
        return cls(
            thresholds=tuple(thresholds.tolist()),
            inherent=tuple(exceedance(inherent, thresholds).tolist()),
            residual=tuple(exceedance(residual, thresholds).tolist()),
        )


@dataclass(frozen=True, slots=True)
class ControlResult:
    """One mitigation on its own against the inherent loss. ROSI = (ALE before − ALE after −
    annual cost) / annual cost; None when the mitigation costs nothing (it is then undefined)."""

    key: str
    ale_before: float
    ale_after: float
    annual_cost: float

    @property
    def rosi(self) -> float | None:
        return rosi(self.ale_before, self.ale_after, self.annual_cost)


def rosi(ale_before: float, ale_after: float, annual_cost: float) -> float | None:
    """Return on security investment of a control costing ``annual_cost`` a year."""
    if annual_cost <= 0:
        return None
    return (ale_before - ale_after - annual_cost) / annual_cost


@dataclass(frozen=True, slots=True)
class RiskResult:
    key: str
    iterations: int
    seed: int
    inherent: LossSummary
    residual: LossSummary
    curve: ExceedanceCurve
    controls: tuple[ControlResult, ...]


@dataclass(frozen=True, slots=True)
class RiskLosses:
    """A risk's annual loss in every simulated year (one value per iteration), and its mean
    loss with each control alone."""

    inherent: FloatArray
    residual: FloatArray
    control_means: tuple[float, ...]


def annual_losses(risk: QuantifiedRisk, *, iterations: int, seed: int) -> RiskLosses:
    """Every simulated year of ``risk`` (inherent, residual, and with each control alone)."""
    if iterations < 1:
        raise ValueError("iterations must be at least 1")
    inherent = np.zeros(iterations)
    residual = np.zeros(iterations)
    control_totals = [0.0] * len(risk.controls)
    for chunk in simulate_chunks(risk, iterations=iterations, seed=seed, per_control=True):
        inherent[chunk.positions] = chunk.inherent
        residual[chunk.positions] = chunk.residual
        for i, total in enumerate(chunk.control_totals):
            control_totals[i] += total
    return RiskLosses(inherent, residual, tuple(t / iterations for t in control_totals))


def simulate_risk(risk: QuantifiedRisk, *, iterations: int, seed: int) -> RiskResult:
    """Simulate ``iterations`` years of one risk and summarise them."""
    losses = annual_losses(risk, iterations=iterations, seed=seed)
    ale_before = float(losses.inherent.mean())
    inherent = np.sort(losses.inherent)
    residual = np.sort(losses.residual)
    controls = tuple(
        ControlResult(
            key=control.key,
            ale_before=ale_before,
            ale_after=min(after, ale_before),  # rounding must not make a control add loss
            annual_cost=control.annual_cost,
        )
        for control, after in zip(risk.controls, losses.control_means, strict=True)
    )
    return RiskResult(
        key=risk.key,
        iterations=iterations,
        seed=seed,
        inherent=LossSummary.of(inherent, mean=ale_before),
        residual=LossSummary.of(residual, mean=float(losses.residual.mean())),
        curve=ExceedanceCurve.of(inherent, residual),
        controls=controls,
    )
