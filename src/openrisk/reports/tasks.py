"""The report job: ``reports:generate`` (a large register's report, for whoever asked)."""

from __future__ import annotations

import uuid

import procrastinate

from openrisk.core.jobs import job_runtime
from openrisk.reports.jobs import generate

blueprint = procrastinate.Blueprint()


@blueprint.task(name="generate", pass_context=True)
async def generate_task(context: procrastinate.JobContext, *, job_id: str) -> None:
    runtime = job_runtime(context)
    await generate(
        database=runtime.database, job_id=uuid.UUID(job_id), now=runtime.now, uow=runtime.uow
    )
