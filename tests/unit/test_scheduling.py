"""A test worker that dies (a segfault, a hung test killed by its timeout) must not stall the run.

The suite is run by pytest-xdist with ``tests.scheduling.GroupScheduling``; with xdist's own
loadscope scheduler a crash made the replacement worker run the crashing test again and again,
and the run then waited for ever on work no worker would report back on.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections import OrderedDict
from pathlib import Path
from types import SimpleNamespace
from typing import Any

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


class _Worker:
    """What the scheduler uses of a worker: it is sent tests and told to shut down."""

    def __init__(self, name: str) -> None:
        self.gateway = SimpleNamespace(id=name)
        self.shutting_down = False
        self.dead = False  # exited, its crash not reported yet: its channel is closed
        self.sent: list[int] = []

    def send_runtest_some(self, indexes: list[int]) -> None:
        if self.dead:
            raise OSError("cannot send (already closed?)")
        self.sent += indexes

    def shutdown(self) -> None:
        self.shutting_down = True


def _scheduler_of(tests: list[str], *workers: _Worker) -> Any:
    from tests.scheduling import GroupScheduling

    scheduler = GroupScheduling.__new__(GroupScheduling)
    scheduler.__dict__.update(
        numnodes=len(workers),
        collection=None,
        workqueue=OrderedDict(),
        assigned_work={},
        registered_collections={},
        log=lambda *args: None,
        config=SimpleNamespace(option=SimpleNamespace(loadscopereorder=False)),
        groups={},
    )
    for worker in workers:
        scheduler.add_node(worker)
        scheduler.add_node_collection(worker, tests)
    scheduler.schedule()
    return scheduler


def test_a_crash_while_a_replacement_is_still_collecting_hands_it_work_once_it_has() -> None:
    """The replacement of a worker that crashed is added before it has collected; a second
    crash meanwhile rescheduled it too, and looking up its collection ended the whole run with
    an internal error (``KeyError: <WorkerController gw2>``)."""
    tests = [f"test_m.py::test_{i}" for i in range(12)]
    first, second = _Worker("gw0"), _Worker("gw1")
    scheduler = _scheduler_of(tests, first, second)
    replacement = _Worker("gw2")
    scheduler.add_node(replacement)  # ready, but its collection has not arrived
    assert scheduler.remove_node(first) == tests[first.sent[0]]
    assert replacement.sent == []
    scheduler.add_node_collection(replacement, tests)
    scheduler.schedule()
    assert replacement.sent  # it runs what the crashed worker left
    queued = {tests.index(nodeid) for unit in scheduler.workqueue.values() for nodeid in unit}
    assert {*first.sent, *second.sent, *replacement.sent, *queued} == set(range(len(tests)))


def test_a_worker_that_died_before_its_crash_was_reported_is_not_sent_work() -> None:
    """A worker finished a test and died on the next one before its crash reached the
    controller: handing it more work after the finished test failed on its closed channel and
    ended the whole run with an internal error (``OSError: cannot send (already closed?)``)."""
    tests = [f"test_m.py::test_{i}" for i in range(12)]
    first, second = _Worker("gw0"), _Worker("gw1")
    scheduler = _scheduler_of(tests, first, second)
    first.dead = True
    finished = first.sent[0]
    scheduler.mark_test_complete(first, finished, 0.01)  # no error: it is left alone
    crashed = scheduler.remove_node(first)  # then its crash arrives
    assert crashed == tests[first.sent[1]]
    scheduler.mark_test_complete(second, second.sent[0], 0.01)
    queued = {tests.index(nodeid) for unit in scheduler.workqueue.values() for nodeid in unit}
    handed = {*first.sent, *second.sent, *queued}
    assert handed == set(range(len(tests)))  # nothing was lost
