"""Generating, listing and reading stored reports (tenant-owned; rows of another tenant are
NotFound). Rendering runs in a worker thread so the event loop keeps serving requests."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import undefer

from openrisk.audit.service import record
from openrisk.core.context import RequestContext
from openrisk.core.errors import NotFound
from openrisk.core.events import DomainEvent
from openrisk.core.ids import new_id
from openrisk.core.uow import UnitOfWork, commit_with
from openrisk.reports.data import collect
from openrisk.reports.models import Report, ReportJob
from openrisk.reports.render import CONTENT_TYPES, render
from openrisk.reports.schemas import ReportFormat, ReportKind


async def create_report(
    *,
    uow: UnitOfWork,
    context: RequestContext,
    kind: ReportKind,
    fmt: ReportFormat,
    job: ReportJob | None = None,
    finished_at: datetime | None = None,
) -> Report:
    """Generate and keep a report; with ``job`` (a report job's run), the job is done with it,
    in the same commit."""
    session = uow.session
    data = await collect(session, tenant_id=context.tenant_id, register=kind is ReportKind.register)
    content = await asyncio.to_thread(render, kind.value, fmt.value, data)
    stamp = data.generated_at.strftime("%Y%m%d-%H%M%S")
    report = Report(
        id=new_id(),
        tenant_id=context.tenant_id,
        kind=kind.value,
        format=fmt.value,
        filename=f"{kind.value}-{data.tenant_slug}-{stamp}.{fmt.value}",
        content_type=CONTENT_TYPES[fmt.value],
        size_bytes=len(content),
        summary=data.summary(),
        content=content,
        created_by=context.user_id,
        created_at=data.generated_at,
    )
    session.add(report)
    record(
        session,
        context=context,
        action="report.create",
        resource_type="report",
        resource_id=report.id,
        changes={
            "kind": {"before": None, "after": kind.value},
            "format": {"before": None, "after": fmt.value},
        },
    )
    await session.flush()
    if job is not None:
        job.report_id, job.status = report.id, "done"
        job.finished_at = finished_at or data.generated_at
    created = DomainEvent(
        type="report.created",
        tenant_id=context.tenant_id,
        resource_id=report.id,
        data={"kind": report.kind, "format": report.format},
        actor_id=context.user_id,
    )
    await commit_with(uow, [created])
    return report


async def list_reports(
    session: AsyncSession,
    *,
    context: RequestContext,
    kind: ReportKind | None,
    fmt: ReportFormat | None,
    offset: int,
    limit: int,
) -> tuple[list[Report], int]:
    """Newest first; the file contents are not loaded."""
    query = select(Report).where(Report.tenant_id == context.tenant_id)
    if kind is not None:
        query = query.where(Report.kind == kind.value)
    if fmt is not None:
        query = query.where(Report.format == fmt.value)
    total = await session.scalar(select(func.count()).select_from(query.subquery()))
    rows = await session.scalars(
        query.order_by(Report.created_at.desc(), Report.id).offset(offset).limit(limit)
    )
    return list(rows), int(total or 0)


async def get_report(
    session: AsyncSession, *, context: RequestContext, report_id: uuid.UUID
) -> Report:
    """A report of the caller's tenant with its content."""
    report = await session.scalar(
        select(Report)
        .where(Report.id == report_id, Report.tenant_id == context.tenant_id)
        .options(undefer(Report.content))
    )
    if report is None:
        raise NotFound("Report not found.")
    return report
