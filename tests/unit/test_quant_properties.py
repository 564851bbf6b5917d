"""Invariants of the engine over arbitrary valid inputs (hypothesis)."""

from __future__ import annotations

import itertools

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from openrisk.quant import (
    Control,
    CountDistribution,
    Lognormal,
    Pert,
    QuantifiedRisk,
    annual_losses,
    simulate_portfolio,
    simulate_risk,
)

ITERATIONS = 2_000
fast = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def perts(draw: st.DrawFn, low: float, high: float) -> Pert:
    values = sorted(draw(st.floats(low, high, allow_nan=False)) for _ in range(3))
    return Pert(*values)


@st.composite
def losses(draw: st.DrawFn) -> Lognormal | Pert:
    if draw(st.booleans()):
        low = draw(st.floats(1.0, 1e6))
        return Lognormal.from_interval(low, low * draw(st.floats(1.001, 1e3)))
    return draw(perts(0.0, 1e6).filter(lambda p: p.high > 0))


reductions = st.floats(0.0, 1.0)
controls = st.builds(
    Control,
    key=st.uuids().map(str),
    frequency_reduction=reductions,
    loss_reduction=reductions,
    annual_cost=st.floats(0.0, 1e6),
)
risks = st.builds(
    QuantifiedRisk,
    key=st.uuids().map(str),
    frequency=perts(0.0, 20.0).filter(lambda p: p.high > 0),
    loss=losses(),
    controls=st.lists(controls, max_size=3).map(tuple),
)
seeds = st.integers(0, 2**63)


@fast
@given(risk=risks, seed=seeds)
def test_residual_never_exceeds_inherent_in_any_year(risk: QuantifiedRisk, seed: int) -> None:
    years = annual_losses(risk, iterations=ITERATIONS, seed=seed)
    assert np.all(years.residual <= years.inherent)
    assert np.all(years.residual >= 0)
    residual_mean = years.residual.mean()
    for alone in years.control_means:
        # all controls together do at least as well as any one
        assert residual_mean <= alone * (1 + 1e-12) + 1e-300
        assert alone <= years.inherent.mean() * (1 + 1e-12)


@fast
@given(risk=risks, seed=seeds)
def test_summaries_and_curves_are_ordered(risk: QuantifiedRisk, seed: int) -> None:
    result = simulate_risk(risk, iterations=ITERATIONS, seed=seed)
    for summary in (result.inherent, result.residual):
        assert 0 <= summary.median <= summary.p90 <= summary.p95 <= summary.p99
        assert summary.p99 <= summary.maximum
        assert 0 <= summary.p_at_least_one <= 1
    assert result.residual.mean <= result.inherent.mean
    assert result.residual.p99 <= result.inherent.p99
    assert result.residual.p_at_least_one <= result.inherent.p_at_least_one
    curve = result.curve
    assert len(curve.thresholds) >= 50
    assert all(b > a for a, b in itertools.pairwise(curve.thresholds))
    for probabilities in (curve.inherent, curve.residual):
        assert all(b <= a for a, b in itertools.pairwise(probabilities))
        assert all(0 <= p <= 1 for p in probabilities)
    assert all(r <= i for r, i in zip(curve.residual, curve.inherent, strict=True))
    for control in result.controls:
        assert control.ale_after <= control.ale_before
        if control.annual_cost > 0:
            assert control.rosi is not None
            assert control.rosi >= -1.0


@fast
@given(frequency=perts(0.0, 50.0).filter(lambda p: p.high > 0))
def test_count_tables_are_distributions(frequency: Pert) -> None:
    counts = CountDistribution.of(frequency)
    assert counts.cdf[-1] == 1.0
    assert np.all(np.diff(counts.cdf) >= 0)
    assert abs(counts.mean - frequency.mean) <= 1e-7 * max(1.0, frequency.mean)


@settings(max_examples=15, deadline=None)
@given(
    portfolio=st.lists(risks, min_size=1, max_size=6, unique_by=lambda r: r.key),
    seed=seeds,
    correlation=st.floats(0.0, 1.0),
)
def test_portfolio_residual_below_inherent(
    portfolio: list[QuantifiedRisk], seed: int, correlation: float
) -> None:
    result = simulate_portfolio(
        portfolio, iterations=ITERATIONS, seed=seed, correlation=correlation
    )
    assert result.residual.mean <= result.inherent.mean * (1 + 1e-12)
    assert all(r <= i for r, i in zip(result.curve.residual, result.curve.inherent, strict=True))
    assert result.inherent.mean <= result.inherent.maximum
