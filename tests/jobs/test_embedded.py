"""The embedded default (SQLite, `make run`): `openrisk serve` runs the jobs itself, and an
event it acknowledged survives the process being killed: the next start delivers it."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import httpx

from openrisk.core.db.migrate import upgrade
from tests.integration.server_process import running_server
from tests.jobs.conftest import FAST_JOBS, Receiver, create_risk, webhook_tenant

EMBEDDED = {**FAST_JOBS, "OPENRISK_JOBS_LEASE_S": "1"}


async def test_an_event_acknowledged_before_a_crash_is_delivered_after_the_restart(
    tmp_path: Path, receiver: Receiver
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'openrisk.db'}"
    await asyncio.to_thread(upgrade, url)
    receiver.fail_first = 1  # the first try fails: the delivery then waits for its retry
    with running_server(tmp_path, url, env={**EMBEDDED, "OPENRISK_WEBHOOK_BACKOFF_S": "60"}) as one:
        async with httpx.AsyncClient(base_url=one.base_url, trust_env=False) as http:
            account = await webhook_tenant(http, receiver.url)
            await create_risk(http, account, "Survives a crash")
        await asyncio.to_thread(
            receiver.wait_for, lambda: sum(receiver.attempts.values()) == 1, timeout=20, what="try"
        )
        os.kill(one.proc.pid, signal.SIGKILL)  # in its retry backoff, in memory only
        one.proc.wait(timeout=10)
    assert not receiver.delivered

    with running_server(tmp_path, url, env={**EMBEDDED, "OPENRISK_WEBHOOK_BACKOFF_S": "0.1"}):
        await asyncio.to_thread(
            receiver.wait_for, lambda: bool(receiver.delivered), timeout=20, what="a delivery"
        )
    [(delivery, successes)] = receiver.delivered.items()
    assert successes == 1
    assert receiver.attempts[delivery] == 2  # the same delivery id before and after the crash
    assert receiver.events[delivery]  # and the same event
