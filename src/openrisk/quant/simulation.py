"""The Monte Carlo kernel: one risk's yearly losses, chunk by chunk, without a loop over years.

For a chunk of iterations (simulated years) the kernel draws every year's event count at once,
then one loss per event for the whole chunk, and sums each year's losses with
``np.add.reduceat``. Only the years with at least one event are kept (``Chunk.positions``), so
memory and time follow the number of events. Chunks are sized so that a chunk holds about
``EVENTS_PER_CHUNK`` events, which bounds memory whatever the frequency.

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
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
from numpy.typing import NDArray

from openrisk.quant.distributions import (
    CountDistribution,
    FloatArray,
    Frequency,
    LossMagnitude,
)

IntArray = NDArray[np.int64]

EVENTS_PER_CHUNK = 1 << 19
MIN_CHUNK = 1 << 8
MAX_CHUNK = 1 << 16
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
        events[several] = np.searchsorted(cdf, hit[several], side="right")
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


def _draw_counts(
    risk: QuantifiedRisk,
    rng: np.random.Generator,
    offset: int,
    size: int,
    common: FloatArray | None,
    correlation: float,
) -> tuple[IntArray, IntArray]:
    if common is None or correlation == 0.0:
        return _counts_from_uniform(risk.counts, rng.random(size), offset)
    latent = rng.standard_normal(size)
    latent *= math.sqrt(1.0 - correlation)
    latent += math.sqrt(correlation) * common[offset : offset + size]
    return _counts_from_normal(risk.counts, latent, offset)


def _yearly_sums(losses: FloatArray, starts: IntArray) -> FloatArray:
    """Each year's total, for losses in year order; ``starts`` is where each year begins. Rare
    risks mostly have one event per year with an event, and then there is nothing to add."""
    if len(losses) == len(starts):
        return losses
    return np.add.reduceat(losses, starts)


@dataclass(frozen=True, slots=True)
class _Events:
    """One chunk's events in year order: their losses, where each year starts, the yearly sums
    and (when some control cuts frequency) one uniform per event deciding its survival."""

    losses: FloatArray
    starts: IntArray
    inherent: FloatArray
    survival: FloatArray | None


def _thinned(events: _Events, keep: float, factor: float) -> FloatArray:
    """Yearly sums of the events that survive ``keep``, scaled by ``factor``."""
    if events.survival is None or keep >= 1.0:
        return events.inherent * factor
    surviving = np.where(events.survival < keep, events.losses, 0.0)
    sums = _yearly_sums(surviving, events.starts)
    sums *= factor
    return sums


def _thinned_total(events: _Events, keep: float, factor: float) -> float:
    """The sum over all the chunk's years of what ``_thinned`` gives, without the years."""
    if events.survival is None or keep >= 1.0:
        return float(events.inherent.sum()) * factor
    return float(events.losses.sum(where=events.survival < keep)) * factor


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
    thinning_rng = stream(seed, risk.key, _THINNING_STREAM)
    keep = risk.keep_probability
    needs_survival = keep < 1.0 or (
        per_control and any(c.frequency_reduction > 0 for c in risk.controls)
    )
    size = risk.chunk_size
    for offset in range(0, iterations, size):
        n = min(size, iterations - offset)
        positions, counts = _draw_counts(risk, events_rng, offset, n, common, correlation)
        losses = risk.loss.sample(events_rng, int(counts.sum()))
        starts = np.cumsum(counts) - counts
        events = _Events(
            losses=losses,
            starts=starts,
            inherent=_yearly_sums(losses, starts),
            survival=thinning_rng.random(len(losses)) if needs_survival else None,
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
