"""The async engine and session factory, built from Settings."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import NullPool

from openrisk.config import PoolProfile, Settings
from openrisk.core.db import timeouts
from openrisk.core.db.pool import InstrumentedPool, PoolStats, install_idle_policy, pool_stats

log = logging.getLogger(__name__)


@dataclass
class Database:
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    profile: PoolProfile
    healthy: bool = True

    def stats(self) -> PoolStats:
        return pool_stats(self.engine.pool, self.profile)

    async def ping(self) -> None:
        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    async def dispose(self) -> None:
        await self.engine.dispose()

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        async with self.sessions() as session:
            yield session


def _enable_sqlite_pragmas(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_conn: Any, record: Any) -> None:
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=5000")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()


def create_database(
    settings: Settings, *, pooled: bool = True, bounded_statements: bool = True
) -> Database:
    """Build the engine with the pool profile of ``OPENRISK_ENV`` (max open = idle + overflow).

    Statements are bounded by ``OPENRISK_DB_STATEMENT_TIMEOUT_S`` unless ``bounded_statements``
    is false (bulk seeding and benchmarks, whose statements are long on purpose).
    """
    profile = settings.pool
    kwargs: dict[str, Any] = {}
    in_memory = settings.is_sqlite and ":memory:" in settings.database_url
    if pooled and not in_memory:
        kwargs.update(
            poolclass=InstrumentedPool,
            pool_size=profile.max_idle or 1,
            max_overflow=max(profile.max_open - (profile.max_idle or 1), 0),
            pool_recycle=profile.lifetime_s,
            pool_timeout=settings.pool_timeout_s,
            pool_use_lifo=True,
        )
    elif not pooled:
        kwargs["poolclass"] = NullPool
    if not settings.is_sqlite:
        kwargs["connect_args"] = timeouts.connect_args(settings, bounded=bounded_statements)
    # orjson decodes the JSON columns (tags, frameworks, custom fields…) of every read row:
    # with the standard library's decoder that was a tenth of an uncached list page's CPU
    engine = create_async_engine(settings.database_url, json_deserializer=orjson.loads, **kwargs)
    if settings.is_sqlite:
        _enable_sqlite_pragmas(engine)
    else:
        timeouts.install_timeout_policy(engine.sync_engine, settings)
    if pooled and not in_memory:
        install_idle_policy(
            engine.sync_engine,
            max_idle_time_s=profile.max_idle_time_s,
            pre_ping_after_s=settings.pool_pre_ping_after_s,
        )
    sessions = async_sessionmaker(engine, expire_on_commit=False, autoflush=False)
    return Database(engine=engine, sessions=sessions, profile=profile)
