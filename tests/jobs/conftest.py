"""Engine tests: real worker processes on a fresh PostgreSQL database, a real HTTP receiver.

``jobs_database``: a migrated database of its own per test module (jobs of other tests never
mix in). ``start_worker(url, **env)``: an ``openrisk worker`` subprocess (stopped at the end of
the test: SIGTERM, then SIGKILL). ``receiver``: a loopback HTTP server that de-duplicates on
``X-OpenRisk-Delivery`` as a real receiver should, and answers what its script says.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from fastapi import FastAPI

from openrisk.app import create_app
from openrisk.core.db.migrate import upgrade
from tests.conftest import Account, create_pg_database, drop_pg_database, make_settings, register
from tests.integration.server_process import OPENRISK, base_env, log_tail, stop_process
from tests.receivers import serve_posts

SECRET = "receiver-shared-secret-42"
# Short heartbeats and stall detection: a killed worker's jobs are taken up within ~2 s.
FAST_JOBS = {
    "OPENRISK_WEBHOOK_ALLOW_PRIVATE": "true",
    "OPENRISK_WEBHOOK_TIMEOUT_S": "2",
    "OPENRISK_JOBS_HEARTBEAT_S": "0.3",
    "OPENRISK_JOBS_STALLED_AFTER_S": "1.5",
    "OPENRISK_JOBS_STALLED_CHECK_S": "0.5",
    "OPENRISK_JOBS_POLL_S": "0.5",
    "OPENRISK_OUTBOX_INTERVAL_S": "0.5",
    "OPENRISK_JOBS_SHUTDOWN_TIMEOUT_S": "5",
}


@pytest.fixture(scope="module")
def jobs_database() -> Iterator[str]:
    url = create_pg_database()
    upgrade(url)
    yield url
    drop_pg_database(url)


def settings_values(env: dict[str, str]) -> dict[str, Any]:
    """``OPENRISK_X=v`` → ``{"x": "v"}`` (the same settings for an in-process app)."""
    return {k.removeprefix("OPENRISK_").lower(): v for k, v in env.items()}


@dataclass
class Worker:
    proc: subprocess.Popen[bytes]
    log: Path

    def kill(self) -> None:
        """kill -9: no shutdown, no unregistering, jobs left as they are."""
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)

    def terminate(self, timeout: float = 20) -> int:
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=timeout)

    def tail(self) -> str:
        return log_tail(self.log)


@pytest.fixture
def start_worker(tmp_path: Path) -> Iterator[Callable[..., Worker]]:
    started: list[Worker] = []

    def start(url: str, *args: str, **env: str) -> Worker:
        log = tmp_path / f"worker-{len(started)}.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(
                [str(OPENRISK), "worker", *args],
                env=base_env(url, **{**FAST_JOBS, **env}),
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        worker = Worker(proc, log)
        started.append(worker)
        return worker

    yield start
    for worker in started:
        stop_process(worker.proc, timeout=10)


@dataclass
class Receiver:
    """Scripted answers per delivery (``fail_first``: that many 500s for each new delivery id,
    ``hold_s``: how long to wait before answering), then 200; counts successes per id."""

    url: str = ""
    fail_first: int = 0
    hold_s: float = 0.0
    attempts: Counter[str] = field(default_factory=Counter)
    delivered: Counter[str] = field(default_factory=Counter)  # 2xx answered, per delivery id
    events: dict[str, str] = field(default_factory=dict)  # delivery id → event id
    lock: threading.Lock = field(default_factory=threading.Lock)

    def answer(self, path: str, headers: dict[str, str], body: bytes) -> int:
        delivery = headers.get("X-OpenRisk-Delivery", "")
        with self.lock:
            self.attempts[delivery] += 1
            failing = self.attempts[delivery] <= self.fail_first
        if self.hold_s:
            time.sleep(self.hold_s)
        if failing:
            return 500
        with self.lock:
            self.delivered[delivery] += 1  # a duplicate would be ignored by its id
            self.events[delivery] = json.loads(body)["id"]
        return 200

    def wait_for(self, check: Callable[[], bool], *, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if check():
                    return
            time.sleep(0.05)
        raise AssertionError(f"timed out after {timeout}s waiting for {what}")


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    rec = Receiver()
    with serve_posts(rec.answer) as rec.url:
        yield rec


@pytest_asyncio.fixture
async def web(jobs_database: str) -> AsyncIterator[FastAPI]:
    """A web process: it only enqueues (PostgreSQL's default)."""
    app = create_app(make_settings(jobs_database, **settings_values(FAST_JOBS)))
    async with app.router.lifespan_context(app):
        yield app


async def webhook_tenant(http: httpx.AsyncClient, url: str) -> Account:
    """A new tenant (and its admin) with one webhook app delivering to ``url``."""
    account = await register(http)
    installed = await http.post(
        "/api/v1/marketplace/apps",
        json={"connector_id": "webhook", "configuration": {"url": url, "secret": SECRET}},
        headers=account.in_tenant(),
    )
    assert installed.status_code == 201, installed.text
    return account


async def create_risk(http: httpx.AsyncClient, account: Account, title: str) -> None:
    created = await http.post(
        "/api/v1/risks",
        json={"title": title, "impact": 4, "probability": 4},
        headers=account.in_tenant(),
    )
    assert created.status_code == 201, created.text
