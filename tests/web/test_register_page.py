"""The register page tells the truth: empty tenant, no match and a page past the end read
differently, a bad filter is a form error (as the API's 422), a heatmap cell's filter lists
exactly that cell, and the chosen columns are kept."""

from __future__ import annotations

import re

import httpx

from tests.conftest import Account
from tests.web.helpers import sign_in


async def _risk(client: httpx.AsyncClient, admin: Account, title: str, i: int, p: int) -> str:
    made = await client.post(
        "/api/v1/risks",
        json={"title": title, "impact": i, "probability": p, "status": "ACTIVE"},
        headers=admin.in_tenant(),
    )
    assert made.status_code == 201, made.text
    return str(made.json()["id"])


async def test_empty_states_say_why_the_list_is_empty(
    client: httpx.AsyncClient, admin: Account
) -> None:
    browser = await sign_in(client, admin)
    empty = await browser.get("/risks")
    assert "No risks recorded yet." in empty.text and "No risk matches" not in empty.text
    for n in range(3):
        await _risk(client, admin, f"Risk {n}", 2, 2)
    no_match = await browser.get("/risks?q=zebra")
    assert "No risk matches these filters." in no_match.text
    past = await browser.get("/risks?page=999")
    assert past.status_code == 200
    assert "There is no page 999: the register has 1 page." in past.text
    assert 'href="/risks?page=1"' in past.text


async def test_a_bad_filter_is_a_form_error_like_the_apis_422(
    client: httpx.AsyncClient, admin: Account
) -> None:
    await _risk(client, admin, "Listed only with good filters", 3, 3)
    browser = await sign_in(client, admin)
    page = await browser.get("/risks?min_score=abc")
    assert page.status_code == 422
    assert re.search(r'id="f-min_score"[^>]*aria-invalid="true"', page.text) or re.search(
        r'aria-invalid="true"[^>]*id="f-min_score"', page.text
    )
    assert "Min score: Enter a number." in page.text
    assert "Listed only with good filters" not in page.text
    api = await client.get("/api/v1/risks?min_score=abc", headers=admin.in_tenant())
    assert api.status_code == 422
    high = await browser.get("/risks?min_score=200")
    assert high.status_code == 422 and "Enter 100 or less." in high.text
    crossed = await browser.get("/risks?min_score=10&max_score=5")
    assert crossed.status_code == 422 and "at least as high as the minimum" in crossed.text


async def test_a_heatmap_cell_lists_its_risks_and_its_count_matches(
    client: httpx.AsyncClient, admin: Account
) -> None:
    for n, (i, p) in enumerate([(5, 4), (5, 4), (4, 5), (5, 5), (1, 1)]):
        await _risk(client, admin, f"Cell risk {n} at {i}x{p}", i, p)
    api = await client.get("/api/v1/risks?impact=5&probability=4", headers=admin.in_tenant())
    assert api.status_code == 200 and api.json()["total"] == 2
    matrix = (await client.get("/api/v1/dashboard/matrix", headers=admin.in_tenant())).json()
    [cell] = [c for c in matrix["cells"] if (c["impact"], c["probability"]) == (5, 4)]
    assert cell["count"] == 2
    bad = await client.get("/api/v1/risks?impact=6", headers=admin.in_tenant())
    assert bad.status_code == 422

    browser = await sign_in(client, admin)
    dashboard = await browser.get("/")
    assert 'href="/risks?impact=5&amp;probability=4"' in dashboard.text
    page = await browser.get("/risks?impact=5&probability=4")
    assert page.text.count(">Cell risk ") == 2 and "at 5x4" in page.text
    assert 'data-total="2"' in page.text and "show every cell" in page.text


async def test_the_chosen_columns_are_shown_and_kept(
    client: httpx.AsyncClient, admin: Account
) -> None:
    await _risk(client, admin, "Columns risk", 3, 4)
    browser = await sign_in(client, admin)
    chosen = await browser.get("/risks?col=score&col=treatment")
    headers = re.findall(r'<th scope="col"[^>]*>\s*(?:<a [^>]*>)?([A-Z][a-z ]+)', chosen.text)
    assert headers == ["Title", "Score", "Treatment"]
    again = await browser.get("/risks")
    kept = re.findall(r'<th scope="col"[^>]*>\s*(?:<a [^>]*>)?([A-Z][a-z ]+)', again.text)
    assert kept == ["Title", "Score", "Treatment"]


async def test_the_export_links_carry_the_lists_filters(
    client: httpx.AsyncClient, admin: Account
) -> None:
    for n, (i, p) in enumerate([(5, 5), (5, 5), (2, 1)]):
        await _risk(client, admin, f"Export risk {n}", i, p)
    browser = await sign_in(client, admin)
    page = await browser.get("/risks?min_score=20&sort=title&order=asc")
    link = re.search(r'href="(/risks/export\?[^"]*format=csv)"', page.text)
    assert link, "no CSV export link"
    exported = await browser.get(link.group(1).replace("&amp;", "&"))
    assert exported.status_code == 200
    assert exported.headers["content-type"].startswith("text/csv")
    assert "attachment" in exported.headers["content-disposition"]
    lines = exported.text.strip().splitlines()
    assert len(lines) == 3 and "Export risk 0" in lines[1] and "Export risk 1" in lines[2]
    xlsx = await browser.get(link.group(1).replace("&amp;", "&").replace("csv", "xlsx"))
    assert xlsx.status_code == 200 and xlsx.content[:2] == b"PK"


async def test_the_audit_log_exports_its_filtered_events(
    client: httpx.AsyncClient, admin: Account
) -> None:
    await _risk(client, admin, "Audited risk", 2, 2)
    browser = await sign_in(client, admin)
    page = await browser.get("/audit?resource=risk")
    link = re.search(r'href="(/audit/export\?[^"]*)"', page.text)
    assert link, "no export link"
    exported = await browser.get(link.group(1).replace("&amp;", "&"))
    assert exported.status_code == 200 and exported.headers["content-type"].startswith("text/csv")
    rows = exported.text.strip().splitlines()
    assert rows[0].startswith("created_at,action") and len(rows) == 2
    assert ",risk.create," in rows[1]


async def test_the_global_score_of_an_empty_tenant_says_what_100_means(
    client: httpx.AsyncClient, admin: Account
) -> None:
    browser = await sign_in(client, admin)
    empty = await browser.get("/")
    assert re.search(r'data-testid="global-score">100<', empty.text)
    assert "No risks recorded yet, so nothing is exposed: 100 is the safest value." in empty.text
    assert 'optimum="100"' in empty.text  # the meter's scale: higher is better
    await _risk(client, admin, "Exposed", 5, 5)  # score 25: 100 - 4 x 25 = 0
    exposed = await browser.get("/")
    assert re.search(r'data-testid="global-score">0<', exposed.text)
    assert "Higher is safer: 100 − 4 × the mean score (25.00 over 1 risk)." in exposed.text
