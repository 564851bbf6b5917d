"""Reports of large registers: 202 with the job's status resource, then done with the file."""

from __future__ import annotations

import csv
import io
import uuid
from datetime import UTC, datetime

import httpx
from fastapi import FastAPI

from openrisk.reports.jobs import generate
from tests.api.test_risks_helpers import new_risk
from tests.conftest import Account, make_settings

REPORTS = "/api/v1/reports"


async def test_a_large_register_report_is_a_job(
    app: FastAPI, client: httpx.AsyncClient, admin: Account
) -> None:
    titles = sorted(f"Big register {n}" for n in range(3))
    for title in titles:
        await new_risk(client, admin, title=title)
    before = app.state.settings
    app.state.settings = make_settings(before.database_url, report_async_threshold=2)
    try:
        asked = await client.post(
            REPORTS, json={"kind": "register", "format": "csv"}, headers=admin.in_tenant()
        )
        small = await client.post(
            REPORTS, json={"kind": "executive", "format": "csv"}, headers=admin.in_tenant()
        )
    finally:
        app.state.settings = before
    assert asked.status_code == 202, asked.text
    job = asked.json()
    assert asked.headers["location"] == job["status_url"] == f"{REPORTS}/jobs/{job['id']}"
    assert job["status"] in ("queued", "running", "done") and job["kind"] == "register"
    assert small.status_code == 202  # the threshold is the register's size, for every kind

    status = await client.get(job["status_url"], headers=admin.in_tenant())
    assert status.status_code == 200 and status.json()["id"] == job["id"]

    finished = await generate(
        database=app.state.db, job_id=uuid.UUID(job["id"]), now=lambda: datetime.now(UTC)
    )
    assert finished == "done"
    done = (await client.get(job["status_url"], headers=admin.in_tenant())).json()
    assert done["status"] == "done" and done["report"]["kind"] == "register"
    assert done["download_url"] == done["report"]["download_url"]
    file = await client.get(done["download_url"], headers=admin.in_tenant())
    assert file.status_code == 200
    rows = list(csv.DictReader(io.StringIO(file.text.lstrip("\ufeff"))))
    assert sorted(r["title"] for r in rows if r["title"].startswith("Big register")) == titles
    # a job run again (at-least-once) changes nothing
    again = await generate(database=app.state.db, job_id=uuid.UUID(job["id"]), now=datetime.now)
    assert again == "done"

    other = await client.get(f"{REPORTS}/jobs/{uuid.uuid4()}", headers=admin.in_tenant())
    assert other.status_code == 404
