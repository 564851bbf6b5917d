"""The ETag is the optimistic-locking token: what GET /risks/{id} and every write answer can be
sent back as If-Match; the version number is still accepted; a stale one is a 412."""

from __future__ import annotations

import asyncio

import httpx

from tests.conftest import Account

RISKS = "/api/v1/risks"


async def _create(client: httpx.AsyncClient, admin: Account) -> httpx.Response:
    made = await client.post(
        RISKS,
        json={"title": "Locked risk", "impact": 3, "probability": 4},
        headers=admin.in_tenant(),
    )
    assert made.status_code == 201, made.text
    return made


async def test_the_etag_of_a_read_or_a_write_guards_the_next_patch(
    client: httpx.AsyncClient, admin: Account
) -> None:
    h = admin.in_tenant()
    made = await _create(client, admin)
    url = f"{RISKS}/{made.json()['id']}"
    read = await client.get(url, headers=h)
    assert read.headers["ETag"] == made.headers["ETag"]  # the write's ETag is the read's

    patched = await client.patch(
        url, json={"title": "Renamed"}, headers={**h, "If-Match": read.headers["ETag"]}
    )
    assert patched.status_code == 200, patched.text
    assert patched.headers["ETag"] != read.headers["ETag"]
    again = await client.get(url, headers=h)
    assert again.headers["ETag"] == patched.headers["ETag"]

    stale = await client.patch(
        url, json={"title": "Lost update"}, headers={**h, "If-Match": read.headers["ETag"]}
    )
    assert stale.status_code == 412
    assert stale.headers["content-type"].startswith("application/problem+json")
    assert "ETag" in stale.json()["detail"]

    weak_and_listed = await client.patch(
        url,
        json={"title": "Third"},
        headers={**h, "If-Match": f'"nope", W/{again.headers["ETag"]}'},
    )
    assert weak_and_listed.status_code == 200, weak_and_listed.text
    by_version = await client.patch(url, json={"title": "Fourth"}, headers={**h, "If-Match": '"3"'})
    assert by_version.status_code == 200 and by_version.json()["version"] == 4
    assert (await client.get(url, headers=h)).json()["title"] == "Fourth"


async def test_concurrent_patches_with_one_etag_have_one_winner(
    client: httpx.AsyncClient, admin: Account
) -> None:
    h = admin.in_tenant()
    made = await _create(client, admin)
    url = f"{RISKS}/{made.json()['id']}"
    etag = made.headers["ETag"]
    answers = await asyncio.gather(
        *(
            client.patch(url, json={"title": f"Writer {n}"}, headers={**h, "If-Match": etag})
            for n in range(10)
        )
    )
    codes = sorted(a.status_code for a in answers)
    assert codes == [200] + [412] * 9, codes
    final = await client.get(url, headers=h)
    assert final.json()["version"] == 2
    [winner] = [a for a in answers if a.status_code == 200]
    assert final.headers["ETag"] == winner.headers["ETag"]
