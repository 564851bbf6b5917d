"""Risk register routes: list/filter/sort, CRUD, search, matrix, history, import,
export and bulk. Thin: parse, check the permission, call the service."""

from __future__ import annotations

import re
import uuid
from decimal import Decimal
from typing import Annotated, Literal

from fastapi import Depends, File, Header, Query, Request, UploadFile, status
from fastapi.responses import StreamingResponse
from pydantic import Field, StringConstraints
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import Response

from openrisk.auth.deps import ContextDep, require
from openrisk.core.cache.http import respond, serves
from openrisk.core.context import RequestContext
from openrisk.core.deps import DatabaseDep, SessionDep
from openrisk.core.errors import Forbidden
from openrisk.core.pagination import (
    CursorPage,
    Page,
    PageParams,
    cursor_page_params,
    page_params,
)
from openrisk.core.routing import api_router
from openrisk.core.uow import UowDep
from openrisk.methodology import clock
from openrisk.risks import answers, bulk, commands, documents, reads, transfer
from openrisk.risks import bin as risk_bin
from openrisk.risks.answers import FilterParams
from openrisk.risks.enums import RiskStatus, SortField, SortOrder
from openrisk.risks.queries import RiskFilters
from openrisk.risks.responses import ERRORS, errors
from openrisk.risks.schemas import (
    BulkRequest,
    BulkResult,
    DeletedRiskOut,
    ExportFormat,
    HistoryOut,
    ImportResult,
    Matrix,
    RiskCreate,
    RiskOut,
    RiskSearchHit,
    RiskUpdate,
)
from openrisk.risks.text import reject_nul

Level = Annotated[int, Field(ge=1, le=10)]
BandName = Annotated[str, StringConstraints(pattern=r"^[A-Z][A-Z0-9_]{0,7}$")]
router = api_router("/risks", tags=["risks"])
router.responses = dict(ERRORS)

Reader = Annotated[RequestContext, Depends(require("risk:read"))]
Pagination = Annotated[PageParams, Depends(page_params)]
CursorPagination = Annotated[PageParams, Depends(cursor_page_params)]
CUSTOM_PREFIX = "cf_"
CUSTOM_NAME = re.compile(r"^cf_[a-z][a-z0-9_]{0,39}$")
MAX_CUSTOM_FILTERS = 20


async def filter_params(
    request: Request,
    q: Annotated[str | None, Query(max_length=200, description="Full-text filter")] = None,
    status: Annotated[list[RiskStatus] | None, Query(description="Any of")] = None,
    severity: Annotated[
        list[BandName] | None, Query(description="Any of (bands of the tenant's risk model)")
    ] = None,
    min_score: Annotated[float | None, Query(ge=0, le=100)] = None,
    max_score: Annotated[float | None, Query(ge=0, le=100)] = None,
    tag: Annotated[list[str] | None, Query(description="Risks carrying all of these")] = None,
    framework: Annotated[list[str] | None, Query(description="All of these")] = None,
    owner_id: uuid.UUID | None = None,
    asset_id: uuid.UUID | None = None,
    impact: Annotated[list[Level] | None, Query(description="Any of (1..10)")] = None,
    probability: Annotated[list[Level] | None, Query(description="Any of (1..10)")] = None,
    above_appetite: Annotated[
        bool | None, Query(description="true: current score above the tenant's appetite")
    ] = None,
    residual_above_appetite: Annotated[
        bool | None, Query(description="true: residual score above the tenant's appetite")
    ] = None,
    review: Annotated[
        Literal["overdue", "due_soon"] | None,
        Query(description="Next review date passed, or within 14 days"),
    ] = None,
) -> FilterParams:
    """List filters; ``cf_<name>=value`` filters on a custom field (unknown names ignored)."""
    reject_nul("q", q)
    reject_nul("tag", *(tag or []))
    reject_nul("framework", *(framework or []))
    custom = {
        key[len(CUSTOM_PREFIX) :]: value
        for key, value in request.query_params.items()
        if CUSTOM_NAME.match(key)
    }
    for name, value in custom.items():
        reject_nul(f"cf_{name}", value)
    filters = RiskFilters(
        q=q,
        status=tuple(s.value for s in status or []),
        severity=tuple(severity or []),
        min_score=Decimal(str(min_score)) if min_score is not None else None,
        max_score=Decimal(str(max_score)) if max_score is not None else None,
        tags=tuple(t.strip().lower() for t in tag or [] if t.strip()),
        frameworks=tuple(f.strip() for f in framework or [] if f.strip()),
        owner_id=owner_id,
        asset_id=asset_id,
        impact=tuple(sorted(set(impact or []))),
        probability=tuple(sorted(set(probability or []))),
        above_appetite=above_appetite,
        residual_above_appetite=residual_above_appetite,
        review=review,
        review_today=clock.today() if review else None,
    )
    return FilterParams(filters, dict(list(custom.items())[:MAX_CUSTOM_FILTERS]))


Filters = Annotated[FilterParams, Depends(filter_params)]


@router.get("", response_model=CursorPage[RiskOut])
@serves(answers.LIST)
async def list_risks(
    request: Request,
    context: Reader,
    session: SessionDep,
    params: Filters,
    page: CursorPagination,
    sort: SortField = SortField.CREATED_AT,
    order: SortOrder = SortOrder.DESC,
) -> Response:
    """The register: filter, sort and paginate (all in SQL). Cached per tenant and parameters.

    Pages by ``page`` (any page directly) or by ``cursor`` (the previous answer's
    ``next_cursor``: constant cost however deep, stable while rows are written). ``total`` is
    exact up to ``OPENRISK_LIST_EXACT_COUNT_LIMIT`` (1,000) matches; beyond that it may be the
    database's estimate, flagged by ``total_is_estimate``."""
    return await respond(
        request,
        answers.LIST,
        session=session,
        context=context,
        tenant_id=context.tenant_id,
        params=params,
        sort=sort,
        order=order,
        page=page.page,
        page_size=page.page_size,
        cursor=page.cursor,
        codec=request.app.state.cursors,
        count_limit=request.app.state.settings.list_exact_count_limit,
    )


async def with_etag(
    session: AsyncSession, tenant_id: uuid.UUID, record: reads.RiskRecord, status_code: int = 200
) -> Response:
    """The risk as ``GET /risks/{id}`` will show it, read back from the database, with its
    ETag: the token to send as If-Match on the next PATCH."""
    listed = await reads.get_listed(session, tenant_id=tenant_id, risk_id=record.risk.id)
    body, etag = documents.dumps(listed.document()), listed.etag()
    await session.rollback()  # a read: end its transaction here, not after the answer is sent
    return Response(
        body, status_code=status_code, media_type="application/json", headers={"ETag": etag}
    )


@router.post("", status_code=status.HTTP_201_CREATED, response_model=RiskOut)
async def create_risk(
    body: RiskCreate,
    context: Annotated[RequestContext, Depends(require("risk:create"))],
    uow: UowDep,
) -> Response:
    """Create a risk; score and severity are computed. The answer's ETag guards the next
    PATCH (If-Match)."""
    created = await commands.create_risk(uow=uow, context=context, data=body)
    return await with_etag(uow.session, context.tenant_id, created, status.HTTP_201_CREATED)


@router.get("/search", response_model=Page[RiskSearchHit])
@serves(answers.SEARCH)
async def search_risks(
    request: Request,
    context: Reader,
    session: SessionDep,
    page: Pagination,
    q: Annotated[str, Query(min_length=1, max_length=200)],
) -> Response:
    """Ranked full-text search over titles (weighted higher) and descriptions. Cached."""
    reject_nul("q", q)
    return await respond(
        request,
        answers.SEARCH,
        session=session,
        context=context,
        tenant_id=context.tenant_id,
        q=q,
        page=page.page,
        page_size=page.page_size,
    )


@router.get("/matrix", response_model=Matrix)
@serves(answers.MATRIX)
async def risk_matrix(
    request: Request, context: Reader, session: SessionDep, params: Filters
) -> Response:
    """Impact × probability counts (all 25 cells) of the risks matching the list filters."""
    return await respond(
        request,
        answers.MATRIX,
        session=session,
        context=context,
        tenant_id=context.tenant_id,
        params=params,
    )


_EXPORT_CONTENT = {
    "text/csv": {"schema": {"type": "string"}},
    "application/json": {
        "schema": {"type": "array", "items": {"$ref": "#/components/schemas/RiskOut"}}
    },
    transfer.XLSX_MEDIA_TYPE: {"schema": {"type": "string", "format": "binary"}},
}


@router.get(
    "/export",
    response_class=StreamingResponse,
    responses={200: {"description": "The matching risks", "content": _EXPORT_CONTENT}},
)
async def export_risks(
    context: Annotated[RequestContext, Depends(require("risk:export"))],
    session: SessionDep,
    database: DatabaseDep,
    params: Filters,
    format: ExportFormat = ExportFormat.csv,
    sort: SortField = SortField.CREATED_AT,
    order: SortOrder = SortOrder.DESC,
) -> StreamingResponse:
    """Stream the matching risks as CSV, JSON or XLSX (custom fields as ``cf_<name>``)."""
    filters = await answers.resolve_filters(session, tenant_id=context.tenant_id, params=params)
    stream = transfer.export_stream(
        database, tenant_id=context.tenant_id, filters=filters, sort=sort, order=order, fmt=format
    )
    filename = f"risks-{context.tenant_slug}.{format.value}"
    return StreamingResponse(
        stream,
        media_type=transfer.MEDIA_TYPES[format],
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


@router.post("/import", responses=errors(413))
async def import_risks(
    context: Annotated[RequestContext, Depends(require("risk:create"))],
    uow: UowDep,
    file: Annotated[UploadFile, File(description="CSV (UTF-8) or XLSX, header row first")],
    dry_run: Annotated[bool, Query(description="Validate only; write nothing")] = False,
) -> ImportResult:
    """Import risks: rows with the ``id`` of a live risk update it, others create risks.
    All rows are written or none; errors name the row and the column."""
    content = await file.read()
    return await transfer.import_file(
        uow=uow, context=context, filename=file.filename or "", content=content, dry_run=dry_run
    )


BULK_CODES = ("risk:update", "risk:delete", "risk:assign")


async def bulk_context(context: ContextDep) -> RequestContext:
    if not any(context.has(code) for code in BULK_CODES):
        raise Forbidden("Missing permission risk:update, risk:delete or risk:assign")
    return context


@router.post("/bulk")
async def bulk_risks(
    body: BulkRequest,
    context: Annotated[RequestContext, Depends(bulk_context)],
    uow: UowDep,
) -> BulkResult:
    """Update, assign or delete many risks; permissions are checked per row, with per-row
    results (``code`` 200, 403, 404 or 422)."""
    return await bulk.bulk(uow=uow, context=context, request=body)


Deleter = Annotated[RequestContext, Depends(require("risk:delete"))]


@router.get("/deleted")
async def list_deleted_risks(
    context: Deleter, session: SessionDep, page: Pagination
) -> Page[DeletedRiskOut]:
    """The bin: the tenant's deleted risks, most recently deleted first, with who deleted each
    and how many mitigations went with it. With ``risk:delete:own``, only the caller's own."""
    rows, total = await risk_bin.list_deleted(
        session, context=context, offset=page.offset, limit=page.page_size
    )
    return Page[DeletedRiskOut](
        items=[DeletedRiskOut.model_validate(row) for row in rows],
        total=total,
        page=page.page,
        page_size=page.page_size,
    )


@router.get("/{risk_id}", responses=errors(404), response_model=RiskOut)
@serves(answers.DETAIL)
async def get_risk(
    request: Request, risk_id: uuid.UUID, context: Reader, session: SessionDep
) -> Response:
    """One risk. Cached; a 404 is never cached."""
    return await respond(
        request,
        answers.DETAIL,
        session=session,
        context=context,
        tenant_id=context.tenant_id,
        risk_id=risk_id,
    )


@router.patch("/{risk_id}", responses=errors(404, 412), response_model=RiskOut)
async def update_risk(
    risk_id: uuid.UUID,
    body: RiskUpdate,
    context: Annotated[RequestContext, Depends(require("risk:update"))],
    uow: UowDep,
    if_match: Annotated[
        str | None,
        Header(
            max_length=400,
            description='The ETag of the last GET or write, or the version, e.g. "3"',
        ),
    ] = None,
) -> Response:
    """Partial update. A stale ``If-Match`` (ETag or version) or body ``version`` is answered
    412. Changing ``owner_id`` needs risk:assign; setting status ACCEPTED needs risk:accept.
    The answer carries the new ETag."""
    updated = await commands.update_risk(
        uow=uow, context=context, risk_id=risk_id, data=body, if_match=if_match
    )
    return await with_etag(uow.session, context.tenant_id, updated)


@router.delete("/{risk_id}", status_code=status.HTTP_204_NO_CONTENT, responses=errors(404))
async def delete_risk(
    risk_id: uuid.UUID,
    context: Annotated[RequestContext, Depends(require("risk:delete"))],
    uow: UowDep,
) -> None:
    """Soft-delete a risk (and its mitigations)."""
    await commands.delete_risk(uow=uow, context=context, risk_id=risk_id)


@router.post("/{risk_id}/restore", responses=errors(404, 409, 412), response_model=RiskOut)
async def restore_risk(risk_id: uuid.UUID, context: Deleter, uow: UowDep) -> Response:
    """Take a risk out of the bin, with the mitigations deleted together with it, rescored
    from its assets as they are now. 409 when the risk is not deleted. The answer is the risk
    as ``GET /risks/{id}`` shows it, with its ETag."""
    restored = await risk_bin.restore_risk(uow=uow, context=context, risk_id=risk_id)
    return await with_etag(uow.session, context.tenant_id, restored)


@router.get("/{risk_id}/history", responses=errors(404), response_model=Page[HistoryOut])
async def risk_history(
    risk_id: uuid.UUID, context: Reader, session: SessionDep, page: Pagination
) -> Response:
    """Every change of the risk, newest first, with before/after values."""
    rows, total = await reads.list_history(
        session,
        tenant_id=context.tenant_id,
        risk_id=risk_id,
        offset=page.offset,
        limit=page.page_size,
    )
    body = documents.page(
        [documents.history(r) for r in rows],
        total=total,
        page=page.page,
        page_size=page.page_size,
    )
    return Response(body, media_type="application/json")
