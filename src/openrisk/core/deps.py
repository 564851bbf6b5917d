"""FastAPI dependencies shared by every router: settings, database session, app services."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from openrisk.config import Settings
from openrisk.core.db.engine import Database
from openrisk.core.ratelimit import RateLimits
from openrisk.core.security import TokenCodec


async def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_database(request: Request) -> Database:
    database: Database = request.app.state.db
    return database


async def get_codec(request: Request) -> TokenCodec:
    codec: TokenCodec = request.app.state.codec
    return codec


async def get_rate_limits(request: Request) -> RateLimits:
    limits: RateLimits = request.app.state.rate_limits
    return limits


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    database: Database = request.app.state.db
    session = database.sessions()
    try:
        yield session
    finally:
        # An answer served from the response cache never touches its session; closing it
        # anyway cost a task, a shield and a greenlet switch per request (docs/performance.md).
        if session.in_transaction() or session.identity_map or session.new:
            await session.__aexit__(None, None, None)


SettingsDep = Annotated[Settings, Depends(get_settings)]
DatabaseDep = Annotated[Database, Depends(get_database)]
CodecDep = Annotated[TokenCodec, Depends(get_codec)]
SessionDep = Annotated[AsyncSession, Depends(get_session)]
RateLimitsDep = Annotated[RateLimits, Depends(get_rate_limits)]
