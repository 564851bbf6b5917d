"""Acceptance workflow routes: request on a risk, the approvers' queue, decide, revoke."""

from __future__ import annotations

import inspect
import uuid
from collections.abc import Awaitable, Callable
from datetime import date, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, status
from pydantic import BaseModel, ConfigDict, Field

from openrisk.auth.deps import ContextDep, require
from openrisk.core.context import RequestContext
from openrisk.core.deps import SessionDep
from openrisk.core.errors import Forbidden
from openrisk.core.pagination import Page, PageParams, page_params
from openrisk.core.routing import api_router
from openrisk.core.uow import UowDep
from openrisk.methodology import acceptance as service
from openrisk.methodology import clock, reviews
from openrisk.methodology.models import RiskAcceptance
from openrisk.risks.responses import ERRORS, errors
from openrisk.risks.text import NoNul

risk_router = api_router("/risks", tags=["acceptances"])
router = api_router("/acceptances", tags=["acceptances"])
for _r in (risk_router, router):
    _r.responses = dict(ERRORS)
ROUTERS: tuple[APIRouter, ...] = (router, risk_router)

Reader = Annotated[RequestContext, Depends(require("risk:read"))]
Text = Annotated[str, Field(max_length=5000), NoNul]
Status = Literal["submitted", "approved", "rejected", "revoked", "expired"]


def today() -> date:
    """Today by the methodology's clock (injected by tests)."""
    return clock.today()


Today = Annotated[date, Depends(today)]


class AcceptanceCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    justification: Annotated[str, Field(min_length=1, max_length=5000), NoNul]
    expires_on: date = Field(description="Last day of the acceptance (at most max_days ahead)")
    compensating_controls: Text = ""


class Decision(BaseModel):
    model_config = ConfigDict(extra="forbid")

    comment: Text = ""


class AcceptanceOut(BaseModel):
    id: uuid.UUID
    risk_id: uuid.UUID
    status: Status
    justification: str
    compensating_controls: str
    expires_on: date
    requested_by: uuid.UUID | None
    decided_by: uuid.UUID | None
    decided_at: datetime | None
    decision_comment: str
    ended_at: datetime | None
    created_at: datetime
    updated_at: datetime


def _out(found: object) -> AcceptanceOut:
    return AcceptanceOut.model_validate(service.out(found))  # type: ignore[arg-type]


@risk_router.post(
    "/{risk_id}/acceptances", status_code=status.HTTP_201_CREATED, responses=errors(404, 409)
)
async def request_acceptance(
    risk_id: uuid.UUID,
    body: AcceptanceCreate,
    context: Annotated[RequestContext, Depends(require("risk:update"))],
    uow: UowDep,
    day: Today,
) -> AcceptanceOut:
    """Ask for the risk to be accepted until ``expires_on`` (risk:update on the risk)."""
    return _out(
        await service.submit(
            uow=uow,
            context=context,
            risk_id=risk_id,
            justification=body.justification,
            expires_on=body.expires_on,
            compensating_controls=body.compensating_controls,
            today=day,
        )
    )


@router.get("")
async def list_acceptances(
    context: Reader,
    session: SessionDep,
    page: Annotated[PageParams, Depends(page_params)],
    status: Annotated[Status | None, Query(description="e.g. submitted: the queue")] = None,
    risk_id: uuid.UUID | None = None,
) -> Page[AcceptanceOut]:
    """Acceptances, oldest first; ``status=submitted`` is the approvers' queue."""
    found, total = await service.list_acceptances(
        session,
        context=context,
        status=status,
        risk_id=risk_id,
        offset=page.offset,
        limit=page.page_size,
    )
    return Page(
        items=[_out(a) for a in found], total=total, page=page.page, page_size=page.page_size
    )


@router.get("/{acceptance_id}", responses=errors(404))
async def get_acceptance(
    acceptance_id: uuid.UUID, context: Reader, session: SessionDep
) -> AcceptanceOut:
    return _out(await service.get_acceptance(session, context=context, acceptance_id=acceptance_id))


async def revoker(context: ContextDep) -> RequestContext:
    """Who may come to revoke: approvers, and those who may ask (the service lets the
    requester withdraw their own submitted request, and only risk:accept end the rest)."""
    if not (context.has("risk:accept") or context.has("risk:update")):
        raise Forbidden("Missing permission risk:accept or risk:update")
    return context


Step = Callable[..., Awaitable[RiskAcceptance]]


def _step_route(path: str, step: Step, *, who: Any, name: str, doc: str | None) -> None:
    """One route per workflow step: they differ only in the service function and who may
    call it, so that they cannot drift apart (``today`` goes to the steps that take it)."""
    takes_today = "today" in inspect.signature(step).parameters

    async def handler(
        acceptance_id: uuid.UUID,
        body: Decision,
        *,
        context: RequestContext = Depends(who),
        uow: UowDep,
        day: Today,
    ) -> AcceptanceOut:
        extra = {"today": day} if takes_today else {}
        return _out(
            await step(
                uow=uow,
                context=context,
                acceptance_id=acceptance_id,
                comment=body.comment,
                **extra,
            )
        )

    handler.__name__ = handler.__qualname__ = name
    handler.__doc__ = doc
    router.post(path, responses=errors(404, 409))(handler)


_step_route(
    "/{acceptance_id}/approve",
    service.approve,
    who=require("risk:accept"),
    name="approve_acceptance",
    doc="""The risk becomes ACCEPTED until the acceptance's expiry. Never by the requester; above
    the appetite only with a role level of at least ``acceptance.approver_min_level``.""",
)
_step_route(
    "/{acceptance_id}/reject",
    service.reject,
    who=require("risk:accept"),
    name="reject_acceptance",
    doc=None,
)
_step_route(
    "/{acceptance_id}/revoke",
    service.revoke,
    who=revoker,
    name="revoke_acceptance",
    doc="""End an approved acceptance (risk:accept; the risk is ACTIVE again) or withdraw a
    submitted one (its requester, or risk:accept).""",
)


class ReviewCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    outcome: Literal["unchanged", "updated"]
    comment: Text = ""


class ReviewOut(BaseModel):
    id: uuid.UUID
    risk_id: uuid.UUID
    reviewed_on: date
    outcome: str
    comment: str
    reviewed_by: uuid.UUID | None
    created_at: datetime


@risk_router.post("/{risk_id}/reviews", status_code=status.HTTP_201_CREATED, responses=errors(404))
async def review_risk(
    risk_id: uuid.UUID,
    body: ReviewCreate,
    context: Annotated[RequestContext, Depends(require("risk:update"))],
    uow: UowDep,
    day: Today,
) -> ReviewOut:
    """Record a review of the risk today: the next review is due the band's review days later."""
    made = await reviews.record_review(
        uow=uow,
        context=context,
        risk_id=risk_id,
        outcome=body.outcome,
        comment=body.comment,
        today=day,
    )
    return ReviewOut.model_validate(reviews.out(made))


@risk_router.get("/{risk_id}/reviews", responses=errors(404))
async def list_risk_reviews(
    risk_id: uuid.UUID,
    context: Reader,
    session: SessionDep,
    page: Annotated[PageParams, Depends(page_params)],
) -> Page[ReviewOut]:
    """The risk's reviews, newest first."""
    found, total = await reviews.list_reviews(
        session, context=context, risk_id=risk_id, offset=page.offset, limit=page.page_size
    )
    return Page(
        items=[ReviewOut.model_validate(reviews.out(r)) for r in found],
        total=total,
        page=page.page,
        page_size=page.page_size,
    )
