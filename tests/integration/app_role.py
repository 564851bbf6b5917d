"""A PostgreSQL database reached through a role without BYPASSRLS, like production's app role."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager

from openrisk.core.db.migrate import upgrade
from tests.conftest import _pg_admin, create_pg_database, drop_pg_database

APP_ROLE = "openrisk_rls_app"


@contextmanager
def app_role_database() -> Iterator[str]:
    """A migrated database (owned by the admin role); yields the app role's URL to it."""
    url = create_pg_database()
    upgrade(url)
    name = url.rsplit("/", 1)[1]
    asyncio.run(
        _pg_admin(
            f"""
            DO $$ BEGIN
              IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{APP_ROLE}') THEN
                CREATE ROLE {APP_ROLE} LOGIN NOSUPERUSER NOBYPASSRLS;
              END IF;
            END $$;
            GRANT CONNECT ON DATABASE "{name}" TO {APP_ROLE};
            """
        )
    )
    asyncio.run(_grant_in(url))
    try:
        yield url.replace("://postgres@", f"://{APP_ROLE}@")
    finally:
        drop_pg_database(url)


async def _grant_in(url: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        await conn.execute(
            f"GRANT USAGE ON SCHEMA public TO {APP_ROLE};"
            f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {APP_ROLE};"
            f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {APP_ROLE};"
        )
    finally:
        await conn.close()
