"""Speed and memory of the quantitative engine (``openrisk.quant``).

    python -m benchmarks.quant_bench [--risks 1000] [--iterations 100000] [--repeats 5]

Measures, in one run and on one synthetic register:

* one risk at ``--iterations`` years (``simulate_risk``: inherent, residual, two mitigations
  alone, percentiles and the loss exceedance curve), for a typical and a frequent risk;
* the portfolio of ``--risks`` quantified risks at ``--iterations`` years
  (``simulate_portfolio``), independent and with correlated counts; its peak memory is taken
  in a fresh process (peak RSS from ``getrusage``, and the peak of numpy's and Python's
  allocations from ``tracemalloc``);
* the same model written as a per-risk pure-Python loop (``random``), run on a reduced size
  and extrapolated linearly to the full size, and the textbook vectorised numpy version (a
  rate and a Poisson count drawn for every year), run on a tenth of the risks and extrapolated.

Prints wall-clock and CPU time (min and median over the repeats) and the machine. On a shared
machine the CPU column is the steadier one: wall time also counts time other processes held
the cores. The synthetic register: most-likely frequencies log-uniform in [0.01, 3] events a
year (PERT from 0.2–0.8× to 1.5–4× of it), losses per event a lognormal 90 % interval
(low log-uniform in [1 k, 100 k], high 10–100× low; one risk in five a PERT instead), a
mitigation on every other risk.
"""

from __future__ import annotations

import argparse
import math
import multiprocessing
import os
import platform
import random
import resource
import statistics
import time
import tracemalloc
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from rich.console import Console
from rich.table import Table

from openrisk.quant import (
    Control,
    Lognormal,
    LossAppetite,
    Pert,
    QuantifiedRisk,
    simulate_portfolio,
    simulate_risk,
)

console = Console()
SEED = 20260501
TARGET_ONE_RISK_MS = 20.0
TARGET_PORTFOLIO_S = 2.0
TARGET_PEAK_MB = 500.0
TARGET_SPEEDUP = 10.0


def synthetic_register(count: int, *, seed: int = 7) -> list[QuantifiedRisk]:
    """``count`` quantified risks with the mix described in the module docstring."""
    rng = np.random.default_rng(seed)
    risks = []
    for i in range(count):
        mode = math.exp(rng.uniform(math.log(0.01), math.log(3.0)))
        frequency = Pert(mode * rng.uniform(0.2, 0.8), mode, mode * rng.uniform(1.5, 4.0))
        low = math.exp(rng.uniform(math.log(1e3), math.log(1e5)))
        high = low * rng.uniform(10.0, 100.0)
        loss = Pert(low, low * 3.0, high) if i % 5 == 0 else Lognormal.from_interval(low, high)
        controls = ()
        if i % 2:
            reductions = rng.uniform(0.0, 0.5, 2)
            controls = (Control(f"m-{i}", reductions[0], reductions[1], 10_000.0),)
        risks.append(QuantifiedRisk(f"risk-{i}", frequency, loss, controls))
    return risks


TYPICAL_RISK = QuantifiedRisk(
    "typical",
    Pert(0.5, 2.0, 6.0),
    Lognormal.from_interval(10_000, 1_000_000),
    (Control("a", 0.5, 0.2, 50_000), Control("b", 0.1, 0.3, 20_000)),
)
FREQUENT_RISK = QuantifiedRisk(
    "frequent",
    Pert(5.0, 20.0, 50.0),
    Lognormal.from_interval(1_000, 50_000),
    (Control("a", 0.5, 0.2, 50_000), Control("b", 0.1, 0.3, 20_000)),
)


@dataclass(frozen=True)
class Timing:
    label: str
    wall: list[float]
    cpu: list[float]
    note: str = ""

    @property
    def best(self) -> float:
        return min(self.wall)


def measure(label: str, run: Callable[[], object], repeats: int, note: str = "") -> Timing:
    run()  # warm-up: count tables, first-touch of memory
    wall, cpu = [], []
    for _ in range(repeats):
        c0, w0 = time.process_time(), time.perf_counter()
        run()
        wall.append(time.perf_counter() - w0)
        cpu.append(time.process_time() - c0)
    return Timing(label, wall, cpu, note)


# --- the same model as a per-risk pure-Python loop -------------------------------------------


def _python_count(rng: random.Random, rate: float) -> int:
    """Poisson by Knuth's product of uniforms (fine for the rates of this register)."""
    limit, product, count = math.exp(-rate), rng.random(), 0
    while product > limit:
        product *= rng.random()
        count += 1
    return count


def _python_loss(rng: random.Random, risk: QuantifiedRisk) -> float:
    loss = risk.loss
    if isinstance(loss, Lognormal):
        return rng.lognormvariate(loss.mu, loss.sigma)
    return loss.low + loss.width * rng.betavariate(loss.alpha, loss.beta)


def python_portfolio(risks: Sequence[QuantifiedRisk], iterations: int) -> tuple[float, float]:
    """Year by year, risk by risk, event by event: the loop numpy replaces."""
    rng = random.Random(SEED)
    inherent_total = [0.0] * iterations
    residual_total = [0.0] * iterations
    for risk in risks:
        frequency = risk.frequency
        assert isinstance(frequency, Pert)
        keep, factor = risk.keep_probability, risk.loss_factor
        low, width, alpha, beta = frequency.low, frequency.width, frequency.alpha, frequency.beta
        for year in range(iterations):
            rate = low + width * rng.betavariate(alpha, beta)
            inherent = residual = 0.0
            for _ in range(_python_count(rng, rate)):
                loss = _python_loss(rng, risk)
                inherent += loss
                if rng.random() < keep:
                    residual += loss * factor
            inherent_total[year] += inherent
            residual_total[year] += residual
    inherent_total.sort()
    residual_total.sort()
    return statistics.fmean(inherent_total), residual_total[int(0.99 * iterations)]


# --- the textbook vectorised version: a rate and a count for every year -----------------------


def naive_numpy_portfolio(risks: Sequence[QuantifiedRisk], iterations: int) -> float:
    rng = np.random.default_rng(SEED)
    total = np.zeros(iterations)
    for risk in risks:
        frequency = risk.frequency
        assert isinstance(frequency, Pert)
        counts = rng.poisson(frequency.sample(rng, iterations))
        losses = risk.loss.sample(rng, int(counts.sum()))
        total += np.bincount(np.repeat(np.arange(iterations), counts), losses, iterations)
    return float(np.quantile(total, 0.99))


# --- peak memory in a fresh process ------------------------------------------------------------


def _current_rss_kib() -> float:
    with open("/proc/self/statm", encoding="ascii") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1024


def _memory_probe(risks: int, iterations: int, queue: multiprocessing.Queue[tuple]) -> None:
    register = synthetic_register(risks)
    baseline = _current_rss_kib()
    tracemalloc.start()
    simulate_portfolio(register, iterations=iterations, seed=SEED)
    _, traced_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    queue.put((baseline / 1024, peak / 1024, traced_peak / 2**20))


def peak_memory(risks: int, iterations: int) -> tuple[float, float, float]:
    """(RSS just before the run, the process's peak RSS, tracemalloc peak during the run), in
    MiB, from a fresh process (the peak RSS includes the interpreter and its imports)."""
    context = multiprocessing.get_context("spawn")
    queue: multiprocessing.Queue[tuple] = context.Queue()
    process = context.Process(target=_memory_probe, args=(risks, iterations, queue))
    process.start()
    result = queue.get()
    process.join()
    return result


def machine() -> str:
    model = platform.processor() or "?"
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            model = next(line.split(":", 1)[1].strip() for line in info if "model name" in line)
        with open("/proc/meminfo", encoding="utf-8") as info:
            memory_kb = int(next(line.split()[1] for line in info if line.startswith("MemTotal")))
        memory = f"{memory_kb / 2**20:.1f} GiB"
    except (OSError, StopIteration):
        memory = "?"
    return (
        f"{os.cpu_count()} cores ({model}), {memory}, Python {platform.python_version()}, "
        f"numpy {np.__version__}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--risks", type=int, default=1000)
    parser.add_argument("--iterations", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--python-risks", type=int, default=20)
    parser.add_argument("--python-iterations", type=int, default=10_000)
    args = parser.parse_args()
    n, count = args.iterations, args.risks

    console.print(f"machine: {machine()}")
    console.print(f"load average before: {os.getloadavg()}")
    register = synthetic_register(count)
    events = sum(r.expected_events for r in register)
    console.print(f"register: {count} risks, {events:.0f} expected loss events a year in all")

    one = [
        measure(
            f"one risk, {n:,} years ({name})",
            lambda risk=risk: simulate_risk(risk, iterations=n, seed=SEED),
            args.repeats * 4,
            f"{risk.expected_events:g} events/yr",
        )
        for name, risk in (("typical", TYPICAL_RISK), ("frequent", FREQUENT_RISK))
    ]
    appetite = LossAppetite(threshold=events * 2e5, max_probability=0.05)
    portfolio = [
        measure(
            f"portfolio, {count:,} risks × {n:,} years{label}",
            lambda rho=rho: simulate_portfolio(
                register, iterations=n, seed=SEED, correlation=rho, appetite=appetite
            ),
            args.repeats,
            f"{os.cpu_count()} threads",
        )
        for rho, label in ((0.0, ""), (0.3, ", correlated ρ=0.3"))
    ]
    tenth = register[: max(1, count // 10)]
    naive = measure(
        "textbook numpy (rate + count per year)",
        lambda: naive_numpy_portfolio(tenth, n),
        1,
        f"{len(tenth)} risks, ×{count / len(tenth):g} extrapolated",
    )
    small = register[: args.python_risks]
    python = measure(
        "pure-Python loop per risk",
        lambda: python_portfolio(small, args.python_iterations),
        1,
        f"{len(small)} risks × {args.python_iterations:,} years, extrapolated",
    )
    python_scale = (count / len(small)) * (n / args.python_iterations)
    python_full = python.best * python_scale
    naive_full = naive.best * count / len(tenth)
    baseline_rss, peak_rss, traced = peak_memory(count, n)

    table = Table(title="openrisk.quant")
    for column in ("case", "wall min", "wall median", "CPU median", "note"):
        table.add_column(column, justify="left" if column in ("case", "note") else "right")
    for timing in one:
        table.add_row(
            timing.label,
            f"{timing.best * 1e3:.1f} ms",
            f"{statistics.median(timing.wall) * 1e3:.1f} ms",
            f"{statistics.median(timing.cpu) * 1e3:.1f} ms",
            timing.note,
        )
    for timing in portfolio:
        table.add_row(
            timing.label,
            f"{timing.best:.2f} s",
            f"{statistics.median(timing.wall):.2f} s",
            f"{statistics.median(timing.cpu):.2f} s",
            timing.note,
        )
    table.add_row(
        naive.label,
        f"{naive_full:.2f} s",
        "",
        f"{statistics.median(naive.cpu) * count / len(tenth):.2f} s",
        naive.note,
    )
    table.add_row(
        python.label,
        f"{python_full:.0f} s",
        "",
        f"{statistics.median(python.cpu) * python_scale:.0f} s",
        f"{python.note} (measured {python.best:.2f} s)",
    )
    console.print(table)
    best = portfolio[0].best
    console.print(
        f"portfolio peak RSS {peak_rss:.0f} MiB (process before the run: {baseline_rss:.0f} MiB),"
        f" tracemalloc peak {traced:.0f} MiB"
    )
    cpu = statistics.median(portfolio[0].cpu)
    python_cpu = statistics.median(python.cpu) * python_scale
    naive_cpu = statistics.median(naive.cpu) * count / len(tenth)
    console.print(
        f"speed-up over the pure-Python loop: {python_full / best:,.0f}× wall,"
        f" {python_cpu / cpu:,.0f}× CPU; over the textbook numpy version:"
        f" {naive_full / best:.1f}× wall, {naive_cpu / cpu:.1f}× CPU"
    )
    console.print(f"load average after: {os.getloadavg()}")
    verdicts = {
        f"one typical risk < {TARGET_ONE_RISK_MS:g} ms": one[0].best * 1e3 < TARGET_ONE_RISK_MS,
        f"portfolio < {TARGET_PORTFOLIO_S:g} s": best < TARGET_PORTFOLIO_S,
        f"peak RSS < {TARGET_PEAK_MB:g} MB": peak_rss * 2**20 / 1e6 < TARGET_PEAK_MB,
        f"≥ {TARGET_SPEEDUP:g}× the Python loop": python_full / best >= TARGET_SPEEDUP,
    }
    for target, met in verdicts.items():
        console.print(f"{'met' if met else 'MISSED'}: {target}")


if __name__ == "__main__":
    main()
