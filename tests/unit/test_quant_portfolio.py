"""The register's annual loss: sums of the risks' years, contributors, appetite, correlation and
reproducibility (any order, any number of threads)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from openrisk.quant import (
    Control,
    FixedRate,
    Lognormal,
    LossAppetite,
    Pert,
    QuantifiedRisk,
    annual_losses,
    simulate_portfolio,
    simulate_risk,
)
from openrisk.quant.simulation import simulate_chunks


def _register(count: int) -> list[QuantifiedRisk]:
    rng = np.random.default_rng(2024)
    risks = []
    for i in range(count):
        mode = float(np.exp(rng.uniform(np.log(0.05), np.log(2.0))))
        low = float(np.exp(rng.uniform(np.log(1e3), np.log(1e5))))
        controls = (Control(f"m{i}", 0.3, 0.2, 5_000.0),) if i % 3 == 0 else ()
        risks.append(
            QuantifiedRisk(
                f"risk-{i}",
                Pert(mode / 3, mode, mode * 3),
                Lognormal.from_interval(low, low * 40),
                controls,
            )
        )
    return risks


def test_portfolio_is_the_year_by_year_sum_of_its_risks() -> None:
    risks = _register(12)
    result = simulate_portfolio(risks, iterations=20_000, seed=5, top=12)
    inherent = sum(annual_losses(r, iterations=20_000, seed=5).inherent for r in risks)
    residual = sum(annual_losses(r, iterations=20_000, seed=5).residual for r in risks)
    assert isinstance(inherent, np.ndarray)
    assert isinstance(residual, np.ndarray)
    assert result.inherent.mean == pytest.approx(inherent.mean(), rel=1e-12)
    assert result.residual.p99 == pytest.approx(float(np.quantile(residual, 0.99)), rel=1e-12)
    assert result.inherent.p95 == pytest.approx(float(np.quantile(inherent, 0.95)), rel=1e-12)
    assert result.inherent.p_at_least_one == pytest.approx((inherent > 0).mean())
    assert result.risk_count == 12


def test_contributors_are_the_risks_ales_and_their_shares() -> None:
    risks = _register(20)
    result = simulate_portfolio(risks, iterations=20_000, seed=8, top=20)
    by_key = {c.key: c for c in result.contributors}
    for risk in risks[:5]:
        alone = simulate_risk(risk, iterations=20_000, seed=8)
        assert by_key[risk.key].ale_inherent == pytest.approx(alone.inherent.mean, rel=1e-12)
        assert by_key[risk.key].ale_residual == pytest.approx(alone.residual.mean, rel=1e-12)
    assert sum(c.share for c in result.contributors) == pytest.approx(1.0)
    assert sum(c.ale_residual for c in result.contributors) == pytest.approx(result.residual.mean)
    residuals = [c.ale_residual for c in result.contributors]
    assert residuals == sorted(residuals, reverse=True)
    assert len(simulate_portfolio(risks, iterations=1_000, seed=8, top=3).contributors) == 3


def test_same_numbers_in_any_order_and_with_any_number_of_threads() -> None:
    risks = _register(30)
    one_thread = simulate_portfolio(risks, iterations=20_000, seed=77, workers=1)
    assert simulate_portfolio(risks, iterations=20_000, seed=77, workers=4) == one_thread
    shuffled = simulate_portfolio(list(reversed(risks)), iterations=20_000, seed=77)
    assert shuffled.contributors == one_thread.contributors
    assert shuffled.inherent.mean == pytest.approx(one_thread.inherent.mean, rel=1e-12)
    assert shuffled.residual.p99 == pytest.approx(one_thread.residual.p99, rel=1e-12)
    assert simulate_portfolio(risks, iterations=20_000, seed=78) != one_thread


def test_appetite_verdict() -> None:
    risks = _register(10)
    result = simulate_portfolio(risks, iterations=20_000, seed=3)
    threshold = result.residual.p95
    within = simulate_portfolio(
        risks, iterations=20_000, seed=3, appetite=LossAppetite(threshold, 0.06)
    ).appetite
    above = simulate_portfolio(
        risks, iterations=20_000, seed=3, appetite=LossAppetite(threshold, 0.04)
    ).appetite
    assert within is not None
    assert above is not None
    assert within.probability_residual == pytest.approx(0.05, abs=1 / 20_000)
    assert within.within
    assert not above.within
    assert within.probability_inherent >= within.probability_residual
    assert result.appetite is None


def test_loss_appetite_is_validated() -> None:
    with pytest.raises(ValueError):
        LossAppetite(0, 0.05)
    with pytest.raises(ValueError):
        LossAppetite(1e6, 1.5)


def test_correlation_keeps_each_risks_ale_and_widens_the_tail() -> None:
    """The copula changes which years coincide, not any risk's own distribution."""
    risks = [
        QuantifiedRisk(f"same-{i}", Pert(0.1, 0.3, 1.0), Lognormal.from_interval(1e4, 1e6))
        for i in range(40)
    ]
    independent = simulate_portfolio(risks, iterations=100_000, seed=10)
    correlated = simulate_portfolio(risks, iterations=100_000, seed=10, correlation=0.6)
    assert correlated.inherent.mean == pytest.approx(independent.inherent.mean, rel=0.03)
    assert correlated.inherent.p99 > 1.3 * independent.inherent.p99
    # bad years come together: more years without any event, too
    assert correlated.inherent.p_at_least_one < independent.inherent.p_at_least_one


def test_full_correlation_makes_equal_count_laws_comonotone() -> None:
    frequency = Pert(0.5, 1.0, 2.0)
    a = QuantifiedRisk("a", frequency, Lognormal(8, 1))
    b = QuantifiedRisk("b", frequency, Lognormal(9, 0.5))
    common = np.random.default_rng(1).standard_normal(5_000)
    years_a = next(simulate_chunks(a, iterations=5_000, seed=1, common=common, correlation=1.0))
    years_b = next(simulate_chunks(b, iterations=5_000, seed=1, common=common, correlation=1.0))
    assert np.array_equal(years_a.positions, years_b.positions)


def test_portfolio_of_one_risk_is_that_risk() -> None:
    risk = QuantifiedRisk(
        "alone", Pert(0.5, 1.0, 4.0), Lognormal.from_interval(1e3, 1e5), (Control("m", 0.5),)
    )
    portfolio = simulate_portfolio([risk], iterations=30_000, seed=6)
    single = simulate_risk(risk, iterations=30_000, seed=6)
    assert portfolio.inherent == single.inherent
    assert portfolio.residual == single.residual
    assert portfolio.curve == single.curve


def test_empty_portfolio_and_bad_arguments() -> None:
    empty = simulate_portfolio([], iterations=1_000, seed=1)
    assert empty.inherent.mean == 0
    assert empty.contributors == ()
    assert len(empty.curve.thresholds) >= 50
    risk = QuantifiedRisk("r", FixedRate(1.0), Lognormal(1, 1))
    with pytest.raises(ValueError):
        simulate_portfolio([risk, risk], iterations=1_000, seed=1)
    with pytest.raises(ValueError):
        simulate_portfolio([risk], iterations=1_000, seed=1, correlation=1.5)
    with pytest.raises(ValueError):
        simulate_portfolio([risk], iterations=0, seed=1)


def test_closed_form_for_a_portfolio_of_poisson_risks() -> None:
    """Independent compound Poisson risks add up to a compound Poisson with λ = Σλᵢ."""
    risks = [QuantifiedRisk(f"p{i}", FixedRate(0.4), Lognormal(10, 0.6)) for i in range(5)]
    result = simulate_portfolio(risks, iterations=100_000, seed=31)
    assert result.inherent.mean == pytest.approx(5 * 0.4 * math.exp(10 + 0.18), rel=0.01)
    assert result.inherent.p_at_least_one == pytest.approx(1 - math.exp(-2.0), rel=0.01)
