"""``/risk-model``: the tenant's risk model (read by every member, changed by tenant:update)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Depends, Query, status
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse

from openrisk.auth.deps import require
from openrisk.core.context import RequestContext
from openrisk.core.deps import SessionDep, SettingsDep
from openrisk.core.routing import API_PREFIX, api_router
from openrisk.core.uow import UowDep
from openrisk.methodology import jobs, service
from openrisk.methodology.models import RiskModelJob
from openrisk.methodology.schemas import RiskModelJobOut, RiskModelOut, RiskModelUpdate

router = api_router("/risk-model", tags=["risk model"])


@router.get("", response_model_exclude_none=True)
async def get_risk_model(
    context: Annotated[RequestContext, Depends(require("risk:read"))], session: SessionDep
) -> RiskModelOut:
    """Impact and probability levels, severity bands, asset factors, appetite, review days
    per band and acceptance rules; ``version`` is what a change must send back."""
    return await service.get_model(session, context=context)


def job_out(job: RiskModelJob) -> RiskModelJobOut:
    return RiskModelJobOut.model_validate(
        {
            "id": job.id,
            "status": job.status,
            "status_url": f"{API_PREFIX}/risk-model/jobs/{job.id}",
            "version": job.version,
            "remapping": job.result,
            "error": job.error,
            "created_at": job.created_at,
            "finished_at": job.finished_at,
        }
    )


@router.put(
    "",
    response_model=RiskModelOut,
    response_model_exclude_none=True,
    responses={
        202: {
            "model": RiskModelJobOut,
            "description": "The register is large (more live risks than "
            "OPENRISK_RISK_MODEL_ASYNC_THRESHOLD): the change is applied by a job; its status "
            "is at Location (and status_url), with the new version and the re-mapping once done",
            "headers": {
                "Location": {
                    "description": "The job's status resource",
                    "schema": {"type": "string"},
                }
            },
        }
    },
)
async def put_risk_model(
    body: RiskModelUpdate,
    context: Annotated[RequestContext, Depends(require("tenant:update"))],
    uow: UowDep,
    settings: SettingsDep,
    dry_run: Annotated[
        bool, Query(description="Answer the re-mapping this change would cause; write nothing")
    ] = False,
) -> RiskModelOut | JSONResponse:
    """Replace the model and re-score every risk of the tenant in one transaction (a history
    row per risk that moved). ``version`` must be the current one (409 otherwise). Removing
    levels needs ``level_mapping`` for each of them (422 naming the missing ones). A large
    register's change is applied in the background: 202, follow ``Location``."""
    if dry_run:
        return await service.put_model(uow=uow, context=context, data=body, dry_run=True)
    made = await jobs.request_change(
        uow=uow, context=context, data=body, threshold=settings.risk_model_async_threshold
    )
    if isinstance(made, RiskModelOut):
        return made
    shown = job_out(made)
    return JSONResponse(
        jsonable_encoder(shown, exclude_none=True),
        status_code=status.HTTP_202_ACCEPTED,
        headers={"Location": shown.status_url},
    )


@router.get("/jobs/{job_id}", response_model_exclude_none=True)
async def get_risk_model_job(
    job_id: uuid.UUID,
    context: Annotated[RequestContext, Depends(require("risk:read"))],
    session: SessionDep,
) -> RiskModelJobOut:
    """A model change's job: queued, running, done (the version it made and the re-mapping)
    or failed (the reason, e.g. the model changed meanwhile)."""
    return job_out(await jobs.get_job(session, context=context, job_id=job_id))
