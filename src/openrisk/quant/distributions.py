"""The input distributions of a quantified risk: PERT, lognormal from a 90 % interval, and the
distribution of the number of loss events in a year.

The number of events in a year is Poisson with a rate that is itself uncertain (a PERT, or a
fixed rate). Drawing a rate and then a count for every iteration costs two expensive draws per
iteration; instead the rate is integrated out once per risk (Gauss–Jacobi quadrature against the
PERT's beta density, exact for all of its moments up to a high degree), which leaves the mixed
Poisson distribution of the count as a small table. An iteration then costs one uniform (or
normal, for correlated draws) and a comparison: the simulation pays per event, not per year.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property
from statistics import NormalDist

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]

PERT_SHAPE = 4.0
"""The weight of the most likely value in the usual (modified) beta-PERT."""

Z_90 = NormalDist().inv_cdf(0.95)
"""1.6449: a 90 % two-sided interval spans ±Z_90 standard deviations."""

_TAIL = 1e-15  # count tables stop once this much probability is left above them
_TINY_RATE = 1e-300  # keeps log(rate) finite for a zero rate (0 · log 0 counts as 0)


def _finite(*values: float) -> None:
    if not all(math.isfinite(v) for v in values):
        raise ValueError("distribution parameters must be finite numbers")


@dataclass(frozen=True, slots=True)
class Pert:
    """Beta-PERT on [low, high] with mode ``mode``: the three-point estimate analysts give."""

    low: float
    mode: float
    high: float
    shape: float = PERT_SHAPE

    def __post_init__(self) -> None:
        _finite(self.low, self.mode, self.high, self.shape)
        if not self.low <= self.mode <= self.high:
            raise ValueError("PERT needs low <= most likely <= high")
        if self.shape <= 0:
            raise ValueError("PERT shape must be positive")

    @property
    def width(self) -> float:
        return self.high - self.low

    @property
    def alpha(self) -> float:
        return 1.0 + self.shape * (self.mode - self.low) / self.width if self.width else 1.0

    @property
    def beta(self) -> float:
        return 1.0 + self.shape * (self.high - self.mode) / self.width if self.width else 1.0

    @property
    def mean(self) -> float:
        return (self.low + self.shape * self.mode + self.high) / (self.shape + 2.0)

    @property
    def variance(self) -> float:
        mean = self.mean
        return (mean - self.low) * (self.high - mean) / (self.shape + 3.0)

    def sample(self, rng: np.random.Generator, size: int) -> FloatArray:
        """Exact beta draws (two gamma variates each): the reference that ``PertQuantiles``,
        what the simulation draws losses with, is checked against."""
        if self.width == 0:
            return np.full(size, self.low)
        draws = rng.beta(self.alpha, self.beta, size)
        draws *= self.width
        draws += self.low
        return draws


@dataclass(frozen=True, slots=True)
class Lognormal:
    """Lognormal loss of one event, ``exp(N(mu, sigma²))``."""

    mu: float
    sigma: float

    def __post_init__(self) -> None:
        _finite(self.mu, self.sigma)
        if self.sigma < 0:
            raise ValueError("lognormal sigma must not be negative")

    @classmethod
    def from_interval(cls, low: float, high: float, *, confidence: float = 0.90) -> Lognormal:
        """The lognormal whose central ``confidence`` interval is (low, high)."""
        _finite(low, high, confidence)
        if not 0 < low < high:
            raise ValueError("a lognormal interval needs 0 < low < high")
        if not 0 < confidence < 1:
            raise ValueError("confidence must be between 0 and 1")
        z = NormalDist().inv_cdf(0.5 + confidence / 2.0)
        log_low, log_high = math.log(low), math.log(high)
        return cls(mu=(log_low + log_high) / 2.0, sigma=(log_high - log_low) / (2.0 * z))

    @property
    def mean(self) -> float:
        return math.exp(self.mu + self.sigma**2 / 2.0)

    @property
    def median(self) -> float:
        return math.exp(self.mu)

    def sample(self, rng: np.random.Generator, size: int) -> FloatArray:
        draws = standard_normals(rng, size)
        draws *= self.sigma
        draws += self.mu
        np.exp(draws, out=draws)
        return draws


@dataclass(frozen=True, slots=True)
class FixedRate:
    """A known event rate per year (the count is plain Poisson)."""

    rate: float

    def __post_init__(self) -> None:
        _finite(self.rate)
        if self.rate < 0:
            raise ValueError("an event rate must not be negative")

    @property
    def mean(self) -> float:
        return self.rate

    @property
    def variance(self) -> float:
        return 0.0


Frequency = Pert | FixedRate
LossMagnitude = Lognormal | Pert

_TWO_PI = np.float32(2.0 * math.pi)


def standard_normals(rng: np.random.Generator, size: int) -> FloatArray:
    """``size`` standard normal draws by Box–Muller, about four times cheaper than numpy's
    ziggurat here: the radius √(−2 ln u) from float64 uniforms (so the tail reaches 8.5σ, as
    far as 2⁻⁵³ allows), the angle in float32, where numpy's sine and cosine are vectorised
    (its float64 ones are twenty times slower). The angle's 24 bits and float32 rounding
    (about 1e-7) are far below what 100,000 years can resolve."""
    half = (size + 1) // 2
    radius = rng.random(half)
    np.subtract(1.0, radius, out=radius)  # (0, 1]: the logarithm stays finite
    np.log(radius, out=radius)
    radius *= -2.0
    np.sqrt(radius, out=radius)
    angle = rng.random(half, dtype=np.float32)
    angle *= _TWO_PI
    draws = np.empty(2 * half)
    np.multiply(np.cos(angle), radius, out=draws[:half])
    np.multiply(np.sin(angle), radius, out=draws[half:])
    return draws[:size]


PERT_KNOTS = 4096
_PERT_GRID = 1 << 11


@dataclass(frozen=True)
class PertQuantiles:
    """A PERT's quantile function tabulated at ``PERT_KNOTS + 1`` equally spaced
    probabilities and interpolated linearly: a draw is one uniform, two table reads and a
    multiply-add instead of two gamma variates (numpy's beta). The table comes from the beta
    density integrated on a grid crowded at both ends; its mean is the PERT's within about
    1e-4 relative and its variance within 0.2 % (the cells at the ends, where the quantile
    function is steep, are what linear interpolation gets least right). ``mean`` and
    ``variance`` give the table's own, exactly."""

    values: FloatArray  # Q(j / PERT_KNOTS), j = 0 … PERT_KNOTS
    slopes: FloatArray  # Q(j + 1) − Q(j)

    @classmethod
    def of(cls, pert: Pert) -> PertQuantiles:
        if pert.width == 0:
            values = np.full(PERT_KNOTS + 1, pert.low)
            return cls(values=values, slopes=np.zeros(PERT_KNOTS))
        # x = sin²(πt/2) crowds the grid at both ends, where the density is least smooth:
        # in t it is ∝ sin(πt/2)^(2α−1)·cos(πt/2)^(2β−1), which vanishes smoothly at 0 and 1
        t = np.linspace(0.0, 1.0, _PERT_GRID + 1)
        half_angle = (math.pi / 2.0) * t
        with np.errstate(divide="ignore"):  # log 0 at an end: the density is 0 there
            log_density = (2.0 * pert.alpha - 1.0) * np.log(np.sin(half_angle))
            log_density += (2.0 * pert.beta - 1.0) * np.log(np.cos(half_angle))
        log_density[-1] = -np.inf  # cos(π/2) is 6e-17, not 0, in floating point
        density = np.exp(log_density - log_density[1:-1].max())
        cdf = np.concatenate(([0.0], np.cumsum((density[1:] + density[:-1]) / 2.0)))
        cdf /= cdf[-1]
        probabilities = np.linspace(0.0, 1.0, PERT_KNOTS + 1)
        where = np.sin((math.pi / 2.0) * np.interp(probabilities, cdf, t)) ** 2
        values = pert.low + pert.width * where
        values[0], values[-1] = pert.low, pert.high
        return cls(values=values, slopes=np.diff(values))

    def sample(self, rng: np.random.Generator, size: int) -> FloatArray:
        draws = rng.random(size)
        draws *= PERT_KNOTS
        cells = draws.astype(np.intp)
        draws -= cells  # the position within the cell
        draws *= self.slopes[cells]
        draws += self.values[cells]
        return draws

    @property
    def mean(self) -> float:
        """The mean of the interpolated quantile function: the mean of what ``sample`` draws."""
        return float((self.values[:-1] + self.slopes / 2.0).mean())

    @property
    def variance(self) -> float:
        a, d = self.values[:-1], self.slopes
        second = float((a * a + a * d + d * d / 3.0).mean())
        return second - self.mean**2


def beta_quadrature(alpha: float, beta: float, step: float) -> tuple[FloatArray, FloatArray]:
    """Nodes on [0, 1] and weights (summing to 1) that integrate against the Beta(alpha, beta)
    density: tanh-sinh (double exponential) quadrature with step ``step``, which converges
    exponentially even where the density is not smooth at 0 or 1. Pure element-wise numpy: no
    linear algebra, whose thread pool costs more than the work on matrices this small."""
    half_width = math.ceil(3.5 / step)
    t = np.arange(-half_width, half_width + 1) * step
    s = (math.pi / 2.0) * np.sinh(t)
    log_x = -np.logaddexp(0.0, -2.0 * s)  # x = (1 + tanh s) / 2, computed without cancelling
    log_one_minus_x = -np.logaddexp(0.0, 2.0 * s)
    log_cosh_s = np.abs(s) + np.log1p(np.exp(-2.0 * np.abs(s))) - math.log(2.0)
    log_weights = np.log(np.cosh(t)) - 2.0 * log_cosh_s
    log_weights += (alpha - 1.0) * log_x + (beta - 1.0) * log_one_minus_x
    weights = np.exp(log_weights - log_weights.max())
    return np.exp(log_x), weights / weights.sum()


GUIDE_CELLS = 1024


def guide_table(cuts: FloatArray) -> NDArray[np.intp]:
    """For each of ``GUIDE_CELLS`` equal cells of [0, 1), how many ``cuts`` lie at or below
    its start: where ``guided_search`` starts looking."""
    starts = np.arange(GUIDE_CELLS) / GUIDE_CELLS
    return np.searchsorted(cuts, starts, side="right").astype(np.intp)


def guided_search(
    cuts: FloatArray, guide: NDArray[np.intp], uniforms: FloatArray
) -> NDArray[np.intp]:
    """``np.searchsorted(cuts, uniforms, side="right")`` for ``uniforms`` in [0, 1) and
    increasing ``cuts`` ending with 1.0, by a guide table: the cell of a uniform says where to
    start, and a cell rarely holds a cut, so one or two vectorised steps finish it — a third
    of the cost of a binary search, whose branches a random input mispredicts."""
    found = guide[(uniforms * GUIDE_CELLS).astype(np.intp)]
    todo = np.flatnonzero(cuts[found] <= uniforms)
    while len(todo):
        found[todo] += 1
        todo = todo[cuts[found[todo]] <= uniforms[todo]]
    return found


def _poisson_log_pmf(rates: FloatArray, counts: FloatArray) -> FloatArray:
    """log P(N = k | rate) for every rate (rows) and count (columns)."""
    log_rates = np.log(np.maximum(rates, _TINY_RATE))
    log_factorials = _log_factorials(len(counts))
    log_pmf: FloatArray = log_rates[:, None] * counts[None, :]
    log_pmf -= log_factorials[None, :]
    log_pmf -= rates[:, None]
    return log_pmf


_LOG_FACTORIALS = np.zeros(1)


def _log_factorials(n: int) -> FloatArray:
    """log k! for k = 0 … n − 1, from a table that grows as needed (lgamma per entry once)."""
    global _LOG_FACTORIALS
    if len(_LOG_FACTORIALS) < n:
        size = max(n, 2 * len(_LOG_FACTORIALS), 256)
        _LOG_FACTORIALS = np.array([math.lgamma(k + 1.0) for k in range(size)])
    return _LOG_FACTORIALS[:n]


def _count_ceiling(rate: float) -> int:
    """A count that a Poisson(rate) exceeds with probability far below ``_TAIL``."""
    return math.ceil(rate + 12.0 * math.sqrt(rate) + 20.0)  # P(N > 20) < 1e-18 for rate <= 1


def _quadrature_step(pert: Pert) -> float:
    """A step fine enough that neighbouring rates (spaced at most ``width·step·π/4`` apart, in
    the middle of the range) give nearly the same Poisson law: a quarter of √rate or less."""
    middle = pert.low + pert.width / 2.0
    return min(1.0 / 8.0, math.sqrt(max(middle, 1.0)) / (math.pi * pert.width))


@dataclass(frozen=True)
class CountDistribution:
    """P(N ≤ k) for k = 0, 1, … of the yearly number of loss events, rate integrated out."""

    cdf: FloatArray

    @classmethod
    def of(cls, frequency: Frequency) -> CountDistribution:
        if isinstance(frequency, FixedRate) or frequency.width == 0:
            rates, weights = np.array([frequency.mean]), np.array([1.0])
        else:
            nodes, weights = beta_quadrature(
                frequency.alpha, frequency.beta, _quadrature_step(frequency)
            )
            rates = frequency.low + frequency.width * nodes
        top = _count_ceiling(float(rates.max()))
        counts = np.arange(top + 1, dtype=np.float64)
        pmf = (weights[:, None] * np.exp(_poisson_log_pmf(rates, counts))).sum(axis=0)
        cdf = np.minimum(np.cumsum(pmf), 1.0)
        last = int(np.searchsorted(cdf, 1.0 - _TAIL)) + 1
        cdf = cdf[: min(last, len(cdf))].copy()
        cdf[-1] = 1.0  # the (negligible) tail beyond the table folds into its last count
        return cls(cdf=cdf)

    @property
    def p_zero(self) -> float:
        return float(self.cdf[0])

    @property
    def p_hit(self) -> float:
        """P(N ≥ 1): the chance that a year has an event."""
        return 1.0 - float(self.cdf[0])

    @cached_property
    def hit_cdf(self) -> FloatArray:
        """P(N ≤ k | N ≥ 1) for k = 1, 2, …: the count of a year known to have an event."""
        if len(self.cdf) < 2:
            return np.ones(0)
        cuts: FloatArray = np.minimum((self.cdf[1:] - self.cdf[0]) / self.p_hit, 1.0)
        cuts[-1] = 1.0
        return cuts

    @property
    def pmf(self) -> FloatArray:
        return np.diff(self.cdf, prepend=0.0)

    @property
    def mean(self) -> float:
        return float(self.pmf @ np.arange(len(self.cdf)))

    @cached_property
    def normal_cut_points(self) -> FloatArray:
        """Φ⁻¹(P(N ≤ k)): a standard normal z gives the count N = #{k : cut_k < z}, which is
        how a Gaussian copula correlates counts without changing their distribution."""
        standard = NormalDist()
        cuts = [standard.inv_cdf(p) if 0.0 < p < 1.0 else math.inf for p in self.cdf.tolist()]
        return np.array(cuts)

    @cached_property
    def guide(self) -> NDArray[np.intp]:
        return guide_table(self.cdf)

    @cached_property
    def hit_guide(self) -> NDArray[np.intp]:
        return guide_table(self.hit_cdf)

    def counts_from_uniform(self, uniforms: FloatArray) -> NDArray[np.int64]:
        """Inverse-transform counts for ``uniforms`` in [0, 1)."""
        counts = np.searchsorted(self.cdf, uniforms, side="right")
        return np.minimum(counts, len(self.cdf) - 1).astype(np.int64, copy=False)
