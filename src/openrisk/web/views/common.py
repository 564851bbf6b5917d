"""Helpers shared by the pages: paging, lenient query parsing, member names."""

from __future__ import annotations

import math
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from fastapi import APIRouter, Request
from sqlalchemy.ext.asyncio import AsyncSession

from openrisk.rbac.authz_cache import AuthzCache
from openrisk.tenants import members
from openrisk.web.context import WebContext
from openrisk.web.rendering import WebRoute

MEMBER_DIRECTORY_LIMIT = 500


def page_router() -> APIRouter:
    return APIRouter(route_class=WebRoute, include_in_schema=False)


@dataclass(frozen=True)
class Pager:
    page: int
    page_size: int
    total: int
    next_cursor: str | None = None  # the next page by keyset (lists that offer it)
    total_is_estimate: bool = False

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.page_size

    @property
    def pages(self) -> int:
        return max(1, math.ceil(self.total / self.page_size))

    @property
    def first_item(self) -> int:
        return min(self.offset + 1, self.total)

    @property
    def last_item(self) -> int:
        return min(self.offset + self.page_size, self.total)

    def with_total(self, total: int) -> Pager:
        return Pager(self.page, self.page_size, total)


def int_param(request: Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query_params.get(name, "")
    try:
        value = int(raw)
    except ValueError:
        return default
    return min(max(value, low), high)


def pager(
    request: Request, *, default_size: int = 20, sizes: Sequence[int] = (20, 50, 100)
) -> Pager:
    size = int_param(request, "page_size", default_size, 1, 100)
    if size not in sizes:
        size = default_size
    return Pager(int_param(request, "page", 1, 1, 1_000_000), size, 0)


def choice(request: Request, name: str, allowed: Sequence[str], default: str) -> str:
    value = request.query_params.get(name, default)
    return value if value in allowed else default


def choices(request: Request, name: str, allowed: Sequence[str]) -> list[str]:
    return [v for v in request.query_params.getlist(name) if v in allowed]


def uuid_param(value: str | None) -> uuid.UUID | None:
    try:
        return uuid.UUID(value) if value else None
    except ValueError:
        return None


def date_param(value: str | None) -> date | None:
    try:
        return date.fromisoformat(value) if value else None
    except ValueError:
        return None


async def member_directory(
    request: Request, session: AsyncSession, web: WebContext
) -> dict[uuid.UUID, members.MemberRow]:
    """The tenant's members by user id (owner and assignee names, pickers); empty for callers
    who may not list members (the API would not tell them either).

    Kept in the authorization cache: every membership or role change empties it.
    """
    if not web.has("member:read"):
        return {}
    authz: AuthzCache = request.app.state.authz

    async def load() -> dict[uuid.UUID, members.MemberRow]:
        rows, _ = await members.list_members(
            session, context=web.context, offset=0, limit=MEMBER_DIRECTORY_LIMIT
        )
        return {row.user_id: row for row in rows}

    return await authz.get_or_load(("web-directory", web.tenant_id), load)
