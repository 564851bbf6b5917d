"""Geometry of the dashboard's server-rendered charts (the templates draw the SVG)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from openrisk.risks.scoring import Severity, severity_for

# the default bands keep the stylesheet's colours; other bands are drawn in their own
DEFAULT_BANDS = frozenset(s.value for s in Severity)


def _luminance(color: str) -> float:
    def channel(hex_pair: str) -> float:
        c = int(hex_pair, 16) / 255
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (channel(color[i : i + 2]) for i in (1, 3, 5))
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def text_on(color: str) -> str:
    """Black or white, whichever reads better on ``color`` (``#rrggbb``): at least 4.5:1."""
    lum = _luminance(color)
    return "#000000" if (lum + 0.05) / 0.05 >= 1.05 / (lum + 0.05) else "#ffffff"


def band_style(color: str) -> str:
    """Inline style of a band's badge or cell: its colour, with readable text."""
    return f"background: {color}; color: {text_on(color)}"


@dataclass(frozen=True)
class HeatCell:
    impact: int
    probability: int
    count: int
    severity: str  # of the cell's base score impact × probability
    color: str = ""

    @property
    def custom(self) -> bool:
        return self.severity not in DEFAULT_BANDS and bool(self.color)

    @property
    def css(self) -> str:
        base = "band" if self.custom else f"sev-{self.severity.lower()}"
        return base + (" empty" if self.count == 0 else "")

    @property
    def style(self) -> str:
        return band_style(self.color) if self.custom else ""


def heatmap(cells: Sequence[Mapping[str, Any]]) -> list[list[HeatCell]]:
    """Rows of the matrix, highest impact on top, probability 1 on the left (5×5 when the
    cells carry no band: the default model)."""
    rows: dict[int, list[HeatCell]] = {}
    for c in cells:
        impact, probability = int(c["impact"]), int(c["probability"])
        band = str(c.get("band") or severity_for(impact * probability).value)
        cell = HeatCell(impact, probability, int(c["count"]), band, str(c.get("color") or ""))
        rows.setdefault(impact, []).append(cell)
    return [sorted(rows[i], key=lambda h: h.probability) for i in sorted(rows, reverse=True)]


@dataclass(frozen=True)
class Tick:
    position: float
    label: str


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    label: str


@dataclass(frozen=True)
class LineChart:
    width: int
    height: int
    left: int
    top: int
    bottom: float  # y of the x axis
    right: float
    line: str  # polyline points
    area: str  # polygon points under the line
    y_ticks: list[Tick]
    x_ticks: list[Tick]
    bars: list[Bar]
    last: float


def _nice_step(value: float) -> float:
    """The smallest 1, 2 or 5 × 10ⁿ step with four steps reaching ``value``, at least 1: an
    axis of counts or scores reads 0, 1, 2… or 0, 5, 10…, never 0.2, 0.5."""
    if value <= 4:
        return 1.0
    rough = value / 4
    magnitude = 10 ** math.floor(math.log10(rough))
    for step in (1, 2, 5, 10):
        if rough <= step * magnitude:
            return float(step * magnitude)
    return float(10 * magnitude)


def _nice_max(value: float) -> float:
    return 4 * _nice_step(value)


def _fmt(value: float) -> str:
    return f"{value:.0f}" if value == int(value) else f"{value:.1f}"


def line_chart(
    days: Sequence[date],
    values: Sequence[float],
    *,
    bars: Sequence[float] = (),
    width: int = 640,
    height: int = 220,
) -> LineChart:
    """A line over ``days`` (optionally with per-day bars on the same scale)."""
    left, top, right_pad, bottom_pad = 44, 12, 12, 28
    plot_w, plot_h = width - left - right_pad, height - top - bottom_pad
    peak = _nice_max(max([*values, *bars, 0.0]))
    n = len(values)

    def x(i: int) -> float:
        return left + (plot_w * i / (n - 1) if n > 1 else plot_w / 2)

    def y(v: float) -> float:
        return top + plot_h - plot_h * (v / peak)

    coords = [(round(x(i), 1), round(y(v), 1)) for i, v in enumerate(values)]
    line = " ".join(f"{a},{b}" for a, b in coords)
    base = round(top + plot_h, 1)
    area = f"{coords[0][0]},{base} {line} {coords[-1][0]},{base}" if coords else ""
    slot = plot_w / max(n, 1)
    bar_w = max(min(slot * 0.6, 14.0), 1.0)
    drawn = [
        Bar(
            x=round(x(i) - bar_w / 2, 1),
            y=round(y(v), 1),
            width=round(bar_w, 1),
            height=round(base - y(v), 1),
            label=f"{days[i].isoformat()}: {_fmt(v)}",
        )
        for i, v in enumerate(bars)
        if v > 0
    ]
    y_ticks = [Tick(round(y(peak * k / 4), 1), _fmt(peak * k / 4)) for k in range(5)]
    step = max(1, math.ceil(n / 6))
    x_ticks = [Tick(round(x(i), 1), days[i].strftime("%d %b")) for i in range(0, n, step)]
    return LineChart(
        width=width,
        height=height,
        left=left,
        top=top,
        bottom=base,
        right=width - right_pad,
        line=line,
        area=area,
        y_ticks=y_ticks,
        x_ticks=x_ticks,
        bars=drawn,
        last=values[-1] if values else 0.0,
    )


def money(value: float | None) -> str:
    """A loss for people: ``1.2 M``, ``350 k``, ``980``."""
    if value is None or not math.isfinite(value):
        return "—"
    magnitude = abs(value)
    for limit, suffix in ((1e12, " T"), (1e9, " B"), (1e6, " M"), (1e3, " k")):
        if magnitude >= limit:
            scaled = value / limit
            digits = 0 if abs(scaled) >= 100 or scaled == int(scaled) else 1
            return f"{scaled:.{digits}f}{suffix}"
    return f"{value:.0f}"


def percent(value: float | None) -> str:
    if value is None:
        return "—"
    shown = value * 100
    return f"{shown:.1f} %" if shown >= 1 or shown == 0 else f"{shown:.2f} %"


@dataclass(frozen=True)
class AppetiteMark:
    x: float
    y: float
    label: str


@dataclass(frozen=True)
class ExceedanceChart:
    """A loss exceedance curve: P(annual loss > x) for x on a log scale, inherent and
    residual, and the loss appetite as a point with its guide lines."""

    width: int
    height: int
    left: int
    top: int
    bottom: float
    right: float
    inherent: str
    residual: str
    y_ticks: list[Tick]
    x_ticks: list[Tick]
    appetite: AppetiteMark | None


def exceedance_chart(
    thresholds: Sequence[float],
    inherent: Sequence[float],
    residual: Sequence[float],
    *,
    appetite: tuple[float, float] | None = None,
    width: int = 640,
    height: int = 260,
) -> ExceedanceChart:
    """Geometry of a loss exceedance curve; ``appetite`` is (threshold, max probability)."""
    left, top, right_pad, bottom_pad = 52, 12, 16, 30
    plot_w, plot_h = width - left - right_pad, height - top - bottom_pad
    losses = [t for t in thresholds if t > 0]
    if appetite is not None:
        losses.append(appetite[0])
    low = math.floor(math.log10(min(losses))) if losses else 0
    high = math.ceil(math.log10(max(losses))) if losses else 1
    if high <= low:
        high = low + 1

    def x(value: float) -> float:
        position = (math.log10(max(value, 10.0**low)) - low) / (high - low)
        return round(left + plot_w * position, 1)

    def y(probability: float) -> float:
        return round(top + plot_h - plot_h * min(max(probability, 0.0), 1.0), 1)

    def polyline(values: Sequence[float]) -> str:
        return " ".join(f"{x(t)},{y(p)}" for t, p in zip(thresholds, values, strict=True))

    step = max(1, math.ceil((high - low) / 7))
    x_ticks = [Tick(x(10.0**k), money(10.0**k)) for k in range(low, high + 1, step)]
    y_ticks = [Tick(y(k / 4), f"{25 * k} %") for k in range(5)]
    mark = None
    if appetite is not None:
        threshold, probability = appetite
        mark = AppetiteMark(
            x=x(threshold),
            y=y(probability),
            label=f"Appetite: P(loss > {money(threshold)}) ≤ {percent(probability)}",
        )
    return ExceedanceChart(
        width=width,
        height=height,
        left=left,
        top=top,
        bottom=round(top + plot_h, 1),
        right=width - right_pad,
        inherent=polyline(inherent),
        residual=polyline(residual),
        y_ticks=y_ticks,
        x_ticks=x_ticks,
        appetite=mark,
    )
