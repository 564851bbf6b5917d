"""The input distributions against their closed forms: PERT moments, the 90 % interval mapping
of the lognormal, and the yearly event count with a PERT rate integrated out."""

from __future__ import annotations

import math

import numpy as np
import pytest

from openrisk.quant import Z_90, CountDistribution, FixedRate, Lognormal, Pert
from openrisk.quant.distributions import beta_quadrature


def _pert_density_grid(pert: Pert, points: int = 400_000) -> tuple[np.ndarray, np.ndarray]:
    """Rates and probability weights of a midpoint rule on the PERT density (the reference)."""
    x = (np.arange(points) + 0.5) / points
    a, b = pert.alpha, pert.beta
    log_norm = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b)
    density = np.exp(log_norm + (a - 1) * np.log(x) + (b - 1) * np.log1p(-x))
    return pert.low + pert.width * x, density / points


@pytest.mark.parametrize(
    ("low", "mode", "high"),
    [(1.0, 2.0, 6.0), (0.0, 0.0, 3.0), (10.0, 90.0, 100.0), (0.2, 0.5, 0.5)],
)
def test_pert_moments_are_the_closed_forms(low: float, mode: float, high: float) -> None:
    pert = Pert(low, mode, high)
    mean = (low + 4 * mode + high) / 6
    assert pert.mean == pytest.approx(mean, rel=1e-12)
    assert pert.variance == pytest.approx((mean - low) * (high - mean) / 7, rel=1e-12)
    draws = pert.sample(np.random.default_rng(11), 1_000_000)
    assert draws.min() >= low
    assert draws.max() <= high
    standard_error = math.sqrt(pert.variance / len(draws))
    assert abs(draws.mean() - mean) < 4 * standard_error
    assert draws.var() == pytest.approx(pert.variance, rel=0.01)


def test_pert_with_the_textbook_example() -> None:
    # min 2, most likely 4, max 12: mean (2 + 16 + 12) / 6 = 5, variance (3 · 7) / 7 = 3
    pert = Pert(2, 4, 12)
    assert pert.mean == 5
    assert pert.variance == pytest.approx(3.0)
    assert (pert.alpha, pert.beta) == (pytest.approx(1.8), pytest.approx(4.2))


def test_degenerate_pert_is_a_constant() -> None:
    pert = Pert(3, 3, 3)
    assert pert.variance == 0
    assert set(pert.sample(np.random.default_rng(1), 10).tolist()) == {3.0}


@pytest.mark.parametrize(("low", "mode", "high"), [(2, 1, 3), (1, 4, 3), (math.nan, 1, 2)])
def test_pert_refuses_disordered_or_non_finite_values(low: float, mode: float, high: float) -> None:
    with pytest.raises(ValueError):
        Pert(low, mode, high)


def test_z_90_is_the_normal_95th_percentile() -> None:
    assert pytest.approx(1.6448536, abs=1e-7) == Z_90


@pytest.mark.parametrize(("low", "high"), [(10_000, 1_000_000), (1.0, 2.0), (5e3, 2.5e7)])
def test_lognormal_from_a_90_percent_interval(low: float, high: float) -> None:
    loss = Lognormal.from_interval(low, high)
    assert loss.mu == pytest.approx((math.log(low) + math.log(high)) / 2, rel=1e-12)
    assert loss.sigma == pytest.approx((math.log(high) - math.log(low)) / (2 * 1.6449), rel=1e-4)
    assert math.exp(loss.mu - Z_90 * loss.sigma) == pytest.approx(low, rel=1e-12)
    assert math.exp(loss.mu + Z_90 * loss.sigma) == pytest.approx(high, rel=1e-12)
    draws = loss.sample(np.random.default_rng(5), 400_000)
    # 5 % below low and 5 % above high (binomial standard error 0.034 %)
    assert (draws < low).mean() == pytest.approx(0.05, abs=0.0015)
    assert (draws > high).mean() == pytest.approx(0.05, abs=0.0015)
    assert loss.mean == pytest.approx(math.exp(loss.mu + loss.sigma**2 / 2))


@pytest.mark.parametrize(("low", "high"), [(0, 10), (-1, 10), (10, 10), (10, 5)])
def test_lognormal_interval_needs_0_below_low_below_high(low: float, high: float) -> None:
    with pytest.raises(ValueError):
        Lognormal.from_interval(low, high)


@pytest.mark.parametrize(("alpha", "beta"), [(1.0, 1.0), (1.0, 5.0), (1.3, 4.7), (4.9, 1.1)])
def test_beta_quadrature_reproduces_beta_moments(alpha: float, beta: float) -> None:
    x, w = beta_quadrature(alpha, beta, 1 / 16)
    assert w.sum() == pytest.approx(1.0, abs=1e-14)
    assert w @ x == pytest.approx(alpha / (alpha + beta), abs=1e-12)
    second = alpha * (alpha + 1) / ((alpha + beta) * (alpha + beta + 1))
    assert w @ (x * x) == pytest.approx(second, abs=1e-12)


def test_fixed_rate_counts_are_poisson() -> None:
    counts = CountDistribution.of(FixedRate(2.5))
    expected = [math.exp(-2.5) * 2.5**k / math.factorial(k) for k in range(12)]
    assert counts.pmf[:12] == pytest.approx(expected, rel=1e-12)
    assert counts.p_zero == pytest.approx(math.exp(-2.5), rel=1e-12)
    assert counts.cdf[-1] == 1.0


@pytest.mark.parametrize(
    "pert",
    [Pert(0.1, 0.5, 2.0), Pert(0.0, 0.0, 3.0), Pert(2.0, 10.0, 60.0), Pert(5.0, 200.0, 1000.0)],
)
def test_pert_rate_counts_match_the_mixture_integral(pert: Pert) -> None:
    """P(N = k) = ∫ Poisson(k; λ) PERT(λ) dλ, against a 400,000-point midpoint rule; the
    count's mean is the PERT mean and its variance mean + variance (law of total variance)."""
    counts = CountDistribution.of(pert)
    k = np.arange(len(counts.cdf), dtype=np.float64)
    assert counts.mean == pytest.approx(pert.mean, rel=1e-9)
    variance = counts.pmf @ (k * k) - counts.mean**2
    assert variance == pytest.approx(pert.mean + pert.variance, rel=1e-7)
    rates, weights = _pert_density_grid(pert)
    for count in sorted({0, 1, 2, int(pert.mode), int(pert.mean), int(pert.high)}):
        log_pmf = count * np.log(np.maximum(rates, 1e-300)) - rates - math.lgamma(count + 1)
        reference = float(weights @ np.exp(log_pmf))
        assert counts.pmf[count] == pytest.approx(reference, rel=1e-4, abs=1e-12)


def test_counts_from_uniforms_follow_the_table() -> None:
    counts = CountDistribution.of(Pert(0.5, 1.0, 4.0))
    uniforms = np.random.default_rng(3).random(500_000)
    drawn = np.bincount(counts.counts_from_uniform(uniforms), minlength=len(counts.cdf))
    assert drawn / len(uniforms) == pytest.approx(counts.pmf, abs=0.003)
    edges = counts.counts_from_uniform(np.array([0.0, counts.cdf[0], np.nextafter(1.0, 0.0)]))
    assert edges.tolist() == [0, 1, len(counts.cdf) - 1]


def test_normal_cut_points_give_the_same_counts_as_uniforms() -> None:
    counts = CountDistribution.of(Pert(0.2, 2.0, 5.0))
    cuts = counts.normal_cut_points
    assert np.all(np.diff(cuts) > 0)
    assert math.isinf(cuts[-1])
    z = np.random.default_rng(8).standard_normal(400_000)
    drawn = np.searchsorted(cuts, z, side="left")
    assert np.bincount(drawn, minlength=len(cuts)) / len(z) == pytest.approx(counts.pmf, abs=0.003)


def test_a_zero_rate_never_has_an_event() -> None:
    counts = CountDistribution.of(FixedRate(0.0))
    assert counts.cdf.tolist() == [1.0]
    assert counts.counts_from_uniform(np.array([0.0, 0.5, 0.999])).tolist() == [0, 0, 0]
