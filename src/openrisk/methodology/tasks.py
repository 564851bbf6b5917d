"""The risk model job: ``risk_model:apply`` (a large register's model change)."""

from __future__ import annotations

import uuid

import procrastinate

from openrisk.core.db.engine import create_database
from openrisk.core.jobs import job_runtime
from openrisk.methodology.jobs import apply

blueprint = procrastinate.Blueprint()


@blueprint.task(name="apply", pass_context=True)
async def apply_task(context: procrastinate.JobContext, *, job_id: str) -> None:
    """Re-scoring a large register runs longer than a request's statements may: the job
    connects with its own statement timeout (``OPENRISK_RISK_MODEL_JOB_TIMEOUT_S``)."""
    runtime = job_runtime(context)
    settings = runtime.settings
    if settings.is_sqlite:  # no statement timeout there
        await apply(
            database=runtime.database,
            job_id=uuid.UUID(job_id),
            now=runtime.now,
            uow=runtime.uow,
        )
        return
    database = create_database(
        settings.model_copy(update={"db_statement_timeout_s": settings.risk_model_job_timeout_s}),
        pooled=False,
    )
    try:
        await apply(database=database, job_id=uuid.UUID(job_id), now=runtime.now, uow=runtime.uow)
    finally:
        await database.dispose()
