"""The compose stack's database roles: the app and its workers connect as a role that row-level
security applies to (no superuser, no BYPASSRLS); the tables' owner only runs the migrations.

The role script is run against a fresh database as the PostgreSQL image would run it, before
the migrations, so the rights on every table they create come from its default privileges.
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import yaml

from openrisk.core.db.migrate import upgrade
from tests.conftest import _pg_admin, create_pg_database, drop_pg_database
from tests.integration.server_process import OPENRISK, base_env

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
ROLE_SCRIPT = DEPLOY / "postgres" / "app-role.sh"
PASSWORD = "seeded-password-123"


def _services() -> dict[str, Any]:
    compose = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text(encoding="utf-8"))
    return dict(compose["services"])


def _user(service: dict[str, Any]) -> str | None:
    return urlsplit(service["environment"]["OPENRISK_DATABASE_URL"]).username


def test_the_app_and_its_workers_connect_as_the_role_the_script_creates() -> None:
    services = _services()
    postgres = services["postgres"]
    default_role = re.search(r"OPENRISK_APP_DB_USER:-(\w+)", ROLE_SCRIPT.read_text())
    assert default_role is not None
    assert _user(services["app"]) == _user(services["worker"]) == default_role[1]
    assert _user(services["migrate"]) == postgres["environment"]["POSTGRES_USER"]
    assert (
        "./postgres/app-role.sh:/docker-entrypoint-initdb.d/10-app-role.sh:ro"
        in (postgres["volumes"])
    )
    # the app starts once the schema is migrated, and does not migrate itself as its own role
    assert services["app"]["depends_on"]["migrate"]["condition"] == (
        "service_completed_successfully"
    )
    assert "db upgrade" not in " ".join(services["app"]["command"])
    assert services["migrate"]["command"] == ["openrisk", "db", "upgrade"]


def _as(url: str, user: str) -> str:
    return url.replace("://postgres@", f"://{user}@").replace("postgresql+asyncpg", "postgresql")


async def _read(dsn: str) -> tuple[asyncpg.Record | None, int]:
    """The role's attributes, and the risks it sees in a transaction bound to a tenant that
    has none (as a request's transaction is bound to its own)."""
    conn = await asyncpg.connect(dsn)
    try:
        role = await conn.fetchrow(
            "SELECT rolsuper, rolbypassrls, rolcreaterole, rolcreatedb FROM pg_roles "
            "WHERE rolname = current_user"
        )
        async with conn.transaction():
            await conn.execute(
                "SELECT set_config('openrisk.tenant_id', $1, true)", str(uuid.uuid4())
            )
            return role, int(await conn.fetchval("SELECT count(*) FROM risks"))
    finally:
        await conn.close()


def test_the_role_script_makes_a_role_that_row_level_security_applies_to(
    tmp_path: Path,
) -> None:
    url = create_pg_database()
    role = f"openrisk_app_{uuid.uuid4().hex[:8]}"
    parts = urlsplit(url)
    env = {
        **os.environ,
        "PGHOST": parts.hostname or "127.0.0.1",
        "PGPORT": str(parts.port or 5432),
        "POSTGRES_USER": "postgres",
        "POSTGRES_DB": parts.path.lstrip("/"),
        "OPENRISK_APP_DB_USER": role,
        "OPENRISK_APP_DB_PASSWORD": "app-password",
    }
    try:
        script = subprocess.run(
            ["sh", str(ROLE_SCRIPT)], env=env, capture_output=True, text=True, timeout=60
        )
        assert script.returncode == 0, script.stderr
        upgrade(url)  # as the owner, after the script: the new tables' rights are defaults
        seed = subprocess.run(
            [str(OPENRISK), "seed"],
            env=base_env(
                url.replace("://postgres@", f"://{role}@"), OPENRISK_DEMO_PASSWORD=PASSWORD
            ),
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert seed.returncode == 0, f"{seed.stdout}\n{seed.stderr}"

        attributes, seen_by_app = asyncio.run(_read(_as(url, role)))
        _, seen_by_owner = asyncio.run(_read(_as(url, "postgres")))
        assert attributes is not None and not any(attributes.values())
        # the demo's risks exist; bound to another tenant, the app role sees none of them
        # where the image's superuser, which no policy applies to, sees them all
        assert seen_by_owner > 0
        assert seen_by_app == 0
    finally:
        drop_pg_database(url)
        asyncio.run(_pg_admin(f'DROP ROLE IF EXISTS "{role}"'))
