"""The register's cached answers: list pages, search pages, the filtered matrix and a risk's
detail, each computed as the document the API answers and declared as a cached read (at the
end) beside the function computing it. The routes (``risks/router.py``) only parse and call.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from openrisk.core.cache.invalidation import (
    ASSETS,
    CUSTOM_FIELDS,
    REGISTER_VIEWS,
    RISK_MODEL,
    risk_key,
)
from openrisk.core.cache.reads import cached_read
from openrisk.core.errors import ValidationFailed
from openrisk.core.pagination import CursorCodec, InvalidCursor
from openrisk.methodology.store import scoring_for
from openrisk.risks import commands, cursors, documents, reads
from openrisk.risks.enums import SortField, SortOrder
from openrisk.risks.queries import RiskFilters


@dataclass(frozen=True)
class FilterParams:
    """The list filters as asked: the typed ones, and ``cf_<name>`` values by name."""

    filters: RiskFilters = field(default_factory=RiskFilters)
    custom: dict[str, str] = field(default_factory=dict)


async def resolve_filters(
    session: AsyncSession, *, tenant_id: uuid.UUID, params: FilterParams
) -> RiskFilters:
    """The filters checked against the tenant's risk model (bands and levels, 422 naming the
    field) with the custom-field values typed."""
    wanted = params.filters
    if wanted.severity or wanted.impact or wanted.probability:
        scoring = await scoring_for(session, tenant_id=tenant_id)
        bands = [b.name for b in scoring.bands]
        unknown = [s for s in wanted.severity if s not in bands]
        if unknown:
            raise ValidationFailed.field(
                "severity",
                f"not a band of the tenant's risk model: {', '.join(unknown)} "
                f"(bands: {', '.join(bands)})",
            )
        for name, chosen, top in (
            ("impact", wanted.impact, scoring.impact_levels),
            ("probability", wanted.probability, scoring.probability_levels),
        ):
            if any(level > top for level in chosen):
                raise ValidationFailed.field(name, commands.level_message(name, top))
    custom = await reads.custom_filters(session, tenant_id=tenant_id, raw=params.custom)
    if not custom:
        return params.filters
    return RiskFilters(**{**params.filters.__dict__, "custom": custom})


async def list_page(
    session: AsyncSession,
    *,
    tenant_id: uuid.UUID,
    params: FilterParams,
    sort: SortField,
    order: SortOrder,
    page: int,
    page_size: int,
    cursor: str | None,
    codec: CursorCodec,
    count_limit: int,
) -> bytes:
    """One page of the register, by ``page`` or by ``cursor`` (the previous page's)."""
    try:
        at = cursors.start(codec, cursor, page=page, page_size=page_size, sort=sort, order=order)
    except InvalidCursor as problem:
        raise ValidationFailed.field("cursor", str(problem)) from None
    filters = await resolve_filters(session, tenant_id=tenant_id, params=params)
    found = await reads.list_risks(
        session,
        tenant_id=tenant_id,
        filters=filters,
        sort=sort,
        order=order,
        offset=at.offset,
        limit=page_size,
        after=at.after,
        count_limit=count_limit,
    )
    return documents.page(
        [r.document() for r in found.items],
        total=found.total,
        page=at.page,
        page_size=page_size,
        cursor=(
            cursors.following(codec, found, at, sort=sort, order=order),
            found.total_is_estimate,
        ),
    )


async def search_page(
    session: AsyncSession, *, tenant_id: uuid.UUID, q: str, page: int, page_size: int
) -> bytes:
    hits, total = await reads.search_risks(
        session, tenant_id=tenant_id, q=q, offset=(page - 1) * page_size, limit=page_size
    )
    return documents.page(
        [{**hit.document(), "rank": rank} for hit, rank in hits],
        total=total,
        page=page,
        page_size=page_size,
    )


async def matrix(
    session: AsyncSession, *, tenant_id: uuid.UUID, params: FilterParams
) -> dict[str, Any]:
    filters = await resolve_filters(session, tenant_id=tenant_id, params=params)
    return await reads.matrix(session, tenant_id=tenant_id, filters=filters)


async def detail(session: AsyncSession, *, tenant_id: uuid.UUID, risk_id: uuid.UUID) -> bytes:
    """One live risk as ``GET /risks/{id}`` shows it (NotFound is never cached)."""
    found = await reads.get_listed(session, tenant_id=tenant_id, risk_id=risk_id)
    return documents.dumps(found.document())


# --------------------------------------------------------------------------- cached reads
# Readers holding risk:read on every row share answers; "own"-scoped readers never do. The
# codec and the count limit are the process's settings (the same in every worker).

LIST = cached_read(
    list_page,
    namespace="risk:list",
    ttl=300,
    varies_on=(
        "tenant",
        "reader:risk:read",
        "params",
        "sort",
        "order",
        "page",
        "page_size",
        "cursor",
    ),
    uses=("session", "codec", "count_limit"),
    depends_on=REGISTER_VIEWS,
)
SEARCH = cached_read(
    search_page,
    namespace="risk:search",
    ttl=300,
    varies_on=("tenant", "reader:risk:read", "q", "page", "page_size"),
    depends_on=REGISTER_VIEWS,
)
MATRIX = cached_read(
    matrix,
    namespace="risk:matrix",
    ttl=300,
    varies_on=("tenant", "reader:risk:read", "params"),
    depends_on=REGISTER_VIEWS,
    encode=documents.dumps,
)
DETAIL = cached_read(
    detail,
    namespace="risk:detail",
    ttl=300,
    varies_on=("tenant", "reader:risk:read", "risk_id"),
    depends_on=lambda inputs: (risk_key(inputs["risk_id"]), ASSETS, CUSTOM_FIELDS, RISK_MODEL),
)
