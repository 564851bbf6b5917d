"""A test worker that dies (a segfault, a hung test killed by its timeout) must not stall the run.

The suite is run by pytest-xdist with ``tests.scheduling.GroupScheduling``; with xdist's own
loadscope scheduler a crash made the replacement worker run the crashing test again and again,
and the run then waited for ever on work no worker would report back on.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

CONFTEST = """
from tests.scheduling import GroupScheduling

def pytest_xdist_make_scheduler(config, log):
    return GroupScheduling(config, log, groups={"test_group.py": "shared set-up"})
"""

# Each test appends its name to runs.txt, so the test can count how often each one ran.
TESTS = """
import os
from pathlib import Path

import pytest

def ran(name):
    with Path(__file__).with_name("runs.txt").open("a") as runs:
        runs.write(name + "\\n")
"""


def run_suite(tmp_path: Path) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    (tmp_path / "conftest.py").write_text(CONFTEST)
    (tmp_path / "test_group.py").write_text(
        TESTS
        + textwrap.dedent("""
        def test_before():
            ran("before")

        def test_crash():
            ran("crash")
            os._exit(1)

        def test_after():
            ran("after")
        """)
    )
    (tmp_path / "test_singles.py").write_text(
        TESTS
        + textwrap.dedent("""
        @pytest.mark.parametrize("i", range(8))
        def test_single(i):
            ran(f"single {i}")

        def test_last_crash():
            ran("last crash")
            os._exit(1)
        """)
    )
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-n", "2", "-q", "-p", "no:cacheprovider", str(tmp_path)],
        cwd=tmp_path,
        env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    return result, (tmp_path / "runs.txt").read_text().splitlines()


def test_a_crashed_worker_fails_its_test_once_and_the_rest_still_run(tmp_path: Path) -> None:
    result, runs = run_suite(tmp_path)

    assert "2 failed, 10 passed" in result.stdout, result.stdout[-3000:]
    assert sorted(runs) == sorted(
        ["before", "crash", "after", "last crash", *(f"single {i}" for i in range(8))]
    )
