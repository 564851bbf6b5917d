"""Reports of ``openrisk loadtest`` and ``openrisk bench``: JSON, Markdown and a PNG chart."""

from __future__ import annotations

import csv
import json
import os
import platform
import re
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

MS = 1000.0


def timestamp(moment: datetime | None = None) -> str:
    """`20250101-120000` (UTC), the suffix of report file names."""
    return (moment or datetime.now(UTC)).strftime("%Y%m%d-%H%M%S")


def redact_url(url: str) -> str:
    """The URL with any password replaced by ***."""
    return re.sub(r"(://[^:/@]+:)[^@]*@", r"\1***@", url)


def machine() -> dict[str, Any]:
    """What the numbers were measured on."""
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        model = platform.processor()
    memory_gb: float | None = None
    try:
        pages, size = os.sysconf("SC_PHYS_PAGES"), os.sysconf("SC_PAGE_SIZE")
        memory_gb = round(pages * size / 1024**3, 1)
    except (ValueError, OSError, AttributeError):
        memory_gb = None
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {
        "cpus": cpus,
        "cpu_model": model,
        "memory_gb": memory_gb,
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "hostname": platform.node(),
        "load_average": load_average(),
    }


def load_average() -> list[float] | None:
    """1, 5 and 15-minute load averages: other work on the machine skews the numbers."""
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except (OSError, AttributeError):
        return None


def machine_line(info: dict[str, Any]) -> str:
    memory = f", {info['memory_gb']} GB RAM" if info.get("memory_gb") else ""
    line = f"{info['cpus']} CPU cores ({info['cpu_model'] or 'unknown CPU'}){memory}, " + (
        f"{info['platform']}, Python {info['python']}"
    )
    loads = info.get("load_average")
    if loads:
        line += f"; load average at start {' / '.join(f'{v:.2f}' for v in loads)}"
        if info.get("load_average_end"):
            line += f", at end {' / '.join(f'{v:.2f}' for v in info['load_average_end'])}"
    return line


def write_json(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, default=str) + "\n")


def fmt(value: Any, digits: int = 1, *, percent: bool = False, suffix: str = "") -> str:
    if value is None:
        return "–"
    if percent:
        return f"{float(value) * 100:.{digits}f} %"
    if isinstance(value, float):
        return f"{value:.{digits}f}{suffix}"
    return f"{value}{suffix}"


def md_table(headers: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


# --------------------------------------------------------------------------- Locust CSV files


def _number(value: str) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


@dataclass(frozen=True)
class EndpointStats:
    method: str
    name: str
    requests: int
    failures: int
    avg_ms: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float
    rps: float

    def as_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "name": self.name,
            "requests": self.requests,
            "failures": self.failures,
            "avg_ms": round(self.avg_ms, 2),
            "p50_ms": self.p50_ms,
            "p95_ms": self.p95_ms,
            "p99_ms": self.p99_ms,
            "max_ms": self.max_ms,
            "rps": round(self.rps, 2),
        }


def read_locust_stats(path: Path) -> tuple[list[EndpointStats], EndpointStats | None]:
    """Per-endpoint rows and the "Aggregated" row of Locust's ``<prefix>_stats.csv``."""
    rows: list[EndpointStats] = []
    total: EndpointStats | None = None
    if not path.exists():
        return rows, None
    with path.open(newline="") as handle:
        for row in csv.DictReader(handle):
            stats = EndpointStats(
                method=row.get("Type", ""),
                name=row.get("Name", ""),
                requests=int(_number(row.get("Request Count", "0")) or 0),
                failures=int(_number(row.get("Failure Count", "0")) or 0),
                avg_ms=_number(row.get("Average Response Time", "0")) or 0.0,
                p50_ms=_number(row.get("50%", "0")) or 0.0,
                p95_ms=_number(row.get("95%", "0")) or 0.0,
                p99_ms=_number(row.get("99%", "0")) or 0.0,
                max_ms=_number(row.get("Max Response Time", "0")) or 0.0,
                rps=_number(row.get("Requests/s", "0")) or 0.0,
            )
            if stats.name == "Aggregated":
                total = stats
            else:
                rows.append(stats)
    return rows, total


@dataclass(frozen=True)
class HistoryPoint:
    elapsed_s: float
    users: int
    rps: float
    failures_per_s: float
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    requests: int
    failures: int


def read_locust_history(path: Path) -> list[HistoryPoint]:
    """The per-second "Aggregated" rows of ``<prefix>_stats_history.csv``."""
    if not path.exists():
        return []
    points: list[HistoryPoint] = []
    start: float | None = None
    with path.open(newline="") as handle:
        for row in csv.DictReader(handle):
            if row.get("Name") != "Aggregated":
                continue
            stamp = _number(row.get("Timestamp", ""))
            if stamp is None:
                continue
            start = stamp if start is None else start
            points.append(
                HistoryPoint(
                    elapsed_s=stamp - start,
                    users=int(_number(row.get("User Count", "0")) or 0),
                    rps=_number(row.get("Requests/s", "0")) or 0.0,
                    failures_per_s=_number(row.get("Failures/s", "0")) or 0.0,
                    p50_ms=_number(row.get("50%", "")),
                    p95_ms=_number(row.get("95%", "")),
                    p99_ms=_number(row.get("99%", "")),
                    requests=int(_number(row.get("Total Request Count", "0")) or 0),
                    failures=int(_number(row.get("Total Failure Count", "0")) or 0),
                )
            )
    return points


# --------------------------------------------------------------------------- chart


def write_chart(path: Path, points: Sequence[HistoryPoint], title: str) -> bool:
    """Latency percentiles and throughput over time (matplotlib, headless); False if no data."""
    if not points:
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    elapsed = [p.elapsed_s for p in points]
    figure, (latency, throughput) = plt.subplots(
        2, 1, figsize=(10, 6.5), sharex=True, constrained_layout=True
    )
    for label, values, style in (
        ("p50", [p.p50_ms for p in points], "-"),
        ("p95", [p.p95_ms for p in points], "-"),
        ("p99", [p.p99_ms for p in points], ":"),
    ):
        latency.plot(
            elapsed, [v if v is not None else float("nan") for v in values], style, label=label
        )
    latency.set_ylabel("latency (ms, last 10 s window)")
    latency.set_title(title)
    latency.grid(alpha=0.3)
    latency.legend(loc="upper left")
    throughput.plot(elapsed, [p.rps for p in points], label="requests/s", color="tab:green")
    throughput.plot(
        elapsed, [p.failures_per_s for p in points], label="failures/s", color="tab:red"
    )
    throughput.set_ylabel("requests/s")
    throughput.set_xlabel("seconds since start")
    throughput.grid(alpha=0.3)
    users = throughput.twinx()
    users.plot(elapsed, [p.users for p in points], "--", color="tab:gray", label="users")
    users.set_ylabel("users")
    lines = throughput.get_legend_handles_labels()
    more = users.get_legend_handles_labels()
    throughput.legend(lines[0] + more[0], lines[1] + more[1], loc="upper left")
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return True


# --------------------------------------------------------------------------- markdown


def loadtest_markdown(report: dict[str, Any]) -> str:
    results, setup, server = report["results"], report["setup"], report["server"]
    verdict = "PASSED" if report["passed"] else "FAILED"
    lines = [
        f"# Load test `{report['scenario']}` — {verdict}",
        "",
        f"- Scenario: {report['description']}; measured {fmt(report['duration_s'])} s "
        f"from {report['started_at']} to {report['finished_at']}.",
        f"- Machine: {machine_line(report['machine'])}.",
        f"- Server: `openrisk serve --workers {setup['workers']}` on 127.0.0.1, "
        f"database {setup['database']}, cache {setup['cache_backend']} "
        f"({'enabled' if setup['cache_enabled'] else 'disabled'}).",
        f"- Data set: tenant `{report['dataset']['tenant']}`, {report['dataset']['risks']} risks, "
        f"{report['dataset']['mitigations']} mitigations; users: {setup['users_description']}.",
        f"- Command: `{report['command']}`",
        "",
        "## Results",
        "",
        md_table(
            ["metric", "value"],
            [
                ["requests", fmt(results["requests"])],
                ["requests/s", fmt(results["rps"])],
                ["error rate", fmt(results["error_rate"], 2, percent=True)],
                ["avg", fmt(results["avg_ms"], suffix=" ms")],
                ["p50", fmt(results["p50_ms"], suffix=" ms")],
                ["p95", fmt(results["p95_ms"], suffix=" ms")],
                ["p99", fmt(results["p99_ms"], suffix=" ms")],
                ["max", fmt(results["max_ms"], suffix=" ms")],
                ["cache hit rate (/metrics)", fmt(results["cache_hit_rate"], 1, percent=True)],
                ["X-Cache HIT/MISS/BYPASS", results["x_cache_summary"]],
                ["DB queries per request", fmt(results["db_queries_per_request"], 2)],
                ["server-side mean latency", fmt(server["server_mean_ms"], suffix=" ms")],
                ["writes (share of requests)", fmt(results["write_share"], 2, percent=True)],
            ],
        ),
        "",
        "## Thresholds",
        "",
        md_table(
            ["threshold", "limit", "measured", "result"],
            [
                [t["name"], t["limit"], t["shown"], "pass" if t["passed"] else "**FAIL**"]
                for t in report["thresholds"]
            ],
        ),
        "",
        "## Endpoints (client side, Locust)",
        "",
        md_table(
            ["endpoint", "requests", "failures", "avg ms", "p50", "p95", "p99", "req/s", "hit %"],
            [
                [
                    f"{e['method']} {e['name'].removeprefix(e['method'] + ' ')}",
                    str(e["requests"]),
                    str(e["failures"]),
                    fmt(e["avg_ms"]),
                    fmt(e["p50_ms"], 0),
                    fmt(e["p95_ms"], 0),
                    fmt(e["p99_ms"], 0),
                    fmt(e["rps"], 2),
                    fmt(e.get("hit_rate"), 1, percent=True),
                ]
                for e in report["endpoints"]
            ],
        ),
        "",
    ]
    if report["files"].get("png"):
        lines += [f"![latency and throughput]({Path(report['files']['png']).name})", ""]
    return "\n".join(lines)


def bench_markdown(report: dict[str, Any]) -> str:
    setup = report["setup"]
    lines = [
        "# `openrisk bench` — cache off vs on",
        "",
        f"- Machine: {machine_line(report['machine'])}.",
        f"- Server: `openrisk serve --workers {setup['workers']}` on 127.0.0.1, database "
        f"{setup['database']}, cache {setup['cache_backend']}; load: {setup['concurrency']} "
        f"concurrent keep-alive HTTP/1.1 connections, {fmt(setup['duration_s'])} s per "
        "endpoint and mode.",
        f"- Data set: tenant `{report['dataset']['tenant']}`, {report['dataset']['risks']} risks.",
        f"- Started {report['started_at']}. Command: `{report['command']}`",
        "",
        bench_table_markdown(report["rows"]),
        "",
    ]
    return "\n".join(lines)


BENCH_HEADERS = (
    "endpoint",
    "cache",
    "avg ms",
    "p95 ms",
    "p99 ms",
    "req/s",
    "DB q/req",
    "hit rate",
    "errors",
    "server CPU ms/req",
    "speed-up (req/s)",
    "CPU cost ratio",
)


def bench_rows(rows: Sequence[dict[str, Any]]) -> list[list[str]]:
    table: list[list[str]] = []
    for row in rows:
        table.append(
            [
                row["endpoint"],
                row["cache"],
                fmt(row["avg_ms"], 2),
                fmt(row["p95_ms"], 2),
                fmt(row["p99_ms"], 2),
                fmt(row["rps"], 0),
                fmt(row["db_queries_per_request"], 2),
                fmt(row["cache_hit_rate"], 1, percent=True),
                str(row["errors"]),
                fmt(row.get("server_cpu_ms"), 2),
                fmt(row.get("speedup"), 1, suffix="×") if row.get("speedup") else "",
                fmt(row.get("cpu_ratio"), 1, suffix="×") if row.get("cpu_ratio") else "",
            ]
        )
    return table


def bench_table_markdown(rows: Sequence[dict[str, Any]]) -> str:
    return md_table(BENCH_HEADERS, bench_rows(rows))
