"""Long registers: keyset cursors for every sort, estimated totals, statements per request
that do not grow with the number of risks."""

from __future__ import annotations

import base64
import csv
import io
from collections.abc import AsyncIterator

import httpx
import pytest_asyncio
from fastapi import FastAPI

from openrisk.app import create_app
from openrisk.core.pagination import CursorPage, Page
from openrisk.dashboard.schemas import TopRisks
from openrisk.risks.enums import SortField, SortOrder
from openrisk.risks.schemas import HistoryOut, Matrix, RiskOut, RiskSearchHit
from tests.api.test_risks_helpers import RISKS, assert_problem, count_queries, new_asset
from tests.conftest import Account, client_for, make_settings, register


def _risks_file(count: int, *, first: int = 0) -> bytes:
    """``count`` risks with many ties: 3 impacts × 2 probabilities, a few titles."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["title", "impact", "probability", "tags", "status"])
    for n in range(first, first + count):
        status = ("ACTIVE", "DRAFT", "MITIGATED")[n % 3]
        writer.writerow([f"Shared heading {n % 4}", 1 + n % 3, 1 + n % 2, f"t{n % 3}", status])
    return buffer.getvalue().encode()


async def _import(client: httpx.AsyncClient, account: Account, content: bytes) -> list[str]:
    response = await client.post(
        f"{RISKS}/import", files={"file": ("r.csv", content, "text/csv")}, headers=account.headers
    )
    assert response.status_code == 200, response.text
    return list(response.json()["ids"])


async def _get(client: httpx.AsyncClient, account: Account, query: str) -> dict[str, object]:
    response = await client.get(f"{RISKS}?{query}", headers=account.headers)
    assert response.status_code == 200, response.text
    return dict(response.json())


async def _walk(
    client: httpx.AsyncClient, account: Account, query: str
) -> tuple[list[str], list[dict[str, object]]]:
    """Every page by cursor: the ids in order, and the answers."""
    answers = [await _get(client, account, query)]
    while answers[-1]["next_cursor"]:
        answers.append(await _get(client, account, f"{query}&cursor={answers[-1]['next_cursor']}"))
    ids = [str(r["id"]) for a in answers for r in a["items"]]  # type: ignore[attr-defined]
    return ids, answers


async def test_cursor_pages_cover_every_sort_exactly_once(
    client: httpx.AsyncClient, admin: Account
) -> None:
    """Walking by cursor gives exactly the rows of one big page, in the same order, for every
    sort and order, with ties on every sort key (the id breaks them); page numbers follow."""
    created = await _import(client, admin, _risks_file(47))
    for sort in SortField:
        for order in SortOrder:
            query = f"sort={sort.value}&order={order.value}"
            whole = [
                str(r["id"]) for r in (await _get(client, admin, f"{query}&page_size=100"))["items"]
            ]  # type: ignore[attr-defined]
            ids, answers = await _walk(client, admin, f"{query}&page_size=10")
            assert ids == whole, (sort, order)
            assert sorted(ids) == sorted(created)
            assert [a["page"] for a in answers] == [1, 2, 3, 4, 5]
            assert all(a["total"] == 47 and a["total_is_estimate"] is False for a in answers)
            offset_page_3 = await _get(client, admin, f"{query}&page_size=10&page=3")
            assert offset_page_3["items"] == answers[2]["items"]
            assert offset_page_3["next_cursor"] == answers[2]["next_cursor"]


async def test_cursor_pages_with_filters_and_concurrent_writes(
    client: httpx.AsyncClient, admin: Account
) -> None:
    """A row written before the cursor's position is not repeated on the next page; one
    written after it is found; filters apply to every page."""
    await _import(client, admin, _risks_file(30))
    query = "sort=created_at&order=asc&page_size=7&status=ACTIVE"
    first = await _get(client, admin, query)
    seen = [r["id"] for r in first["items"]]  # type: ignore[attr-defined]
    later = await _import(client, admin, _risks_file(3, first=99))  # newest: sorts last
    page = await _get(client, admin, f"{query}&cursor={first['next_cursor']}")
    rest = [r["id"] for r in page["items"]]  # type: ignore[attr-defined]
    while page["next_cursor"]:
        page = await _get(client, admin, f"{query}&cursor={page['next_cursor']}")
        rest += [r["id"] for r in page["items"]]  # type: ignore[attr-defined]
    assert not set(seen) & set(rest)
    active_later = [i for n, i in enumerate(later) if (99 + n) % 3 == 0]
    assert rest[-len(active_later) :] == active_later
    assert len(seen) + len(rest) == 10 + len(active_later)


async def test_answers_are_what_the_response_models_serialise(
    client: httpx.AsyncClient, admin: Account
) -> None:
    """Reads write their JSON straight from rows: it must be exactly the models' JSON."""
    asset = await new_asset(client, admin, "HIGH")
    ids = await _import(client, admin, _risks_file(3))
    patched = await client.patch(
        f"{RISKS}/{ids[0]}",
        json={"asset_ids": [asset["id"]], "custom_fields": {}, "review_date": "2030-01-02"},
        headers=admin.headers,
    )
    assert patched.status_code == 200, patched.text
    detail = await client.get(f"{RISKS}/{ids[0]}", headers=admin.headers)
    assert RiskOut.model_validate_json(detail.content).model_dump_json().encode() == detail.content
    assert detail.json() == patched.json()
    for url, model in (
        (f"{RISKS}?page_size=2", CursorPage[RiskOut]),
        (f"{RISKS}/search?q=heading", Page[RiskSearchHit]),
        (f"{RISKS}/{ids[0]}/history", Page[HistoryOut]),
        ("/api/v1/dashboard/top-risks", TopRisks),
        (f"{RISKS}/matrix", Matrix),
    ):
        response = await client.get(url, headers=admin.headers)
        assert response.status_code == 200, response.text
        assert model.model_validate_json(response.content).model_dump_json().encode() == (
            response.content
        ), url


async def test_bad_cursors_are_422_naming_the_cursor(
    client: httpx.AsyncClient, admin: Account
) -> None:
    await _import(client, admin, _risks_file(5))
    cursor = (await _get(client, admin, "sort=score&page_size=2"))["next_cursor"]
    assert isinstance(cursor, str)
    other_sort = await client.get(f"{RISKS}?sort=title&cursor={cursor}", headers=admin.headers)
    assert_problem(other_sort, 422, "cursor")
    other_order = await client.get(
        f"{RISKS}?sort=score&order=asc&cursor={cursor}", headers=admin.headers
    )
    assert_problem(other_order, 422, "cursor")
    raw = bytearray(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    raw[-3] ^= 1  # the position edited: the signature no longer matches
    edited = base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode()
    for bad in (edited, "not-a-cursor", "%00%00", "A" * 1001, "eyJ9"):
        response = await client.get(f"{RISKS}?sort=score&cursor={bad}", headers=admin.headers)
        assert_problem(response, 422, "cursor")


@pytest_asyncio.fixture
async def small_limit_app(database_url: str) -> AsyncIterator[FastAPI]:
    application = create_app(make_settings(database_url, list_exact_count_limit=5))
    async with application.router.lifespan_context(application):
        yield application


async def test_totals_beyond_the_exact_count_limit(small_limit_app: FastAPI) -> None:
    """Up to the limit a total is exact; beyond it PostgreSQL estimates (flagged, never
    below what was counted), SQLite counts exactly; cheap counts (roll-ups, one label) are
    always exact."""
    async with client_for(small_limit_app) as client:
        admin = await register(client)
        await _import(client, admin, _risks_file(12))
        postgres = small_limit_app.state.db.engine.dialect.name == "postgresql"
        broad = await _get(client, admin, "min_score=1&q=heading")  # 12 match
        narrow = await _get(client, admin, "min_score=1&q=heading&tag=t0")  # 4 match
        text_only = await _get(client, admin, "q=heading")
        if postgres:
            assert broad["total_is_estimate"] is True and broad["total"] >= 6  # type: ignore[operator]
            assert text_only["total_is_estimate"] is True and text_only["total"] >= 6  # type: ignore[operator]
        else:
            assert (broad["total"], broad["total_is_estimate"]) == (12, False)
            assert (text_only["total"], text_only["total_is_estimate"]) == (12, False)
        assert (narrow["total"], narrow["total_is_estimate"]) == (4, False)
        for exact in ("status=ACTIVE", "tag=t1", ""):
            answer = await _get(client, admin, exact)
            assert answer["total_is_estimate"] is False
            assert answer["total"] == len([n for n in range(12) if _matches(exact, n)])


def _matches(query: str, n: int) -> bool:
    if query == "status=ACTIVE":
        return n % 3 == 0
    if query == "tag=t1":
        return n % 3 == 1
    return True


def _per_caller(statement: str) -> bool:
    return any(
        marker in statement for marker in ("set_config", "FROM memberships", "FROM refresh_tokens")
    )


LIST_QUERIES = (
    "",
    "page=3&page_size=5",
    "sort=score&order=asc",
    "sort=title&status=ACTIVE",
    "tag=t1&sort=impact",
    "q=heading",
    "q=heading&sort=score&status=DRAFT",
    "min_score=2",
)


async def test_statements_per_request_do_not_grow_with_the_register(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    """The same requests run the same number of statements on a register of 20 and of 400
    risks (with asset links on some): lists at most 3, cursor pages included."""
    counts: list[dict[str, int]] = []
    for risks in (20, 400):
        owner = await register(client, tenant_name=f"Size {risks}")
        asset = await new_asset(client, owner, "HIGH")
        ids = await _import(client, owner, _risks_file(risks))
        for risk_id in ids[::7]:
            linked = await client.patch(
                f"{RISKS}/{risk_id}", json={"asset_ids": [asset["id"]]}, headers=owner.headers
            )
            assert linked.status_code == 200, linked.text
        cursor = (await _get(client, owner, "page_size=5&sort=score"))["next_cursor"]
        urls = [f"{RISKS}?{q}" for q in LIST_QUERIES]
        urls.append(f"{RISKS}?page_size=5&sort=score&cursor={cursor}")
        urls += [
            f"{RISKS}?asset_id={asset['id']}",
            f"{RISKS}?owner_id={owner.user_id}",
            f"{RISKS}/search?q=heading",
            f"{RISKS}/{ids[0]}",
            f"{RISKS}/{ids[0]}/history",
            f"{RISKS}/matrix?status=ACTIVE",
            "/api/v1/dashboard/matrix",
            "/api/v1/dashboard/stats?period=30d",
            "/api/v1/dashboard/timeline?days=365",
            "/api/v1/dashboard/top-risks",
        ]
        await client.get(RISKS, headers=owner.headers)  # resolve (and cache) the membership
        measured: dict[str, int] = {}
        for url in urls:
            with count_queries(app) as statements:
                response = await client.get(url, headers=owner.headers)
            assert response.status_code == 200, (url, response.text)
            name = url.replace(str(cursor), "<cursor>").replace(owner.user_id, "<me>")
            name = name.replace(str(asset["id"]), "<asset>").replace(ids[0], "<risk>")
            # not counted: the tenant's RLS setting, which rides with the transaction
            # (PostgreSQL), and re-reading the caller's authorization when its short-lived
            # cache entry lapses mid-test on a slow host - neither depends on the register
            measured[name] = len([s for s in statements if not _per_caller(s)])
        counts.append(measured)
    small, large = counts
    assert large == small
    for url, statements in small.items():
        if url.startswith(f"{RISKS}?"):
            assert statements <= 3, (url, statements)
