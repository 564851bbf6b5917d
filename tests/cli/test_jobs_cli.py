"""Operating the job queue on PostgreSQL: jobs are counted by task and outcome as they run, a
dead letter shows in the gauges and in ``openrisk jobs status``, ``retry`` runs it again and
``purge`` deletes it."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from prometheus_client import REGISTRY
from typer.testing import CliRunner

from openrisk.cli import app as cli
from openrisk.core.db.engine import create_database
from openrisk.core.jobs import JobRuntime
from openrisk.core.jobs.worker import JobEngine
from openrisk.core.queue_metrics import refresh_queue_gauges
from tests.conftest import make_settings
from tests.jobs.conftest import jobs_database  # noqa: F401 (fixture)

runner = CliRunner()


def _sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def _run_jobs(url: str, *defers: tuple[str, dict[str, str]]) -> None:
    settings = make_settings(url)
    database = create_database(settings, pooled=False)
    engine = JobEngine(settings, JobRuntime(settings=settings, database=database))
    try:
        await engine.open()
        for task, args in defers:
            await engine.app.configure_task(task).defer_async(**args)
        await engine.drain(timeout_s=20)
    finally:
        await engine.stop()
        await database.dispose()


async def _gauges(url: str) -> tuple[float, float]:
    database = create_database(make_settings(url), pooled=False)
    try:
        await refresh_queue_gauges(database)
    finally:
        await database.dispose()
    return _sample("openrisk_jobs_dead"), _sample("openrisk_job_queue_depth")


def test_jobs_are_measured_and_dead_letters_tended(
    jobs_database: str,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url = jobs_database
    sent = _sample("openrisk_jobs_total", task="email:send", outcome="succeeded")
    broken = _sample("openrisk_jobs_total", task="reports:generate", outcome="failed")
    asyncio.run(
        _run_jobs(
            url,
            ("email:send", {"batch_id": str(uuid.uuid4())}),  # nothing pending: done at once
            ("reports:generate", {"job_id": "not-a-uuid"}),  # fails, no retry: dead letter
        )
    )
    assert _sample("openrisk_jobs_total", task="email:send", outcome="succeeded") == sent + 1
    assert _sample("openrisk_jobs_total", task="reports:generate", outcome="failed") == broken + 1
    assert _sample("openrisk_job_duration_seconds_count", task="email:send") >= 1
    assert asyncio.run(_gauges(url)) == (1, 0)

    monkeypatch.setenv("OPENRISK_DATABASE_URL", url)
    shown = runner.invoke(cli, ["jobs", "status"])
    assert shown.exit_code == 0, shown.output
    assert "reports:generate" in shown.output and "1 failed job(s)" in shown.output

    retried = runner.invoke(cli, ["jobs", "retry", "--task", "reports:generate"])
    assert retried.exit_code == 0 and "1 failed job(s) queued again" in retried.output
    assert asyncio.run(_gauges(url)) == (0, 1)
    asyncio.run(_run_jobs(url))  # fails again
    kept = runner.invoke(cli, ["jobs", "purge", "--older-than", "0"])
    assert "0 finished job(s) deleted" in kept.output  # failed ones stay without --failed
    purged = runner.invoke(cli, ["jobs", "purge", "--older-than", "0", "--failed"])
    assert purged.exit_code == 0 and "1 finished job(s) deleted" in purged.output
    assert asyncio.run(_gauges(url)) == (0, 0)
