"""Keyset pages of the register: where a page starts, from a cursor or a page number, and the
cursor of the page after it. Shared by the API and the web UI's pager."""

from __future__ import annotations

from dataclasses import dataclass

from openrisk.core.pagination import CursorCodec, InvalidCursor
from openrisk.risks import queries
from openrisk.risks.enums import SortField, SortOrder
from openrisk.risks.reads import RiskPage

MAX_PAGE = 10**9


@dataclass(frozen=True)
class Position:
    """Where a page starts: after these sort key values (a cursor), else at an offset."""

    page: int
    offset: int
    after: tuple[object, ...] | None = None


def start(
    codec: CursorCodec,
    token: str | None,
    *,
    page: int,
    page_size: int,
    sort: SortField,
    order: SortOrder,
) -> Position:
    """The page's start: from ``token`` when given (signed, of this sort and order, else
    InvalidCursor), else page ``page``."""
    if token is None:
        return Position(page=page, offset=(page - 1) * page_size)
    payload = codec.decode(token)
    if payload.get("s") != sort.value or payload.get("o") != order.value:
        raise InvalidCursor("belongs to another sort or order; start again without it")
    number = payload.get("p")
    if not isinstance(number, int) or isinstance(number, bool) or not 1 < number <= MAX_PAGE:
        raise InvalidCursor("is not a cursor of this list")
    try:
        after = queries.keys_from_json(sort, payload.get("k"))
    except ValueError as problem:
        raise InvalidCursor(str(problem)) from None
    return Position(page=number, offset=(number - 1) * page_size, after=after)


def following(
    codec: CursorCodec, found: RiskPage, at: Position, *, sort: SortField, order: SortOrder
) -> str | None:
    """The cursor of the page after ``found`` (None when it was the last)."""
    if found.next_after is None or at.page >= MAX_PAGE:
        return None
    return codec.encode(
        {
            "s": sort.value,
            "o": order.value,
            "k": queries.keys_to_json(found.next_after),
            "p": at.page + 1,
        }
    )
