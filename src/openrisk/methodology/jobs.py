"""Risk model changes of large registers, applied by a job: the request answers 202 with the
job's status resource, which says ``done`` with the new version and the re-mapping once every
risk is re-scored.

Above ``OPENRISK_RISK_MODEL_ASYNC_THRESHOLD`` live risks, re-scoring takes longer than a
request may; a smaller register's change is applied within the request, as before. The
request checks the change first (422 and 409 come at once) and refuses a second change while
one is pending. The job (``risk_model:apply``) runs as the member who asked and applies the
change exactly as a request would, in one transaction that also records the job's end: a job
run again finds its job ended and does nothing, and concurrent runs wait for each other on
the job's row.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from openrisk.audit.service import record
from openrisk.core.context import RequestContext
from openrisk.core.db.engine import Database
from openrisk.core.errors import AppError, Conflict, NotFound
from openrisk.core.ids import new_id
from openrisk.core.uow import UnitOfWork
from openrisk.methodology import service
from openrisk.methodology.models import RiskModelJob
from openrisk.methodology.schemas import Remapping, RiskModelOut, RiskModelUpdate
from openrisk.risks.models import Risk

log = logging.getLogger(__name__)

APPLY_TOPIC = "job:risk_model:apply"
QUEUED, RUNNING, DONE, FAILED = "queued", "running", "done", "failed"
PENDING = (QUEUED, RUNNING)


async def live_risks(session: AsyncSession, *, tenant_id: uuid.UUID) -> int:
    count = await session.scalar(
        select(func.count()).where(Risk.tenant_id == tenant_id, Risk.deleted_at.is_(None))
    )
    return int(count or 0)


async def request_change(
    *, uow: UnitOfWork, context: RequestContext, data: RiskModelUpdate, threshold: int
) -> RiskModelOut | RiskModelJob:
    """The change applied now (a register up to ``threshold`` live risks), or a queued job
    applying it."""
    session = uow.session
    if await live_risks(session, tenant_id=context.tenant_id) <= threshold:
        return await service.put_model(uow=uow, context=context, data=data)
    await service.checked(session, context=context, data=data)
    pending = await session.scalar(
        select(RiskModelJob.id).where(
            RiskModelJob.tenant_id == context.tenant_id, RiskModelJob.status.in_(PENDING)
        )
    )
    if pending is not None:
        raise Conflict(
            f"A change of the risk model is being applied (job {pending}); "
            "wait for it to end (GET /risk-model/jobs/{id}), reload the model and retry."
        )
    job = RiskModelJob(
        id=new_id(),
        tenant_id=context.tenant_id,
        status=QUEUED,
        requested_by=context.user_id,
        request=data.model_dump(mode="json", exclude_unset=True),
    )
    session.add(job)
    record(
        session,
        context=context,
        action="risk_model.request",
        resource_type="risk_model_job",
        resource_id=job.id,
        changes={"version": {"before": data.version, "after": None}},
    )
    uow.add_event(APPLY_TOPIC, {"job_id": str(job.id)}, tenant_id=context.tenant_id)
    await uow.commit()
    return job


async def get_job(
    session: AsyncSession, *, context: RequestContext, job_id: uuid.UUID
) -> RiskModelJob:
    job = await session.scalar(
        select(RiskModelJob).where(
            RiskModelJob.id == job_id, RiskModelJob.tenant_id == context.tenant_id
        )
    )
    if job is None:
        raise NotFound("Risk model job not found.")
    return job


async def latest_job(session: AsyncSession, *, context: RequestContext) -> RiskModelJob | None:
    """The tenant's most recent model change applied by a job (the editor shows its state)."""
    job: RiskModelJob | None = await session.scalar(
        select(RiskModelJob)
        .where(RiskModelJob.tenant_id == context.tenant_id)
        .order_by(RiskModelJob.created_at.desc(), RiskModelJob.id.desc())
        .limit(1)
    )
    return job


async def apply(
    *,
    database: Database,
    job_id: uuid.UUID,
    now: Callable[[], datetime],
    uow: Callable[[AsyncSession], UnitOfWork] = UnitOfWork,
) -> str:
    """The ``risk_model:apply`` job; returns the job's status after it."""
    from openrisk.rbac.service import act_as_requester

    async with database.sessions() as session:
        await session.execute(
            update(RiskModelJob)
            .where(RiskModelJob.id == job_id, RiskModelJob.status == QUEUED)
            .values(status=RUNNING)
        )
        await session.commit()
        # taken again in the transaction that applies the change: a concurrent run waits
        # here, then finds the job ended
        claimed = (
            await session.execute(
                update(RiskModelJob)
                .where(RiskModelJob.id == job_id, RiskModelJob.status == RUNNING)
                .values(status=RUNNING)
                .returning(RiskModelJob.tenant_id, RiskModelJob.requested_by, RiskModelJob.request)
            )
        ).first()
        if claimed is None:
            await session.rollback()
            status = await session.scalar(
                select(RiskModelJob.status).where(RiskModelJob.id == job_id)
            )
            return status or "gone"
        tenant_id, requester, request = claimed

        async def finished(version: int, figures: Remapping) -> None:
            await session.execute(
                update(RiskModelJob)
                .where(RiskModelJob.id == job_id)
                .values(
                    status=DONE,
                    version=version,
                    result=figures.model_dump(mode="json"),
                    finished_at=now(),
                )
            )

        try:
            context = await act_as_requester(
                session,
                user_id=requester,
                tenant_id=tenant_id,
                gone="the member who asked for the change is gone",
            )
            await service.put_model(
                uow=uow(session),
                context=context,
                data=RiskModelUpdate.model_validate(request),
                before_commit=finished,
            )
        except AppError as error:  # the model changed meanwhile, the requester left...
            await session.rollback()
            return await _failed(session, job_id, error.detail, now())
        except Exception:
            await session.rollback()
            log.exception("risk model job %s failed", job_id)
            return await _failed(session, job_id, "the risk model could not be applied", now())
    return DONE


async def _failed(session: AsyncSession, job_id: uuid.UUID, error: str, at: datetime) -> str:
    await session.execute(
        update(RiskModelJob)
        .where(RiskModelJob.id == job_id, RiskModelJob.status.in_(PENDING))
        .values(status=FAILED, error=error[:2000], finished_at=at)
    )
    await session.commit()
    return FAILED
