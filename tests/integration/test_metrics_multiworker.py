"""`/metrics` with several worker processes.

`openrisk serve --workers N` runs prometheus-client in multi-process mode: every worker writes its
samples into PROMETHEUS_MULTIPROC_DIR and any worker answering `/metrics` merges all of them.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from prometheus_client.multiprocess import MultiProcessCollector

from openrisk import __version__
from openrisk.cli import prepare_metrics_dir
from openrisk.core.metrics import render_latest
from tests.integration.server_process import (
    metric_value,
    migrated_sqlite,
    running_server,
    wait_until,
)

MULTIPROC = "PROMETHEUS_MULTIPROC_DIR"
HEALTH = "/api/v1/health"

# Samples a worker of an earlier run left behind: 1000 health requests and 5 requests "in
# progress" (it died without shutting down, so its live gauges were never dropped).
STALE_WORKER = """
from openrisk.core.metrics import HTTP_IN_PROGRESS, HTTP_REQUESTS
HTTP_REQUESTS.labels(method="GET", route="/api/v1/health", status="200").inc(1000)
HTTP_IN_PROGRESS.inc(5)
"""


def write_stale_samples(directory: Path) -> None:
    env = {**os.environ, MULTIPROC: str(directory)}
    subprocess.run([sys.executable, "-c", STALE_WORKER], env=env, check=True, timeout=60)
    assert list(directory.glob("counter_*.db")) and list(directory.glob("gauge_livesum_*.db"))


@pytest.fixture
def no_multiproc_env(monkeypatch: pytest.MonkeyPatch) -> None:
    # setenv first so that monkeypatch restores "unset" even if the code under test sets it
    monkeypatch.setenv(MULTIPROC, "")
    monkeypatch.delenv(MULTIPROC)


# --------------------------------------------------------------------------- set-up of the dir


@pytest.mark.usefixtures("no_multiproc_env")
def test_single_worker_keeps_the_default_registry() -> None:
    assert prepare_metrics_dir(1) is None
    assert MULTIPROC not in os.environ
    body = render_latest()[0].decode()
    # process/platform collectors exist only in the default registry, not the merged one
    assert "python_info" in body
    assert f'openrisk_build_info{{version="{__version__}"}} 1.0' in body


@pytest.mark.usefixtures("no_multiproc_env")
def test_several_workers_get_a_fresh_directory() -> None:
    created = prepare_metrics_dir(2)
    try:
        assert created is not None
        assert os.environ[MULTIPROC] == created
        assert Path(created).is_dir() and not list(Path(created).iterdir())
    finally:
        if created:
            Path(created).rmdir()


def test_a_given_directory_is_cleared_of_a_previous_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    directory = tmp_path / "metrics"
    directory.mkdir()
    write_stale_samples(directory)
    (directory / "README").write_text("not a sample file")
    monkeypatch.setenv(MULTIPROC, str(directory))
    assert prepare_metrics_dir(2) is None  # not ours to delete on exit
    assert [p.name for p in directory.iterdir()] == ["README"]
    monkeypatch.setenv(MULTIPROC, str(tmp_path / "missing"))
    prepare_metrics_dir(2)
    assert (tmp_path / "missing").is_dir()


def test_a_dead_workers_live_gauges_are_dropped_and_its_counts_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_stale_samples(tmp_path)
    monkeypatch.setenv(MULTIPROC, str(tmp_path))
    body = render_latest()[0].decode()
    assert metric_value(body, "openrisk_http_requests_total", route=HEALTH) == 1000
    assert not metric_value(body, "openrisk_http_requests_in_progress")
    assert not list(tmp_path.glob("gauge_live*"))


# --------------------------------------------------------------------------- two workers


def _health_counts_by_worker(directory: Path) -> dict[str, float]:
    """Health requests counted by each worker, from its own sample file."""
    counts: dict[str, float] = {}
    for path in directory.glob("counter_*.db"):
        counts[path.stem.removeprefix("counter_")] = sum(
            sample.value
            for metric in MultiProcessCollector.merge([str(path)], accumulate=False)
            for sample in metric.samples
            if sample.name == "openrisk_http_requests_total" and sample.labels["route"] == HEALTH
        )
    return counts


def _workers_that_served(directory: Path) -> int:
    return sum(1 for count in _health_counts_by_worker(directory).values() if count)


@pytest.mark.slow
def test_counts_from_two_workers_add_up(tmp_path: Path) -> None:
    directory = tmp_path / "metrics"
    directory.mkdir()
    write_stale_samples(directory)  # serve must start from a clean directory
    url = migrated_sqlite(tmp_path)
    env = {MULTIPROC: str(directory), "OPENRISK_POOL_MAX_OPEN": "7"}
    with running_server(tmp_path, url, workers=2, env=env) as server:
        # A fresh connection per request, several at a time: the kernel hands the
        # connections to whichever worker accepts first, so both get some.
        http = httpx.Client(base_url=server.base_url, timeout=5, trust_env=False)

        def health(_: int) -> int:
            return http.get(HEALTH, headers={"Connection": "close"}).status_code

        sent = 0
        # on a loaded machine the second worker may still be starting: give it time, not a
        # fixed number of requests
        deadline = time.monotonic() + 60
        with http, ThreadPoolExecutor(max_workers=8) as pool:
            while sent < 200 or (
                _workers_that_served(directory) < 2 and time.monotonic() < deadline
            ):
                assert set(pool.map(health, range(50))) == {200}
                sent += 50

        def worker_counts_add_up() -> bool:
            return sum(_health_counts_by_worker(directory).values()) == sent

        wait_until(worker_counts_add_up, timeout=5, what=f"{sent} health requests counted")
        by_worker = _health_counts_by_worker(directory)
        assert len(by_worker) == 2 and all(by_worker.values()), by_worker

        def scrape() -> str:
            response = httpx.get(server.base_url + "/metrics", timeout=5, trust_env=False)
            assert response.status_code == 200
            return response.text

        def both_workers_in_scrape() -> bool:
            text = scrape()
            return metric_value(text, "openrisk_db_pool_max_connections") == 2 * 7

        wait_until(both_workers_in_scrape, timeout=10, what="pool gauges of both workers")
        text = scrape()
        requests = metric_value(text, "openrisk_http_requests_total", route=HEALTH, status="200")
        assert requests == sent
        durations = metric_value(text, "openrisk_http_request_duration_seconds_count", route=HEALTH)
        assert durations == sent
        in_progress = metric_value(text, "openrisk_http_requests_in_progress")
        assert in_progress is not None and 0 <= in_progress <= 8
        assert metric_value(text, "openrisk_db_up") == 1
        assert metric_value(text, "openrisk_build_info", version=__version__) == 1
        for state in ("in_use", "idle", "overflow"):
            value = metric_value(text, "openrisk_db_pool_connections", state=state)
            assert value is not None and value >= 0, state
        for result in ("allow", "deny"):
            assert metric_value(text, "openrisk_permission_checks_total", result=result) == 0
        assert metric_value(text, "openrisk_cache_requests_total", result="hit") == 0
    # Clean shutdown: each worker dropped its live gauges; the counters stay for the record.
    assert server.proc.returncode == 0, server.log.read_text()
    assert not list(directory.glob("gauge_live*")), sorted(p.name for p in directory.iterdir())
    assert len(list(directory.glob("counter_*.db"))) == 2
