"""``openrisk seed`` works as the recommended application role (NOBYPASSRLS, not superuser).

PostgreSQL refuses ``COPY FROM`` into tables whose row-level security applies to the role; the
bulk seed and the demo seed must still write everything, and the API must then see it.
"""

from __future__ import annotations

import asyncio
import re
import subprocess
from pathlib import Path

from openrisk.app import create_app
from tests.conftest import client_for, make_settings
from tests.integration.app_role import APP_ROLE, app_role_database
from tests.integration.server_process import OPENRISK, base_env

PASSWORD = "seeded-password-123"
RISKS = 1_200


def _seed(url: str, cwd: Path, *args: str) -> str:
    proc = subprocess.run(
        [str(OPENRISK), "seed", *args],
        env=base_env(url, OPENRISK_DEMO_PASSWORD=PASSWORD),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, (
        f"openrisk seed {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}"
    )
    return proc.stdout


async def _stored_risks(admin_url: str, email: str) -> tuple[int, int, int]:
    """(all risks, live risks, search documents) of the tenant ``email`` administers, read as
    the admin role."""
    import asyncpg

    conn = await asyncpg.connect(admin_url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        row = await conn.fetchrow(
            """
            SELECT count(*) AS total, count(*) FILTER (WHERE r.deleted_at IS NULL) AS live,
                   count(s.risk_id) AS searchable
            FROM risks r
            LEFT JOIN risk_search s ON s.risk_id = r.id
            JOIN memberships m ON m.tenant_id = r.tenant_id
            JOIN users u ON u.id = m.user_id
            WHERE u.email = $1
            """,
            email,
        )
        assert row is not None
        return int(row["total"]), int(row["live"]), int(row["searchable"])
    finally:
        await conn.close()


async def _visible_risks(url: str, email: str) -> tuple[int, int]:
    app = create_app(make_settings(url))
    async with app.router.lifespan_context(app), client_for(app) as http:
        login = await http.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})
        assert login.status_code == 200, login.text
        headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
        listed = await http.get("/api/v1/risks?page_size=1", headers=headers)
        stats = await http.get("/api/v1/dashboard/stats?period=all", headers=headers)
        assert listed.status_code == stats.status_code == 200, (listed.text, stats.text)
        return int(listed.json()["total"]), int(stats.json()["total_risks"])


def test_bulk_and_demo_seed_run_as_the_app_role(tmp_path: Path) -> None:
    with app_role_database() as url:
        admin_url = url.replace(f"://{APP_ROLE}@", "://postgres@")
        output = _seed(url, tmp_path, "--risks", str(RISKS), "--tenants", "2")
        logins = re.findall(r"login: (seed-[0-9a-f]+@openrisk\.local)", output)
        assert len(logins) == 2, output
        for email in logins:
            total, live, searchable = asyncio.run(_stored_risks(admin_url, email))
            assert total == RISKS and 0 < live <= RISKS
            assert searchable == live  # every live risk has its search document
            assert asyncio.run(_visible_risks(url, email)) == (live, live)

        demo = _seed(url, tmp_path)
        assert "created the demo tenant" in demo, demo
        listed, _ = asyncio.run(_visible_risks(url, "demo@openrisk.local"))
        assert listed > 0
