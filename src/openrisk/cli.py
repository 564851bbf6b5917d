"""``openrisk`` command line (Typer): serve, db, seed, create-admin, check-config."""

from __future__ import annotations

import asyncio
import os
import secrets
import sys
import tempfile
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.table import Table

from openrisk.config import Settings

app = typer.Typer(help="OpenRisk: a multi-tenant risk register.", no_args_is_help=True)
db_app = typer.Typer(help="Database migrations.", no_args_is_help=True)
app.add_typer(db_app, name="db")
console = Console()
err = Console(stderr=True)

DEMO_PASSWORD_FILE = Path(".openrisk-demo-password")


def load_settings() -> Settings:
    try:
        return Settings()
    except ValidationError as error:
        for problem in error.errors():
            name = "OPENRISK_" + "_".join(str(p) for p in problem["loc"]).upper()
            err.print(f"[red]invalid configuration[/red] {name or 'OPENRISK_*'}: {problem['msg']}")
        raise typer.Exit(2) from error


async def _schema_behind_message(settings: Settings) -> str | None:
    from openrisk.core.db.engine import create_database
    from openrisk.core.db.migrate import SchemaBehind, ensure_schema_current

    database = create_database(settings, pooled=False)
    try:
        await ensure_schema_current(database.engine)
        return None
    except SchemaBehind as error:
        return str(error)
    finally:
        await database.dispose()


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Interface to bind.")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default OPENRISK_PORT or 8000).")] = None,
    workers: Annotated[int | None, typer.Option(help="Number of worker processes.")] = None,
) -> None:
    """Serve the API and the web UI with uvicorn."""
    import uvicorn

    for name, value in (("HOST", host), ("PORT", port), ("WORKERS", workers)):
        if value is not None:
            os.environ[f"OPENRISK_{name}"] = str(value)
    settings = load_settings()
    problem = asyncio.run(_schema_behind_message(settings))
    if problem:
        err.print(f"[red]{problem}[/red]")
        raise typer.Exit(1)
    if settings.workers > 1 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="openrisk-metrics-")
    uvicorn.run(
        "openrisk.app:create_app",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        access_log=False,
        log_config=None,
        timeout_graceful_shutdown=10,
    )


@db_app.command("upgrade")
def db_upgrade(revision: Annotated[str, typer.Argument()] = "heads") -> None:
    """Apply migrations up to REVISION (default: the latest)."""
    from openrisk.core.db.migrate import upgrade

    upgrade(load_settings().database_url, revision)
    console.print(f"database upgraded to {revision}")


@db_app.command("downgrade")
def db_downgrade(revision: Annotated[str, typer.Argument()] = "-1") -> None:
    """Revert migrations down to REVISION (default: one step)."""
    from openrisk.core.db.migrate import downgrade

    downgrade(load_settings().database_url, revision)
    console.print(f"database downgraded to {revision}")


def _demo_password(settings: Settings) -> str:
    if settings.demo_password:
        return settings.demo_password
    if DEMO_PASSWORD_FILE.exists():
        return DEMO_PASSWORD_FILE.read_text().strip()
    password = secrets.token_urlsafe(12)
    DEMO_PASSWORD_FILE.write_text(password + "\n")
    DEMO_PASSWORD_FILE.chmod(0o600)
    return password


async def _seed_demo(settings: Settings, password: str) -> bool:
    from openrisk.core.db.engine import create_database
    from openrisk.seed.demo import ensure_demo

    database = create_database(settings, pooled=False)
    try:
        async with database.session() as session:
            return (await ensure_demo(session, password=password)).created
    finally:
        await database.dispose()


@app.command("seed")
def seed() -> None:
    """Create the demo tenant and login (demo@openrisk.local) unless it exists; print the login."""
    from openrisk.seed.demo import DEMO_EMAIL

    settings = load_settings()
    password = _demo_password(settings)
    created = asyncio.run(_seed_demo(settings, password))
    console.print(("created" if created else "found") + " the demo tenant")
    console.print(f"demo login: [bold]{DEMO_EMAIL}[/bold] / password: [bold]{password}[/bold]")


async def _create_admin(settings: Settings, email: str, password: str, tenant: str | None) -> str:
    from openrisk.auth.service import create_user, find_user_by_email
    from openrisk.core.db.engine import create_database
    from openrisk.core.security import hash_password
    from openrisk.rbac.catalogue import ADMIN
    from openrisk.tenants.service import add_member, create_tenant, find_tenant

    database = create_database(settings, pooled=False)
    try:
        async with database.session() as session:
            user = await find_user_by_email(session, email=email)
            if user is None:
                user = await create_user(session, email=email, password=password, is_superuser=True)
                outcome = "created"
            else:
                user.password_hash, user.is_superuser = hash_password(password), True
                outcome = "updated"
            if tenant:
                existing = await find_tenant(session, name=tenant)
                if existing is None:
                    await create_tenant(session, name=tenant, owner_id=user.id, role_id=ADMIN.id)
                else:
                    await add_member(
                        session, tenant_id=existing.id, user_id=user.id, role_id=ADMIN.id
                    )
            await session.commit()
            return outcome
    finally:
        await database.dispose()


@app.command("create-admin")
def create_admin(
    email: Annotated[str, typer.Option(help="Email of the platform operator.")],
    password: Annotated[str, typer.Option(help="Password (no prompt, for scripts).")],
    tenant: Annotated[str | None, typer.Option(help="Also make them Admin of this tenant.")] = None,
) -> None:
    """Create (or update) a platform operator, optionally Admin of a tenant."""
    if len(password) < 10:
        err.print("[red]--password must be at least 10 characters[/red]")
        raise typer.Exit(2)
    outcome = asyncio.run(_create_admin(load_settings(), email, password, tenant))
    console.print(f"{outcome} superuser {email}" + (f" (Admin of {tenant})" if tenant else ""))


@app.command("check-config")
def check_config() -> None:
    """Validate the OPENRISK_* configuration and print it (secrets masked)."""
    settings = load_settings()
    table = Table("setting", "value")
    for name, value in settings.model_dump().items():
        shown = "********" if "secret" in name or "password" in name else str(value)
        table.add_row(f"OPENRISK_{name.upper()}", shown)
    pool = settings.pool
    table.add_row("pool (effective)", f"{pool}")
    console.print(table)
    console.print("[green]configuration is valid[/green]")


def main() -> None:  # pragma: no cover
    sys.exit(app())
