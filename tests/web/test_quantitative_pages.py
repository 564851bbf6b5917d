"""The quantitative pages: a risk's estimate saved from its page (errors next to the fields),
its loss exceedance curve drawn as SVG, ROSI per mitigation, the register's loss exposure with
the appetite, and the XLSX/PDF export (formula-safe)."""

from __future__ import annotations

import io
import re
import uuid

import httpx
from openpyxl import load_workbook

from tests.conftest import Account
from tests.web.helpers import sign_in

API = "/api/v1"

ESTIMATE = {
    "frequency.min": "1",
    "frequency.most_likely": "2",
    "frequency.max": "5",
    "loss.form": "interval",
    "loss.low": "10000",
    "loss.high": "400000",
    "loss.currency": "eur",
}


async def _risk(client: httpx.AsyncClient, admin: Account, title: str) -> str:
    made = await client.post(
        f"{API}/risks",
        json={"title": title, "impact": 3, "probability": 3},
        headers=admin.in_tenant(),
    )
    assert made.status_code == 201, made.text
    return str(made.json()["id"])


async def test_a_risk_is_quantified_from_its_page(
    client: httpx.AsyncClient, admin: Account
) -> None:
    risk_id = await _risk(client, admin, f"Data breach {uuid.uuid4().hex[:6]}")
    browser = await sign_in(client, admin)
    page = await browser.get(f"/risks/{risk_id}")
    assert "Not quantified." in page.text and "Quantify this risk" in page.text

    bad = await browser.post(
        f"/risks/{risk_id}/quantification", {**ESTIMATE, "frequency.most_likely": "0.5"}
    )
    assert bad.status_code == 422
    assert 'id="f-frequency-most_likely-error"' in bad.text
    assert "must be at least frequency.min" in bad.text
    assert 'value="400000"' in bad.text  # what was typed stays

    saved = await browser.post(f"/risks/{risk_id}/quantification", ESTIMATE)
    assert saved.status_code == 303
    assert saved.headers["location"] == f"/risks/{risk_id}#quantification"
    page = await browser.get(f"/risks/{risk_id}")
    assert "Quantification saved: expected annual loss" in page.text
    assert 'data-testid="risk-ale"' in page.text and "EUR" in page.text
    svg = re.search(r'<svg[^>]*data-testid="risk-lec".*?</svg>', page.text, re.S)
    assert svg, "no loss exceedance chart"
    assert 'class="line-inherent"' in svg.group(0) and 'class="line-residual"' in svg.group(0)
    points = re.search(r'class="line-inherent" points="([^"]+)"', svg.group(0))
    assert points and len(points.group(1).split()) >= 50

    planned = await browser.post(
        f"/risks/{risk_id}/mitigations",
        {
            "title": "Encrypt laptops",
            "status": "PLANNED",
            "cost": "2",
            "effort_days": "3",
            "frequency_reduction": "0.6",
            "loss_reduction": "0",
            "annual_cost": "5000",
        },
    )
    assert planned.status_code == 303, planned.text
    page = await browser.get(f"/risks/{risk_id}")
    rosi = re.search(r'data-testid="rosi".*?</table>', page.text, re.S)
    assert rosi and "Encrypt laptops" in rosi.group(0)
    api = await client.get(f"{API}/risks/{risk_id}/quantification", headers=admin.in_tenant())
    control = api.json()["results"]["controls"][0]
    assert f"{control['rosi'] * 100:.0f} %" in rosi.group(0)

    removed = await browser.post(f"/risks/{risk_id}/quantification/delete")
    assert removed.status_code == 303
    assert "Not quantified." in (await browser.get(f"/risks/{risk_id}")).text


async def test_loss_exposure_page_appetite_and_exports(
    client: httpx.AsyncClient, admin: Account
) -> None:
    browser = await sign_in(client, admin)
    empty = await browser.get("/quantitative")
    assert empty.status_code == 200 and "No quantified risk yet" in empty.text
    assert 'href="/quantitative"' in empty.text  # in the main menu

    hostile = f'=HYPERLINK("http://x") {uuid.uuid4().hex[:6]}'
    for title in (hostile, f"Outage {uuid.uuid4().hex[:6]}"):
        risk_id = await _risk(client, admin, title)
        assert (await browser.post(f"/risks/{risk_id}/quantification", ESTIMATE)).status_code == 303

    bad = await browser.post(
        "/quantitative/appetite", {"threshold": "1000000", "max_probability": "150"}
    )
    assert bad.status_code == 422 and "Enter a percentage above 0 and below 100." in bad.text
    saved = await browser.post(
        "/quantitative/appetite",
        {"threshold": "100000", "max_probability": "5", "currency": "EUR"},
    )
    assert saved.status_code == 303
    page = await browser.get("/quantitative?iterations=10000&seed=3")
    assert "Loss appetite saved." in page.text
    assert 'data-testid="portfolio-ale"' in page.text
    assert 'data-testid="appetite-verdict"' in page.text
    assert 'class="appetite-point"' in page.text
    api = await client.get(
        f"{API}/dashboard/quantitative",
        params={"iterations": 10_000, "seed": 3},
        headers=admin.in_tenant(),
    )
    verdict = api.json()["appetite"]["verdict"]
    assert ("Within" if verdict == "within" else "Above") in page.text
    assert api.headers["x-cache"] == "HIT"  # the page filled the same cache entry

    xlsx = await browser.get("/quantitative/export?format=xlsx&iterations=10000&seed=3")
    assert xlsx.status_code == 200
    assert xlsx.headers["content-type"].startswith("application/vnd.openxmlformats")
    workbook = load_workbook(io.BytesIO(xlsx.content))
    assert workbook.sheetnames == ["Summary", "Top contributors", "Loss exceedance", "Inputs"]
    titles = [row[0] for row in workbook["Inputs"].iter_rows(min_row=2, values_only=True)]
    assert "'" + hostile in titles  # never a formula
    cells = [c for row in workbook["Top contributors"].iter_rows() for c in row]
    assert not any(c.data_type == "f" for c in cells)
    summary = {r[0]: r[1:] for r in workbook["Summary"].iter_rows(values_only=True) if r}
    assert summary["Simulated years"][0] == 10_000
    assert summary["Expected annual loss (ALE, mean)"][1] == api.json()["residual"]["mean"]
    pdf = await browser.get("/quantitative/export?format=pdf&iterations=10000&seed=3")
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
