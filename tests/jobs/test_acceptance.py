"""What the job engine promises, with real processes on PostgreSQL and a real receiver that
de-duplicates on ``X-OpenRisk-Delivery``:

* workers killed with SIGKILL at random, several times, while deliveries wait in their retry
  backoff: every one of 100 events reaches the receiver, each with its own delivery id;
* the web process killed with SIGKILL right after answering a write: a worker still delivers;
* an import of 5,000 rows: one response-cache invalidation, 5,000 events, all turned into
  jobs within seconds.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import httpx
from fastapi import FastAPI

from openrisk.core.cache.invalidation import RISKS
from tests.conftest import client_for
from tests.integration.server_process import running_server
from tests.jobs.conftest import FAST_JOBS, Receiver, Worker, create_risk, webhook_tenant
from tests.jobs.test_engine import _count, _execute


def _csv(rows: int, prefix: str) -> bytes:
    lines = ["title,impact,probability", *(f"{prefix} {n},3,4" for n in range(rows))]
    return "\n".join(lines).encode()


async def _import(app: FastAPI, headers: dict[str, str], rows: int, prefix: str) -> None:
    async with client_for(app) as http:
        imported = await http.post(
            "/api/v1/risks/import",
            files={"file": ("risks.csv", _csv(rows, prefix), "text/csv")},
            headers=headers,
            timeout=120,
        )
    assert imported.status_code == 200, imported.text


async def test_every_event_is_delivered_once_whatever_workers_are_killed(
    web: FastAPI,
    jobs_database: str,
    receiver: Receiver,
    start_worker: Callable[..., Worker],
) -> None:
    events = 100
    receiver.fail_first = 1  # every delivery goes through a retry backoff
    async with client_for(web) as http:
        account = await webhook_tenant(http, receiver.url)
    backoff = {"OPENRISK_WEBHOOK_BACKOFF_S": "0.5", "OPENRISK_JOBS_CONCURRENCY": "20"}
    workers = [start_worker(jobs_database, **backoff) for _ in range(2)]
    await _import(web, account.in_tenant(), events, "Killed")
    chance = random.Random(20261201)
    kills = 0
    deadline = time.monotonic() + 90
    while len(receiver.delivered) < events and time.monotonic() < deadline:
        await asyncio.sleep(chance.uniform(0.4, 1.2))
        if kills < 3:  # SIGKILL one at random (mid-delivery or mid-backoff), start another
            victim = workers.pop(chance.randrange(len(workers)))
            victim.kill()
            kills += 1
            workers.append(start_worker(jobs_database, **backoff))
    assert kills == 3
    assert len(receiver.delivered) == events, f"{len(receiver.delivered)} of {events} delivered"
    assert len(set(receiver.events.values())) == events  # one delivery per event
    assert all(receiver.attempts[d] >= 2 for d in receiver.delivered)  # each was retried


async def test_a_write_acknowledged_before_the_web_process_dies_is_delivered(
    tmp_path: Path,
    jobs_database: str,
    receiver: Receiver,
    start_worker: Callable[..., Worker],
) -> None:
    with running_server(tmp_path, jobs_database, env=FAST_JOBS) as server:
        async with httpx.AsyncClient(base_url=server.base_url, trust_env=False) as http:
            account = await webhook_tenant(http, receiver.url)
            await create_risk(http, account, "Acknowledged, then the server died")
            os.kill(server.proc.pid, signal.SIGKILL)  # at once, before anything else
            server.proc.wait(timeout=10)
    assert not receiver.delivered
    start_worker(jobs_database)
    await asyncio.to_thread(
        receiver.wait_for, lambda: bool(receiver.delivered), timeout=30, what="a delivery"
    )
    [event_id] = receiver.events.values()
    assert uuid.UUID(event_id)


async def test_an_import_of_5000_rows_is_one_invalidation_and_5000_events(
    web: FastAPI, jobs_database: str, receiver: Receiver
) -> None:
    async with client_for(web) as http:
        account = await webhook_tenant(http, receiver.url)
    generations = web.state.response_cache.generations
    before = (await generations.current(account.tenant_id, [RISKS]))[RISKS]
    started = time.monotonic()
    await _import(web, account.in_tenant(), 5_000, "Bulk")
    after = (await generations.current(account.tenant_id, [RISKS]))[RISKS]
    assert after - before == 1  # one bump of the register for the whole import
    await web.state.jobs.relay.relay_pending()  # the woken relay may be at it already
    deliveries = (
        "procrastinate_jobs WHERE task_name = 'webhooks:deliver' "
        f"AND args->'event'->>'tenant_id' = '{account.tenant_id}'"
    )
    assert await _count(jobs_database, deliveries) == 5_000
    assert await _count(jobs_database, "outbox WHERE topic <> 'cache.invalidate'") == 0
    assert time.monotonic() - started < 60
    await _execute(jobs_database, f"DELETE FROM {deliveries}")  # no worker runs them here
