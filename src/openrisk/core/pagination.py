"""Page parameters, the ``{items, total, page, page_size}`` envelope and cursors.

Two ways through a long list: ``page=N`` (OFFSET: any page directly, its cost grows with N)
and ``cursor=`` (keyset: the ``next_cursor`` of the previous answer; every page costs the same,
and rows written meanwhile neither repeat nor go missing at the page boundary). A cursor is
opaque to clients: a signed, URL-safe token naming the sort it belongs to and the position
after which the next page starts.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Generic, TypeVar

import orjson
from fastapi import Query
from pydantic import BaseModel, Field

MAX_PAGE_SIZE = 100
DEFAULT_PAGE_SIZE = 20
MAX_CURSOR_LENGTH = 1_000
_MAC_BYTES = 12


@dataclass(frozen=True)
class PageParams:
    page: int = 1
    page_size: int = DEFAULT_PAGE_SIZE
    cursor: str | None = None

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.page_size


async def page_params(
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
    page_size: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = DEFAULT_PAGE_SIZE,
) -> PageParams:
    return PageParams(page=page, page_size=page_size)


async def cursor_page_params(
    page: Annotated[int, Query(ge=1, le=1_000_000, description="Ignored with a cursor")] = 1,
    page_size: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = DEFAULT_PAGE_SIZE,
    cursor: Annotated[
        str | None,
        Query(
            max_length=MAX_CURSOR_LENGTH,
            description="`next_cursor` of the previous page (same sort and order)",
        ),
    ] = None,
) -> PageParams:
    return PageParams(page=page, page_size=page_size, cursor=cursor or None)


T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    items: list[T]
    total: int
    page: int
    page_size: int


class CursorPage(Page[T], Generic[T]):
    """A page of a list that also offers keyset pagination and may estimate its total."""

    next_cursor: str | None = Field(
        default=None,
        description="Pass as `cursor` for the next page; null on the last page",
    )
    total_is_estimate: bool = Field(
        default=False,
        description=(
            "true when counting every match exactly would be slow: `total` is then the "
            "database's estimate (and more than the exact-count limit)"
        ),
    )


class InvalidCursor(ValueError):
    """A cursor that was not issued by this deployment (or was altered)."""


class CursorCodec:
    """Signs and reads cursors: ``base64url(mac ‖ json)``, HMAC-SHA256 under a key derived
    from the deployment's secret, so a cursor cannot be forged or edited into another sort."""

    def __init__(self, secret: str) -> None:
        self._key = hashlib.sha256(b"openrisk-page-cursor\0" + secret.encode()).digest()

    def encode(self, payload: Mapping[str, Any]) -> str:
        body = orjson.dumps(payload)
        mac = hmac.new(self._key, body, hashlib.sha256).digest()[:_MAC_BYTES]
        return base64.urlsafe_b64encode(mac + body).rstrip(b"=").decode("ascii")

    def decode(self, token: str) -> dict[str, Any]:
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        except (binascii.Error, ValueError):
            raise InvalidCursor("is not a cursor") from None
        mac, body = raw[:_MAC_BYTES], raw[_MAC_BYTES:]
        expected = hmac.new(self._key, body, hashlib.sha256).digest()[:_MAC_BYTES]
        if len(mac) != _MAC_BYTES or not hmac.compare_digest(mac, expected):
            raise InvalidCursor("is not a cursor of this list")
        try:
            payload = orjson.loads(body)
        except orjson.JSONDecodeError:
            raise InvalidCursor("is not a cursor") from None
        if not isinstance(payload, dict):
            raise InvalidCursor("is not a cursor")
        return payload
