"""The relay and the workers on PostgreSQL: outbox rows become jobs exactly once, SIGTERM lets a
running job finish (killed workers: test_acceptance.py)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable

import asyncpg
from fastapi import FastAPI

from openrisk.core.db.engine import create_database
from openrisk.core.jobs import JobRuntime
from openrisk.core.jobs.worker import JobEngine
from openrisk.core.uow import UnitOfWork
from tests.conftest import Account, client_for, make_settings
from tests.jobs.conftest import Receiver, Worker, webhook_tenant


def _dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://")


async def _jobs(url: str) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(_dsn(url))
    try:
        return list(await conn.fetch("SELECT task_name, args, status FROM procrastinate_jobs"))
    finally:
        await conn.close()


async def _execute(url: str, sql: str) -> None:
    conn = await asyncpg.connect(_dsn(url))
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def _count(url: str, table: str) -> int:
    conn = await asyncpg.connect(_dsn(url))
    try:
        return int(await conn.fetchval(f"SELECT count(*) FROM {table}"))
    finally:
        await conn.close()


async def _webhook_tenant(app: FastAPI, url: str) -> Account:
    async with client_for(app) as http:
        return await webhook_tenant(http, url)


async def _write_risks(app: FastAPI, account: Account, count: int) -> None:
    async with client_for(app) as http:
        for n in range(count):
            created = await http.post(
                "/api/v1/risks",
                json={"title": f"Risk {n}", "impact": 3, "probability": 3},
                headers=account.in_tenant(),
            )
            assert created.status_code == 201, created.text


async def test_two_relays_turn_each_row_into_exactly_one_job(jobs_database: str) -> None:
    settings = make_settings(jobs_database)
    databases = [create_database(settings, pooled=False) for _ in range(2)]
    engines = [JobEngine(settings, JobRuntime(settings=settings, database=d)) for d in databases]
    try:
        async with databases[0].session() as session:
            uow = UnitOfWork(session)
            for n in range(300):
                uow.add_event("job:test:count", {"n": n}, tenant_id=None)
            await uow.commit()
        relayed = await asyncio.gather(*(e.relay.relay_pending() for e in engines))
    finally:
        for database in databases:
            await database.dispose()
    assert sum(relayed) == 300
    jobs = [job for job in await _jobs(jobs_database) if job["task_name"] == "test:count"]
    assert sorted(int(json.loads(j["args"])["n"]) for j in jobs) == list(range(300))
    assert await _count(jobs_database, "outbox WHERE topic LIKE 'job:%'") == 0
    await _execute(jobs_database, "DELETE FROM procrastinate_jobs WHERE task_name = 'test:count'")


async def test_sigterm_lets_the_running_delivery_finish(
    web: FastAPI,
    jobs_database: str,
    receiver: Receiver,
    start_worker: Callable[..., Worker],
) -> None:
    receiver.hold_s = 1.5
    account = await _webhook_tenant(web, receiver.url)
    worker = start_worker(jobs_database)
    await _write_risks(web, account, 1)
    await asyncio.to_thread(
        receiver.wait_for, lambda: sum(receiver.attempts.values()) == 1, timeout=20, what="try"
    )
    code = await asyncio.to_thread(worker.terminate)
    assert code == 0, worker.tail()
    assert list(receiver.delivered.values()) == [1]
    unfinished = "procrastinate_jobs WHERE task_name = 'webhooks:deliver' AND status <> 'succeeded'"
    assert await _count(jobs_database, unfinished) == 0
    assert await _count(jobs_database, "procrastinate_workers") == 0  # it said goodbye
