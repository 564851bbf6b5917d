"""Importing from the register page: a dry run shows per-row errors and writes nothing; a clean
file is previewed, then imported on confirmation, as the API's import does."""

from __future__ import annotations

import re

import httpx

from tests.conftest import Account
from tests.web.helpers import csrf_of, sign_in

GOOD = "title,impact,probability,status\nImported one,3,4,ACTIVE\nImported two,2,2,DRAFT\n"
BAD = "title,impact,probability\nFine,3,4\n,9,2\n"


async def _upload(client: httpx.AsyncClient, csrf: str, text: str) -> httpx.Response:
    return await client.post(
        "/risks/import",
        data={"csrf_token": csrf, "action": "preview"},
        files={"file": ("risks.csv", text.encode(), "text/csv")},
    )


async def _titles(client: httpx.AsyncClient, admin: Account) -> list[str]:
    listed = await client.get("/api/v1/risks?page_size=100", headers=admin.in_tenant())
    return sorted(r["title"] for r in listed.json()["items"])


async def test_a_dry_run_lists_the_bad_rows_and_writes_nothing(
    client: httpx.AsyncClient, admin: Account
) -> None:
    browser = await sign_in(client, admin)
    preview = await _upload(client, browser.csrf, BAD)
    assert preview.status_code == 422
    assert "Nothing has been written yet." in preview.text
    rows = re.findall(r"<tr><td>(\d+)</td><td><code>(\w+)</code>", preview.text)
    assert ("3", "title") in rows and ("3", "impact") in rows
    assert "Import 2 rows" not in preview.text  # no confirm button with errors
    assert await _titles(client, admin) == []


async def test_a_clean_file_is_previewed_then_imported(
    client: httpx.AsyncClient, admin: Account
) -> None:
    browser = await sign_in(client, admin)
    page = await browser.get("/risks")
    assert 'href="/risks/import"' in page.text
    preview = await _upload(client, browser.csrf, GOOD)
    assert preview.status_code == 200
    assert "2 rows: 2 to create, 0 to update" in preview.text
    assert await _titles(client, admin) == []  # only checked so far
    content = re.search(r'name="content" value="([^"]+)"', preview.text)
    assert content
    done = await client.post(
        "/risks/import",
        data={
            "csrf_token": csrf_of(preview.text),
            "action": "import",
            "filename": "risks.csv",
            "content": content.group(1),
        },
    )
    assert done.status_code == 303 and done.headers["location"] == "/risks"
    listed = await client.get("/risks")
    assert "Imported risks.csv: 2 risks created, 0 updated." in listed.text
    assert await _titles(client, admin) == ["Imported one", "Imported two"]
