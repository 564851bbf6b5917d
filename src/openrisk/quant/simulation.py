"""The Monte Carlo kernel: one risk's yearly losses, chunk by chunk, without a loop over years.

For a chunk of iterations (simulated years) the kernel finds the years with at least one event
and their counts at once — for a rare risk by drawing the gaps between such years, so that it
costs per event year, not per year — then draws one loss per event for the whole chunk and
adds each year's losses up, rank by rank while years hold few events and with
``np.add.reduceat`` once they hold many. Only the years with an event are kept
(``Chunk.positions``), so memory and time follow the number of events. Chunks are sized so that
a chunk holds about ``EVENTS_PER_CHUNK`` events, which bounds memory whatever the frequency.

Mitigations reduce the residual loss by *thinning*: each event of the inherent draw survives
a frequency reduction with probability ``1 − reduction`` (a Poisson process thinned this way is
the Poisson process of the reduced rate), and each surviving loss is scaled by
``1 − loss reduction``. Residual years are therefore the inherent years with fewer, smaller
events — residual loss never exceeds inherent loss in any year, and their difference carries
no extra sampling noise.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
from numpy.typing import NDArray

from openrisk.quant.distributions import (
    CountDistribution,
    FloatArray,
    Frequency,
    Lognormal,
    LossMagnitude,
    PertQuantiles,
    guided_search,
    standard_normals,
)

IntArray = NDArray[np.int64]

EVENTS_PER_CHUNK = 1 << 19
MIN_CHUNK = 1 << 8
MAX_CHUNK = 1 << 17
GAPS_BELOW = 0.25  # below this chance of an event in a year, event years are drawn by gaps
RANK_PASSES_UP_TO = 3.0  # events per event year up to which years are summed rank by rank
_EVENTS_STREAM, _THINNING_STREAM = 0, 1
_COMMON_FACTOR_KEY = "openrisk.quant:common-factor"


@dataclass(frozen=True, slots=True)
class Control:
    """A mitigation as the simulation sees it: how much it cuts frequency and loss, and its
    yearly cost (for its return on security investment)."""

    key: str
    frequency_reduction: float = 0.0
    loss_reduction: float = 0.0
    annual_cost: float = 0.0

    def __post_init__(self) -> None:
        for name in ("frequency_reduction", "loss_reduction"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1")
        if not (math.isfinite(self.annual_cost) and self.annual_cost >= 0):
            raise ValueError("annual_cost must be a non-negative number")

    @property
    def keep_probability(self) -> float:
        return 1.0 - self.frequency_reduction

    @property
    def loss_factor(self) -> float:
        return 1.0 - self.loss_reduction


@dataclass(frozen=True)
class QuantifiedRisk:
    """A risk's quantitative inputs. ``key`` (the risk's id) seeds its own random streams, so
    its draws are the same alone or in any portfolio, in any order."""

    key: str
    frequency: Frequency
    loss: LossMagnitude
    controls: tuple[Control, ...] = field(default=())

    @cached_property
    def counts(self) -> CountDistribution:
        return CountDistribution.of(self.frequency)

    @property
    def keep_probability(self) -> float:
        return math.prod(c.keep_probability for c in self.controls)

    @property
    def loss_factor(self) -> float:
        return math.prod(c.loss_factor for c in self.controls)

    @property
    def expected_events(self) -> float:
        return self.frequency.mean

    @cached_property
    def loss_sampler(self) -> Callable[[np.random.Generator, int], FloatArray]:
        """Draws ``size`` losses of one event: a lognormal directly, a PERT through its
        tabulated quantile function (``PertQuantiles``)."""
        if isinstance(self.loss, Lognormal):
            return self.loss.sample
        return PertQuantiles.of(self.loss).sample

    @property
    def by_rank(self) -> bool:
        """Whether years are summed rank by rank (few events per event year) or by year."""
        p_hit = self.counts.p_hit
        return p_hit <= 0.0 or self.expected_events / p_hit <= RANK_PASSES_UP_TO

    @property
    def chunk_size(self) -> int:
        """Years per chunk: a power of two holding about ``EVENTS_PER_CHUNK`` events."""
        wanted = EVENTS_PER_CHUNK / max(self.expected_events, 1e-9)
        size = 1 << max(0, math.floor(math.log2(wanted)))
        return int(min(MAX_CHUNK, max(MIN_CHUNK, size)))


@dataclass(frozen=True, slots=True)
class Chunk:
    """The years ``offset .. offset + size`` of one risk; arrays are indexed like ``positions``
    (the absolute iterations with at least one inherent event, increasing). ``control_totals``
    is, per control, the chunk's total loss with that control alone (only its mean is used, so
    no year-by-year sums are made for it)."""

    offset: int
    size: int
    positions: IntArray
    inherent: FloatArray
    residual: FloatArray
    control_totals: tuple[float, ...]


def _key_word(key: str) -> int:
    return int.from_bytes(hashlib.sha256(key.encode("utf-8")).digest()[:16], "big")


def stream(seed: int, key: str, purpose: int) -> np.random.Generator:
    """An independent generator for (seed, key, purpose), independent of any ordering."""
    sequence = np.random.SeedSequence(seed, spawn_key=(_key_word(key), purpose))
    return np.random.Generator(np.random.PCG64(sequence))


def common_factor(seed: int, iterations: int) -> FloatArray:
    """One standard normal per year shared by every risk of a correlated portfolio."""
    return stream(seed, _COMMON_FACTOR_KEY, _EVENTS_STREAM).standard_normal(iterations)


def _counts_from_uniform(
    counts: CountDistribution, uniforms: FloatArray, offset: int
) -> tuple[IntArray, IntArray]:
    cdf = counts.cdf
    positions = np.flatnonzero(uniforms >= cdf[0])
    hit = uniforms[positions]
    events = np.ones(len(positions), dtype=np.int64)
    if len(cdf) > 2:
        several = np.flatnonzero(hit >= cdf[1])
        events[several] = guided_search(cdf, counts.guide, hit[several])
    positions += offset
    return positions, events


def _counts_from_normal(
    counts: CountDistribution, latent: FloatArray, offset: int
) -> tuple[IntArray, IntArray]:
    cuts = counts.normal_cut_points
    positions = np.flatnonzero(latent > cuts[0])
    hit = latent[positions]
    events = np.ones(len(positions), dtype=np.int64)
    if len(cuts) > 2:
        several = np.flatnonzero(hit > cuts[1])
        events[several] = np.searchsorted(cuts, hit[several], side="left")
    positions += offset
    return positions, events


def _hit_years_by_gaps(
    counts: CountDistribution, rng: np.random.Generator, offset: int, size: int
) -> tuple[IntArray, IntArray]:
    """The years with an event and their counts, drawn without a draw per year: years have an
    event independently with probability p, so the gaps between them are geometric (drawn by
    inversion, ⌊ln u / ln(1 − p)⌋ + 1), and each such year's count follows the count's law
    given at least one event. For a rare risk this costs per event year, not per year."""
    p = counts.p_hit
    if p <= 0.0:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
    log_miss = math.log1p(-p)
    found = []
    last = -1
    while True:
        expected = (size - 1 - last) * p
        wanted = int(expected + 6.0 * math.sqrt(expected) + 16.0)
        gaps = rng.random(wanted)
        np.subtract(1.0, gaps, out=gaps)  # (0, 1]
        np.log(gaps, out=gaps)
        gaps /= log_miss
        np.minimum(gaps, size, out=gaps)  # a gap past the chunk ends it; no int64 overflow
        years = np.cumsum(gaps.astype(np.int64) + 1)
        years += last
        inside = int(np.searchsorted(years, size))
        found.append(years[:inside])
        if inside < wanted:
            break
        last = int(years[-1])
    positions = found[0] if len(found) == 1 else np.concatenate(found)
    cuts = counts.hit_cdf
    events = np.ones(len(positions), dtype=np.int64)
    if len(cuts) > 1:
        uniforms = rng.random(len(positions))
        several = np.flatnonzero(uniforms >= cuts[0])
        events[several] = guided_search(cuts, counts.hit_guide, uniforms[several]) + 1
    positions += offset
    return positions, events


def _draw_counts(
    risk: QuantifiedRisk,
    rng: np.random.Generator,
    offset: int,
    size: int,
    common: FloatArray | None,
    correlation: float,
) -> tuple[IntArray, IntArray]:
    if common is None or correlation == 0.0:
        if risk.counts.p_hit < GAPS_BELOW:
            return _hit_years_by_gaps(risk.counts, rng, offset, size)
        return _counts_from_uniform(risk.counts, rng.random(size), offset)
    latent = standard_normals(rng, size)
    latent *= math.sqrt(1.0 - correlation)
    latent += math.sqrt(correlation) * common[offset : offset + size]
    return _counts_from_normal(risk.counts, latent, offset)


@dataclass(frozen=True, slots=True)
class _Layout:
    """Where each event of a chunk sits among the losses drawn for it, so that a year's loss is
    the sum of its events' losses. By rank (``passes``): the first ``years`` losses are the
    first event of every year with an event, then come the second events of the years with
    two or more, and so on; a pass adds one rank to the years that have it, touching only
    those. By year (``starts``): each year's events are consecutive and ``np.add.reduceat``
    sums them, which is cheaper once years hold several events each."""

    years: int
    events: int
    passes: tuple[tuple[IntArray, int], ...] = ()
    starts: IntArray | None = None

    @classmethod
    def of(cls, counts: IntArray, *, by_rank: bool) -> _Layout:
        years, events = len(counts), int(counts.sum())
        if events == years:
            return cls(years=years, events=events)
        if not by_rank:
            return cls(years=years, events=events, starts=np.cumsum(counts) - counts)
        passes = []
        having = np.flatnonzero(counts >= 2)
        offset, rank = years, 2
        while len(having):
            passes.append((having, offset))
            offset += len(having)
            having = having[counts[having] > rank]
            rank += 1
        return cls(years=years, events=events, passes=tuple(passes))

    def sums(self, losses: FloatArray) -> FloatArray:
        """Each year's total of ``losses`` (one per event, laid out as described above)."""
        if self.events == self.years:
            return losses
        if self.starts is not None:
            return np.add.reduceat(losses, self.starts)
        sums = losses[: self.years].copy()
        for having, offset in self.passes:
            sums[having] += losses[offset : offset + len(having)]
        return sums


@dataclass(frozen=True, slots=True)
class _Events:
    """One chunk's events: their losses, how they make up the years, the yearly sums and (when
    some control cuts frequency) one uniform per event deciding its survival."""

    losses: FloatArray
    layout: _Layout
    inherent: FloatArray
    survival: NDArray[np.float32] | None


def _thinned(events: _Events, keep: float, factor: float) -> FloatArray:
    """Yearly sums of the events that survive ``keep``, scaled by ``factor``."""
    if events.survival is None or keep >= 1.0:
        return events.inherent if factor == 1.0 else events.inherent * factor
    surviving = events.losses * (events.survival < keep)  # a masked product is vectorised
    sums = events.layout.sums(surviving)
    sums *= factor
    return sums


def _thinned_total(events: _Events, keep: float, factor: float) -> float:
    """The sum over all the chunk's years of what ``_thinned`` gives, without the years."""
    if events.survival is None or keep >= 1.0:
        return float(events.inherent.sum()) * factor
    # the product with the mask, then a sum: ten times faster than ``sum(where=…)``
    return float((events.losses * (events.survival < keep)).sum()) * factor


def simulate_chunks(
    risk: QuantifiedRisk,
    *,
    iterations: int,
    seed: int,
    common: FloatArray | None = None,
    correlation: float = 0.0,
    per_control: bool = False,
) -> Iterator[Chunk]:
    """The risk's simulated years, chunk by chunk (see the module docstring)."""
    events_rng = stream(seed, risk.key, _EVENTS_STREAM)
    keep = risk.keep_probability
    needs_survival = keep < 1.0 or (
        per_control and any(c.frequency_reduction > 0 for c in risk.controls)
    )
    # made only when used: a generator costs tens of microseconds, per risk of a register
    thinning_rng = stream(seed, risk.key, _THINNING_STREAM) if needs_survival else None
    by_rank = risk.by_rank
    draw_losses = risk.loss_sampler
    size = risk.chunk_size
    for offset in range(0, iterations, size):
        n = min(size, iterations - offset)
        positions, counts = _draw_counts(risk, events_rng, offset, n, common, correlation)
        layout = _Layout.of(counts, by_rank=by_rank)
        losses = draw_losses(events_rng, layout.events)
        events = _Events(
            losses=losses,
            layout=layout,
            inherent=layout.sums(losses),
            survival=(
                None if thinning_rng is None else thinning_rng.random(len(losses), dtype=np.float32)
            ),
        )
        controls = tuple(
            _thinned_total(events, c.keep_probability, c.loss_factor)
            for c in (risk.controls if per_control else ())
        )
        yield Chunk(
            offset=offset,
            size=n,
            positions=positions,
            inherent=events.inherent,
            residual=_thinned(events, keep, risk.loss_factor),
            control_totals=controls,
        )
