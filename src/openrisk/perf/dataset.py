"""The data set a load test or benchmark runs on: the demo tenant plus Viewer and Analyst logins.

``prepare`` migrates the database (creating a PostgreSQL database that does not exist yet),
seeds the demo tenant unless it exists (``openrisk seed``: 180 risks with mitigations, assets
and 90 days of history) and creates or resets the load-test accounts in it, with a fresh random
password for this run. Nothing here talks HTTP; the server is started afterwards.
"""

from __future__ import annotations

import asyncio
import secrets
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from openrisk.config import Settings

VIEWER_ACCOUNTS = 5
ANALYST_ACCOUNTS = 5
ACCOUNT_DOMAIN = "loadtest.openrisk.local"
SAMPLE_RISK_IDS = 60


@dataclass(frozen=True)
class Account:
    email: str
    password: str
    role: str  # "viewer" | "analyst"


@dataclass(frozen=True)
class Dataset:
    tenant_id: str
    tenant_slug: str
    risks: int
    mitigations: int
    accounts: list[Account]
    risk_ids: list[str] = field(default_factory=list)  # a stable sample, oldest first

    def by_role(self, role: str) -> list[Account]:
        return [a for a in self.accounts if a.role == role]

    def summary(self) -> dict[str, object]:
        """What a report shows (no passwords)."""
        return {
            "tenant": self.tenant_slug,
            "risks": self.risks,
            "mitigations": self.mitigations,
            "viewer_accounts": len(self.by_role("viewer")),
            "analyst_accounts": len(self.by_role("analyst")),
        }

    def for_locust(self) -> dict[str, object]:
        return {
            "tenant_id": self.tenant_id,
            "accounts": [asdict(a) for a in self.accounts],
            "risk_ids": self.risk_ids,
        }


def account_emails(role: str, count: int) -> list[str]:
    return [f"{role}-{n}@{ACCOUNT_DOMAIN}" for n in range(1, count + 1)]


async def ensure_postgres_database(url: str) -> bool:
    """Create the database named in a PostgreSQL ``url`` when it does not exist; True if created."""
    import asyncpg  # type: ignore[import-untyped]

    dsn = url.replace("postgresql+asyncpg://", "postgresql://", 1)
    try:
        conn = await asyncpg.connect(dsn, timeout=10)
    except asyncpg.InvalidCatalogNameError:
        base, _, rest = dsn.rpartition("/")
        name, _, query = rest.partition("?")
        maintenance = f"{base}/postgres" + (f"?{query}" if query else "")
        admin = await asyncpg.connect(maintenance, timeout=10)
        try:
            await admin.execute(f'CREATE DATABASE "{name}"')
        finally:
            await admin.close()
        return True
    await conn.close()
    return False


def migrate(settings: Settings) -> None:
    """`openrisk db upgrade` (synchronous: Alembic runs its own event loop)."""
    from openrisk.core.db.migrate import upgrade

    if not settings.is_sqlite:
        asyncio.run(ensure_postgres_database(settings.database_url))
    elif ":memory:" not in settings.database_url:
        path = settings.database_url.split(":///", 1)[-1].split("?", 1)[0]
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    upgrade(settings.database_url)


async def _ensure_accounts(
    settings: Settings, *, demo_password: str, viewers: int, analysts: int
) -> Dataset:
    from openrisk.auth.models import User
    from openrisk.auth.service import create_user, find_user_by_email
    from openrisk.core.db.engine import create_database
    from openrisk.core.security import hash_password
    from openrisk.mitigations.models import Mitigation
    from openrisk.rbac.catalogue import ANALYST, VIEWER
    from openrisk.risks.models import Risk
    from openrisk.seed.demo import DEMO_EMAIL, ensure_demo
    from openrisk.tenants.models import Membership, Tenant

    database = create_database(settings, pooled=False, bounded_statements=False)
    password = secrets.token_urlsafe(18)
    password_hash = hash_password(password)  # one argon2 hash, shared by this run's accounts
    try:
        async with database.session() as session:
            await ensure_demo(session, password=demo_password)
            demo = await find_user_by_email(session, email=DEMO_EMAIL)
            assert demo is not None
            tenant = await session.scalar(
                select(Tenant)
                .join(Membership, Membership.tenant_id == Tenant.id)
                .where(Membership.user_id == demo.id)
                .order_by(Membership.is_default.desc(), Membership.created_at)
                .limit(1)
            )
            assert tenant is not None, "the demo user has no tenant"
            accounts: list[Account] = []
            plan = [("viewer", VIEWER.id, viewers), ("analyst", ANALYST.id, analysts)]
            for role, role_id, count in plan:
                for email in account_emails(role, count):
                    user: User | None = await find_user_by_email(session, email=email)
                    if user is None:
                        user = await create_user(
                            session, email=email, password=password, full_name=f"Load {role}"
                        )
                    user.password_hash, user.is_active = password_hash, True
                    await _ensure_membership(session, tenant.id, user.id, role_id)
                    accounts.append(Account(email=email, password=password, role=role))
            await session.commit()
            live = (Risk.tenant_id == tenant.id, Risk.deleted_at.is_(None))
            risks = int(await session.scalar(select(func.count()).where(*live)) or 0)
            mitigations = int(
                await session.scalar(
                    select(func.count()).where(
                        Mitigation.tenant_id == tenant.id, Mitigation.deleted_at.is_(None)
                    )
                )
                or 0
            )
            sample = (
                await session.scalars(
                    select(Risk.id)
                    .where(*live)
                    .order_by(Risk.created_at, Risk.id)
                    .limit(SAMPLE_RISK_IDS)
                )
            ).all()
            return Dataset(
                tenant_id=str(tenant.id),
                tenant_slug=tenant.slug,
                risks=risks,
                mitigations=mitigations,
                accounts=accounts,
                risk_ids=[str(i) for i in sample],
            )
    finally:
        await database.dispose()


async def _ensure_membership(
    session: AsyncSession, tenant_id: uuid.UUID, user_id: uuid.UUID, role_id: uuid.UUID
) -> None:
    from openrisk.tenants.models import Membership
    from openrisk.tenants.service import add_member

    membership = await session.scalar(
        select(Membership).where(Membership.tenant_id == tenant_id, Membership.user_id == user_id)
    )
    if membership is None:
        await add_member(session, tenant_id=tenant_id, user_id=user_id, role_id=role_id)
    elif membership.role_id != role_id:
        membership.role_id = role_id


def prepare(
    settings: Settings,
    *,
    demo_password: str,
    viewers: int = VIEWER_ACCOUNTS,
    analysts: int = ANALYST_ACCOUNTS,
) -> Dataset:
    """Migrate, seed the demo tenant if needed, and (re)create the load-test accounts."""
    migrate(settings)
    return asyncio.run(
        _ensure_accounts(settings, demo_password=demo_password, viewers=viewers, analysts=analysts)
    )


def role_counts(accounts: Sequence[Account]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for account in accounts:
        counts[account.role] = counts.get(account.role, 0) + 1
    return counts
