"""One risk's simulated annual loss against closed forms, mitigations, ROSI and reproducibility.

Closed forms (compound Poisson): with N ~ Poisson(λ) events a year and each loss lognormal
(μ, σ), E[annual loss] = λ·exp(μ + σ²/2), Var = λ·exp(2μ + 2σ²) and P(N ≥ 1) = 1 − e^(−λ).
The parameters below keep 1 % at three standard errors or more at 100,000 iterations, so the
fixed seeds are not what makes them pass.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from openrisk.quant import (
    Control,
    FixedRate,
    Lognormal,
    Pert,
    QuantifiedRisk,
    annual_losses,
    rosi,
    simulate_risk,
)
from openrisk.quant.simulation import EVENTS_PER_CHUNK, simulate_chunks

ITERATIONS = 100_000


@pytest.mark.parametrize(
    ("rate", "mu", "sigma"), [(2.0, 10.0, 0.8), (5.0, 12.0, 1.0), (1.5, 9.0, 0.5)]
)
def test_poisson_lognormal_matches_the_closed_forms(rate: float, mu: float, sigma: float) -> None:
    risk = QuantifiedRisk("closed-form", FixedRate(rate), Lognormal(mu, sigma))
    mean = rate * math.exp(mu + sigma**2 / 2)
    standard_error = math.sqrt(rate * math.exp(2 * mu + 2 * sigma**2) / ITERATIONS)
    assert 0.01 * mean > 3 * standard_error  # the tolerance is not luck
    result = simulate_risk(risk, iterations=ITERATIONS, seed=20260501)
    assert result.inherent.mean == pytest.approx(mean, rel=0.01)
    assert result.inherent.p_at_least_one == pytest.approx(1 - math.exp(-rate), rel=0.01)


def test_pert_rate_and_lognormal_loss_mean_and_first_event() -> None:
    """With a PERT rate Λ: E[annual loss] = E[Λ]·E[loss]; P(N ≥ 1) = 1 − E[e^(−Λ)]."""
    pert = Pert(1.0, 3.0, 8.0)
    loss = Lognormal.from_interval(2_000, 60_000)
    risk = QuantifiedRisk("pert-rate", pert, loss)
    result = simulate_risk(risk, iterations=ITERATIONS, seed=7)
    assert result.inherent.mean == pytest.approx(pert.mean * loss.mean, rel=0.01)
    rates = pert.sample(np.random.default_rng(99), 2_000_000)
    assert result.inherent.p_at_least_one == pytest.approx(1 - np.exp(-rates).mean(), rel=0.01)


def test_pert_loss_per_event() -> None:
    loss = Pert(1_000, 5_000, 40_000)
    result = simulate_risk(
        QuantifiedRisk("pert-loss", FixedRate(3.0), loss), iterations=ITERATIONS, seed=3
    )
    assert result.inherent.mean == pytest.approx(3.0 * loss.mean, rel=0.01)


def test_summary_orders_and_curve_shape() -> None:
    risk = QuantifiedRisk("shape", Pert(0.2, 1.0, 3.0), Lognormal.from_interval(1e4, 1e6))
    result = simulate_risk(risk, iterations=ITERATIONS, seed=1)
    s = result.inherent
    assert 0 <= s.median <= s.p90 <= s.p95 <= s.p99 <= s.maximum
    curve = result.curve
    assert len(curve.thresholds) >= 50
    ratios = np.diff(np.log(curve.thresholds))
    assert np.allclose(ratios, ratios[0])  # log-spaced
    assert np.all(np.diff(curve.inherent) <= 0)
    # the first threshold is the smallest positive loss: just below P(at least one event)
    assert curve.inherent[0] == pytest.approx(s.p_at_least_one, abs=2 / ITERATIONS)
    assert curve.inherent[-1] == 0.0


def test_mitigations_thin_events_and_scale_losses() -> None:
    """Residual ALE = inherent ALE × (1 − frequency reduction) × (1 − loss reduction), for each
    control alone and for all together (reductions compose multiplicatively)."""
    first = Control("a", frequency_reduction=0.5, loss_reduction=0.2, annual_cost=10_000)
    second = Control("b", frequency_reduction=0.1, loss_reduction=0.0, annual_cost=2_000)
    risk = QuantifiedRisk(
        "mitigated", Pert(1.0, 2.0, 5.0), Lognormal.from_interval(1e4, 2e5), (first, second)
    )
    result = simulate_risk(risk, iterations=ITERATIONS, seed=12)
    before = result.inherent.mean
    assert result.residual.mean == pytest.approx(before * 0.5 * 0.8 * 0.9, rel=0.01)
    a, b = result.controls
    assert a.ale_before == b.ale_before == before
    assert a.ale_after == pytest.approx(before * 0.5 * 0.8, rel=0.01)
    assert b.ale_after == pytest.approx(before * 0.9, rel=0.01)
    assert a.rosi == pytest.approx((before - a.ale_after - 10_000) / 10_000, rel=1e-12)
    # a frequency cut lowers the chance of a bad year; a loss cut alone does not
    assert result.residual.p_at_least_one < result.inherent.p_at_least_one


def test_rosi_arithmetic() -> None:
    assert rosi(100_000, 40_000, 20_000) == 2.0
    assert rosi(50_000, 45_000, 10_000) == -0.5
    assert rosi(1, 1, 1) == -1.0
    assert rosi(100, 0, 0) is None


def test_no_reduction_leaves_residual_equal_to_inherent() -> None:
    risk = QuantifiedRisk(
        "idle-control",
        Pert(0.5, 1.0, 2.0),
        Lognormal.from_interval(1e3, 1e5),
        (Control("noop", 0.0, 0.0, 100.0),),
    )
    losses = annual_losses(risk, iterations=20_000, seed=4)
    assert np.array_equal(losses.inherent, losses.residual)


def test_full_loss_reduction_removes_every_loss() -> None:
    risk = QuantifiedRisk(
        "insured",
        FixedRate(2.0),
        Lognormal.from_interval(1e3, 1e5),
        (Control("cover", 0.0, 1.0, 100.0),),
    )
    result = simulate_risk(risk, iterations=10_000, seed=4)
    assert result.residual.mean == 0
    assert result.residual.p_at_least_one == 0


def test_same_seed_same_result_and_different_seed_different_result() -> None:
    risk = QuantifiedRisk(
        "repeat", Pert(0.1, 0.4, 1.5), Pert(1e3, 5e3, 9e4), (Control("m", 0.3, 0.3, 500.0),)
    )
    first = simulate_risk(risk, iterations=30_000, seed=123)
    assert simulate_risk(risk, iterations=30_000, seed=123) == first
    assert simulate_risk(risk, iterations=30_000, seed=124) != first


def test_inherent_draws_do_not_depend_on_the_mitigations() -> None:
    """Adding a mitigation must not move the inherent result (separate random streams)."""
    bare = QuantifiedRisk("same-key", Pert(0.5, 1.0, 3.0), Lognormal.from_interval(1e3, 1e5))
    mitigated = QuantifiedRisk(
        "same-key", bare.frequency, bare.loss, (Control("m", 0.4, 0.2, 100.0),)
    )
    a = annual_losses(bare, iterations=50_000, seed=9)
    b = annual_losses(mitigated, iterations=50_000, seed=9)
    assert np.array_equal(a.inherent, b.inherent)


def test_the_key_seeds_the_draws() -> None:
    frequency, loss = FixedRate(1.0), Lognormal(8.0, 1.0)
    one = annual_losses(QuantifiedRisk("one", frequency, loss), iterations=5_000, seed=1)
    two = annual_losses(QuantifiedRisk("two", frequency, loss), iterations=5_000, seed=1)
    assert not np.array_equal(one.inherent, two.inherent)


def test_chunks_bound_the_events_held_at_once() -> None:
    risk = QuantifiedRisk("frequent", Pert(200.0, 300.0, 500.0), Lognormal(5.0, 1.0))
    sizes = []
    for chunk in simulate_chunks(risk, iterations=20_000, seed=1):
        sizes.append(chunk.size)
        assert len(chunk.positions) == chunk.size  # every year has events at this rate
    assert sum(sizes) == 20_000
    assert max(sizes) * risk.expected_events <= EVENTS_PER_CHUNK
    result = simulate_risk(risk, iterations=20_000, seed=1)
    assert result.inherent.mean == pytest.approx(risk.frequency.mean * risk.loss.mean, rel=0.01)


def test_results_are_the_same_whatever_the_chunking(monkeypatch: pytest.MonkeyPatch) -> None:
    """Chunk size changes the order of draws, so it is a function of the inputs only — but the
    statistics do not depend on it beyond sampling noise."""
    risk = QuantifiedRisk("chunked", Pert(0.5, 1.0, 2.0), Lognormal.from_interval(1e3, 1e5))
    default = simulate_risk(risk, iterations=ITERATIONS, seed=2)
    monkeypatch.setattr("openrisk.quant.simulation.MAX_CHUNK", 1 << 10)
    small = simulate_risk(risk, iterations=ITERATIONS, seed=2)
    assert small != default
    assert small.inherent.mean == pytest.approx(default.inherent.mean, rel=0.03)


def test_bad_inputs_are_refused() -> None:
    risk = QuantifiedRisk("r", FixedRate(1.0), Lognormal(1.0, 1.0))
    with pytest.raises(ValueError):
        simulate_risk(risk, iterations=0, seed=1)
    with pytest.raises(ValueError):
        Control("c", frequency_reduction=1.5)
    with pytest.raises(ValueError):
        Control("c", loss_reduction=-0.1)
    with pytest.raises(ValueError):
        Control("c", annual_cost=-1)
    with pytest.raises(ValueError):
        FixedRate(-1.0)


def test_quantiles_of_sorted_losses_are_numpys() -> None:
    from openrisk.quant.results import sorted_quantiles

    rng = np.random.default_rng(0)
    for size in (1, 2, 7, 1000, 100_001):
        values = np.sort(rng.lognormal(5, 2, size))
        expected = np.quantile(values, [0.0, 0.5, 0.9, 0.95, 0.99, 1.0])
        got = sorted_quantiles(values, (0.0, 0.5, 0.9, 0.95, 0.99, 1.0))
        assert got == pytest.approx(expected.tolist(), rel=1e-12)
