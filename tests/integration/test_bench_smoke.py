"""`openrisk bench` end to end with a very short load: the harness, not the numbers."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from openrisk.perf.bench import combine, percentile
from tests.integration.test_loadtest_smoke import OPENRISK, clean_env

ROW_KEYS = {
    "endpoint",
    "cache",
    "avg_ms",
    "p95_ms",
    "p99_ms",
    "rps",
    "db_queries_per_request",
    "cache_hit_rate",
    "errors",
}


@pytest.mark.slow
def test_bench_writes_the_before_after_table(tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    proc = subprocess.run(
        [
            str(OPENRISK),
            "bench",
            "--duration",
            "0.5s",
            "--concurrency",
            "2",
            "--database-url",
            f"sqlite+aiosqlite:///{tmp_path / 'bench.db'}",
            "--output",
            str(reports),
        ],
        cwd=tmp_path,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=150,
        check=False,
    )
    assert proc.returncode == 0, f"{proc.stdout}\n{proc.stderr}"
    [json_path] = reports.glob("bench-*.json")
    assert json_path.with_suffix(".md").exists()
    data = json.loads(json_path.read_text())
    rows = data["rows"]
    assert [(r["endpoint"].split()[0], r["cache"]) for r in rows] == [
        (endpoint, mode)
        for endpoint in ("health", "list", "detail", "dashboard")
        for mode in ("off", "on")
    ]
    for row in rows:
        assert row.keys() >= ROW_KEYS
        assert row["errors"] == 0 and row["rps"] > 0
    by_key = {(r["endpoint"].split()[0], r["cache"]): r for r in rows}
    for endpoint in ("list", "detail", "dashboard"):
        assert by_key[(endpoint, "off")]["db_queries_per_request"] > 0.5  # really uncached
        assert by_key[(endpoint, "on")]["cache_hit_rate"] == 1.0  # warmed, then only hits
        assert by_key[(endpoint, "on")]["speedup"] > 0
    assert set(data["speedups"]) == {r["endpoint"] for r in rows if r["cache"] == "on"}
    assert "speed-up" in json_path.with_suffix(".md").read_text()


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 0.5) == 50
    assert percentile(values, 0.95) == 95
    assert percentile(values, 0.99) == 99
    assert percentile([], 0.95) == 0


def test_combine_adds_the_speedup_to_the_cached_row() -> None:
    off = [{"endpoint": "list", "cache": "off", "rps": 100.0}]
    on = [{"endpoint": "list", "cache": "on", "rps": 450.0}]
    assert combine(off, on)[1]["speedup"] == 4.5
