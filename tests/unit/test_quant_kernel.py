"""The kernel's shortcuts against what they replace: Box–Muller normals, the PERT's tabulated
quantile function, event years drawn by their gaps, guided search and summing by rank."""

from __future__ import annotations

import math

import numpy as np
import pytest

from openrisk.quant import CountDistribution, FixedRate, Pert
from openrisk.quant.distributions import PertQuantiles, guided_search, standard_normals
from openrisk.quant.simulation import _counts_from_uniform, _hit_years_by_gaps, _Layout


def test_box_muller_normals_have_the_normal_moments_and_tails() -> None:
    z = standard_normals(np.random.default_rng(2), 2_000_001)
    assert len(z) == 2_000_001
    se = 1 / math.sqrt(len(z))
    assert abs(z.mean()) < 4 * se
    assert z.var() == pytest.approx(1.0, abs=6 * se * math.sqrt(2))
    assert abs((z**3).mean()) < 4 * se * math.sqrt(15)
    assert (np.abs(z) > 3).mean() == pytest.approx(0.0026998, rel=0.05)


@pytest.mark.parametrize(
    ("low", "mode", "high"),
    [(1, 2, 6), (0, 0, 3), (10, 90, 100), (0.2, 0.5, 0.5), (1e3, 5e3, 4e4), (1e3, 3e3, 1e5)],
)
def test_the_pert_table_keeps_the_pert_moments(low: float, mode: float, high: float) -> None:
    pert = Pert(low, mode, high)
    table = PertQuantiles.of(pert)
    assert table.mean == pytest.approx(pert.mean, rel=5e-4)
    assert table.variance == pytest.approx(pert.variance, rel=3e-3)
    draws = table.sample(np.random.default_rng(4), 1_000_000)
    assert draws.min() >= low and draws.max() <= high
    assert abs(draws.mean() - table.mean) < 4 * math.sqrt(table.variance / len(draws))


def test_a_degenerate_pert_table_is_a_constant() -> None:
    table = PertQuantiles.of(Pert(5, 5, 5))
    assert set(table.sample(np.random.default_rng(1), 100).tolist()) == {5.0}


@pytest.mark.parametrize("cuts_of", ["cdf", "hit_cdf"])
@pytest.mark.parametrize("frequency", [FixedRate(0.3), Pert(0.5, 2.0, 6.0), Pert(200, 300, 500)])
def test_guided_search_is_searchsorted(cuts_of: str, frequency: FixedRate | Pert) -> None:
    counts = CountDistribution.of(frequency)
    cuts = getattr(counts, cuts_of)
    guide = counts.guide if cuts_of == "cdf" else counts.hit_guide
    uniforms = np.random.default_rng(5).random(200_000)
    edges = np.concatenate((cuts[:-1], np.nextafter(cuts[:-1], 0.0), [0.0]))
    for values in (uniforms, edges[(edges >= 0) & (edges < 1)]):
        expected = np.searchsorted(cuts, values, side="right")
        assert np.array_equal(guided_search(cuts, guide, values), expected)


@pytest.mark.parametrize("frequency", [FixedRate(0.05), Pert(0.01, 0.1, 0.4), FixedRate(0.25)])
def test_event_years_by_gaps_follow_the_count_law(frequency: FixedRate | Pert) -> None:
    """Gaps between event years, then counts given an event, draw the same law as a uniform
    per year: the share of years with k events is P(N = k)."""
    counts = CountDistribution.of(frequency)
    years = 400_000
    for draw in ("gaps", "per year"):
        rng = np.random.default_rng(6)
        offsets = range(0, years, 50_000)
        if draw == "gaps":
            found = [_hit_years_by_gaps(counts, rng, o, 50_000) for o in offsets]
        else:
            found = [_counts_from_uniform(counts, rng.random(50_000), o) for o in offsets]
        positions = np.concatenate([p for p, _ in found])
        events = np.concatenate([e for _, e in found])
        assert np.all(np.diff(positions) > 0) and positions.min() >= 0 and positions.max() < years
        assert events.min() >= 1
        shares = np.bincount(events, minlength=len(counts.cdf))[: len(counts.cdf)] / years
        shares[0] = 1 - len(positions) / years
        tolerance = 4 * np.sqrt(counts.pmf * (1 - counts.pmf) / years) + 1e-6
        assert np.all(np.abs(shares - counts.pmf) <= tolerance), draw


def test_summing_by_rank_is_summing_by_year() -> None:
    rng = np.random.default_rng(8)
    counts = rng.poisson(1.3, 5_000) + 1
    losses = rng.random(int(counts.sum()))
    by_year = _Layout.of(counts, by_rank=False)
    by_rank = _Layout.of(counts, by_rank=True)
    # the same events, in each layout's order: rank r of year y sits where the layout puts it
    order = np.empty(len(losses), dtype=np.int64)
    starts = np.cumsum(counts) - counts
    slot = len(counts)
    order[: len(counts)] = starts
    for rank, (having, offset) in enumerate(by_rank.passes, start=1):
        assert offset == slot
        order[offset : offset + len(having)] = starts[having] + rank
        slot += len(having)
    assert slot == len(losses)
    assert np.allclose(by_rank.sums(losses[order]), by_year.sums(losses), rtol=1e-12)
