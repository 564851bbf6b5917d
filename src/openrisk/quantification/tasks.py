"""Results follow their inputs in the background: ``quantification:recompute``.

A change that alters what a quantified risk's simulation reads — one of its mitigations
created, changed (reductions, annual cost, status), cancelled or deleted, the risk restored
from the bin with its mitigations — commits its domain event to the outbox as usual. The relay
hands those events to ``recomputes_for``, which keeps the quantified risks among them (one
query per batch) and defers one job per event. The job simulates each live risk whose stored
digest no longer matches its inputs and stores the result with the new digest, then makes the
risk answers and the register's annual loss stale in the cache; a risk whose digest matches
costs two queries and no simulation, so a repeated or redundant job is harmless.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

import procrastinate
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from openrisk.core.db.tenancy import bind_session_to_tenant
from openrisk.core.events import DomainEvent
from openrisk.core.jobs import JobSpec, job_runtime
from openrisk.quantification import service
from openrisk.quantification.models import RiskQuantification

blueprint = procrastinate.Blueprint()

RECOMPUTE_TASK = "quantification:recompute"
ROUTED_TOPICS = ("mitigation.", "risk.restored")


def _risk_of(event: DomainEvent) -> uuid.UUID | None:
    """The risk whose simulation inputs the event may have changed."""
    try:
        if event.resource == "mitigation":
            found = event.data.get("risk_id")
            return uuid.UUID(str(found)) if found else None
        if event.type == "risk.restored" and event.resource_id is not None:
            return uuid.UUID(str(event.resource_id))
    except ValueError:
        return None
    return None


async def recomputes_for(session: AsyncSession, events: Sequence[DomainEvent]) -> list[JobSpec]:
    """One recompute job per event that names a quantified risk (in the relay's transaction)."""
    wanted = [
        (event, risk_id)
        for event in events
        if event.tenant_id is not None and (risk_id := _risk_of(event)) is not None
    ]
    if not wanted:
        return []
    quantified = set(
        (
            await session.execute(
                select(RiskQuantification.tenant_id, RiskQuantification.risk_id).where(
                    RiskQuantification.tenant_id.in_({event.tenant_id for event, _ in wanted}),
                    RiskQuantification.risk_id.in_({risk_id for _, risk_id in wanted}),
                )
            )
        ).tuples()
    )
    return [
        JobSpec(
            task=RECOMPUTE_TASK,
            args={"tenant_id": str(event.tenant_id), "risk_ids": [str(risk_id)]},
            event_id=event.id,
        )
        for event, risk_id in wanted
        if (event.tenant_id, risk_id) in quantified
    ]


@blueprint.task(
    name="recompute",
    pass_context=True,
    retry=procrastinate.RetryStrategy(max_attempts=5, exponential_wait=2),
)
async def recompute(
    context: procrastinate.JobContext, *, tenant_id: str, risk_ids: list[str]
) -> None:
    runtime = job_runtime(context)
    tenant = uuid.UUID(tenant_id)
    async with runtime.database.sessions() as session:
        await bind_session_to_tenant(session, tenant)
        await service.recompute_results(
            uow=runtime.uow(session),
            tenant_id=tenant,
            risk_ids=[uuid.UUID(r) for r in risk_ids],
        )
