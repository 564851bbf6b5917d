"""Reports from the web UI: generate an executive PDF or a register XLSX, see it listed, download
it; a Viewer (no report:create) sees no generate form and is refused."""

from __future__ import annotations

import re

import httpx
from fastapi import FastAPI

from openrisk.rbac.catalogue import VIEWER
from tests.api.rbac_helpers import member_with_role
from tests.conftest import Account, client_for
from tests.web.helpers import sign_in


async def test_generate_list_and_download_reports(
    client: httpx.AsyncClient, admin: Account
) -> None:
    browser = await sign_in(client, admin)
    empty = await browser.get("/reports")
    assert empty.status_code == 200 and "No report generated yet." in empty.text
    assert 'href="/reports"' in empty.text  # in the main menu
    for kind, fmt in (("executive", "pdf"), ("register", "xlsx")):
        made = await browser.post("/reports", {"kind": kind, "format": fmt})
        assert made.status_code == 303, made.text
    page = await browser.get("/reports")
    assert "is ready to download." in page.text
    links = re.findall(r'href="(/reports/[0-9a-f-]{36}/download)"', page.text)
    assert len(links) == 2
    files = [await browser.get(link) for link in links]
    kinds = sorted(f.headers["content-type"] for f in files)
    assert kinds == [
        "application/pdf",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    ]
    assert all("attachment" in f.headers["content-disposition"] for f in files)
    api = await client.get("/api/v1/reports", headers=admin.in_tenant())
    assert api.json()["total"] == 2


async def test_a_viewer_cannot_generate_reports(
    app: FastAPI, client: httpx.AsyncClient, admin: Account
) -> None:
    viewer = await member_with_role(app, client, admin, VIEWER)
    async with client_for(app) as other:
        browser = await sign_in(other, viewer, tenant_id=admin.tenant_id)
        page = await browser.get("/reports")
        assert page.status_code == 200 and "Generate a report" not in page.text
        refused = await browser.post("/reports", {"kind": "executive", "format": "pdf"})
        assert refused.status_code == 403
