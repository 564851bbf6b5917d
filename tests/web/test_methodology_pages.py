"""The methodology in the web UI, through httpx: the dashboard follows the tenant's risk model
(its bands, grid, appetite, reviews and acceptances)."""

from __future__ import annotations

import re

import httpx

from tests.api.test_dashboard_methodology import four_by_three
from tests.api.test_risks_helpers import new_risk
from tests.conftest import Account
from tests.web.helpers import sign_in

CELL = re.compile(
    r'<td class="cell ([^"]*)"(?: style="([^"]*)")? data-impact="(\d+)" '
    r'data-probability="(\d+)" data-count="(\d+)" data-band="(\w+)"'
)


async def test_the_dashboard_draws_the_models_bands_and_grid(
    client: httpx.AsyncClient, admin: Account
) -> None:
    await four_by_three(client, admin)
    risk = await new_risk(client, admin, impact=4, probability=3)  # 12 SEVERE, above appetite
    await client.post(
        f"/api/v1/risks/{risk['id']}/mitigations",
        json={"title": "Segment", "impact_reduction": 3},
        headers=admin.in_tenant(),
    )
    browser = await sign_in(client, admin)
    page = (await browser.get("/")).text
    cells = {
        (int(i), int(p)): (css, style, int(n), band)
        for css, style, i, p, n, band in CELL.findall(page)
    }
    assert len(cells) == 12  # 4 impact levels × 3 probability levels
    css, style, count, band = cells[(4, 3)]
    assert (count, band) == (1, "SEVERE") and "band" in css
    assert style == "background: #c62828; color: #ffffff"
    assert "Extreme" in page and "Likely" in page  # the levels' names
    assert 'data-testid="count-severe">1<' in page
    assert 'data-testid="count-critical"' not in page  # only the model's bands
    assert re.search(
        r'data-testid="above-appetite">\s*<h2>Above appetite</h2>\s*<p class="big">1<', page
    )
    residual = (await browser.get("/?basis=residual")).text
    moved = {(int(i), int(p)): int(n) for _, _, i, p, n, _ in CELL.findall(residual)}
    assert moved[(1, 3)] == 1 and moved[(4, 3)] == 0
    assert 'data-basis="residual"' in residual
