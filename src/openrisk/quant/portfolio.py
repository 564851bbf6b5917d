"""The whole register's annual loss: every quantified risk simulated over the same years and
summed year by year, optionally with correlated event counts.

Correlation is a Gaussian copula on one common factor: a risk's count in a year comes from the
normal ``√ρ·Z + √(1 − ρ)·ε`` (Z shared by every risk that year, ε its own), read through its
own count distribution. Each risk keeps exactly its distribution (so its ALE is unchanged);
only how often bad years coincide changes — which is what moves the portfolio's tail.

Risks are spread over a fixed number of lanes (balanced by expected events), each summed in
its own buffer by one worker thread (numpy releases the GIL while drawing and summing). The
lanes are added in a fixed order, so a seed gives the same numbers with any number of threads.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from openrisk.quant.distributions import FloatArray
from openrisk.quant.results import ExceedanceCurve, LossSummary, probability_above
from openrisk.quant.simulation import QuantifiedRisk, common_factor, simulate_chunks

LANES = 4
DEFAULT_TOP = 10


@dataclass(frozen=True, slots=True)
class LossAppetite:
    """ "P(annual loss > threshold) ≤ max_probability": how much loss the organisation accepts."""

    threshold: float
    max_probability: float

    def __post_init__(self) -> None:
        if not (math.isfinite(self.threshold) and self.threshold > 0):
            raise ValueError("the loss appetite threshold must be a positive number")
        if not 0.0 <= self.max_probability <= 1.0:
            raise ValueError("the loss appetite probability must be between 0 and 1")


@dataclass(frozen=True, slots=True)
class AppetiteVerdict:
    appetite: LossAppetite
    probability_inherent: float
    probability_residual: float

    @property
    def within(self) -> bool:
        """The register is within appetite when its residual loss is."""
        return self.probability_residual <= self.appetite.max_probability


@dataclass(frozen=True, slots=True)
class Contribution:
    """One risk's share of the portfolio's residual ALE (ALEs add up; percentiles do not)."""

    key: str
    ale_inherent: float
    ale_residual: float
    share: float


@dataclass(frozen=True, slots=True)
class PortfolioResult:
    iterations: int
    seed: int
    correlation: float
    risk_count: int
    inherent: LossSummary
    residual: LossSummary
    curve: ExceedanceCurve
    contributors: tuple[Contribution, ...]
    appetite: AppetiteVerdict | None


@dataclass
class _Lane:
    """Year-by-year sums of some of the risks, and each of those risks' ALEs. ``unmitigated``
    sums the risks whose residual loss is their inherent loss (no control changes anything),
    added to both totals at the end: one scatter per chunk for them instead of two."""

    inherent: FloatArray
    residual: FloatArray
    unmitigated: FloatArray
    ales: dict[int, tuple[float, float]]


def _balanced_lanes(risks: Sequence[QuantifiedRisk], lanes: int) -> list[list[int]]:
    """Risk indices per lane, heaviest first onto the lightest lane (deterministic)."""
    assigned: list[list[int]] = [[] for _ in range(lanes)]
    load = [0.0] * lanes
    order = sorted(range(len(risks)), key=lambda i: (-risks[i].expected_events, i))
    for index in order:
        lane = min(range(lanes), key=lambda j: (load[j], j))
        assigned[lane].append(index)
        load[lane] += risks[index].expected_events + 0.05  # every risk costs a pass over years
    return [sorted(lane) for lane in assigned]


def _run_lane(
    risks: Sequence[QuantifiedRisk],
    indices: list[int],
    *,
    iterations: int,
    seed: int,
    common: FloatArray | None,
    correlation: float,
) -> _Lane:
    lane = _Lane(
        inherent=np.zeros(iterations),
        residual=np.zeros(iterations),
        unmitigated=np.zeros(iterations),
        ales={},
    )
    for index in indices:
        risk = risks[index]
        unmitigated = risk.keep_probability >= 1.0 and risk.loss_factor >= 1.0
        inherent_sum = residual_sum = 0.0
        for chunk in simulate_chunks(
            risk, iterations=iterations, seed=seed, common=common, correlation=correlation
        ):
            inherent_total = float(chunk.inherent.sum())
            inherent_sum += inherent_total
            # np.add.at, not ``a[positions] += b``: half the time on numpy 2 (no gather and
            # scatter through a temporary); the positions of a chunk are distinct anyway
            if unmitigated:
                np.add.at(lane.unmitigated, chunk.positions, chunk.inherent)
                residual_sum += inherent_total
                continue
            np.add.at(lane.inherent, chunk.positions, chunk.inherent)
            np.add.at(lane.residual, chunk.positions, chunk.residual)
            residual_sum += float(chunk.residual.sum())
        lane.ales[index] = (inherent_sum / iterations, residual_sum / iterations)
    return lane


def _contributors(
    risks: Sequence[QuantifiedRisk], ales: dict[int, tuple[float, float]], top: int
) -> tuple[Contribution, ...]:
    total = math.fsum(residual for _, residual in ales.values())  # exact: order-free
    ranked = sorted(ales.items(), key=lambda item: (-item[1][1], -item[1][0], item[0]))
    return tuple(
        Contribution(
            key=risks[index].key,
            ale_inherent=inherent,
            ale_residual=residual,
            share=residual / total if total > 0 else 0.0,
        )
        for index, (inherent, residual) in ranked[:top]
    )


def simulate_portfolio(
    risks: Sequence[QuantifiedRisk],
    *,
    iterations: int,
    seed: int,
    correlation: float = 0.0,
    appetite: LossAppetite | None = None,
    top: int = DEFAULT_TOP,
    workers: int | None = None,
) -> PortfolioResult:
    """Simulate every risk over the same ``iterations`` years and summarise their sum."""
    if iterations < 1:
        raise ValueError("iterations must be at least 1")
    if not 0.0 <= correlation <= 1.0:
        raise ValueError("correlation must be between 0 and 1")
    if len({risk.key for risk in risks}) != len(risks):
        raise ValueError("every risk of a portfolio needs its own key")
    common = common_factor(seed, iterations) if correlation > 0 else None
    lanes = [lane for lane in _balanced_lanes(risks, LANES) if lane]
    threads = max(1, min(workers or os.cpu_count() or 1, len(lanes) or 1))

    def run(indices: list[int]) -> _Lane:
        return _run_lane(
            risks,
            indices,
            iterations=iterations,
            seed=seed,
            common=common,
            correlation=correlation,
        )

    with ThreadPoolExecutor(max_workers=threads) as pool:
        results = list(pool.map(run, lanes))
    inherent, residual = np.zeros(iterations), np.zeros(iterations)
    ales: dict[int, tuple[float, float]] = {}
    for lane in results:
        inherent += lane.inherent
        inherent += lane.unmitigated
        residual += lane.residual
        residual += lane.unmitigated
        ales.update(lane.ales)
    means = float(inherent.mean()), float(residual.mean())
    inherent.sort()
    residual.sort()
    verdict = None
    if appetite is not None:
        verdict = AppetiteVerdict(
            appetite=appetite,
            probability_inherent=probability_above(inherent, appetite.threshold),
            probability_residual=probability_above(residual, appetite.threshold),
        )
    return PortfolioResult(
        iterations=iterations,
        seed=seed,
        correlation=correlation,
        risk_count=len(risks),
        inherent=LossSummary.of(inherent, mean=means[0]),
        residual=LossSummary.of(residual, mean=means[1]),
        curve=ExceedanceCurve.of(inherent, residual),
        contributors=_contributors(risks, ales, top),
        appetite=verdict,
    )
