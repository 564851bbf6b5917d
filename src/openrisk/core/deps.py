"""FastAPI dependencies shared by every router: settings, database session, app services."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from openrisk.config import Settings
from openrisk.core.db.engine import Database
from openrisk.core.events import EventBus
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


async def get_events(request: Request) -> EventBus:
    events: EventBus = request.app.state.events
    return events


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    database: Database = request.app.state.db
    async with database.sessions() as session:
        yield session


SettingsDep = Annotated[Settings, Depends(get_settings)]
DatabaseDep = Annotated[Database, Depends(get_database)]
CodecDep = Annotated[TokenCodec, Depends(get_codec)]
SessionDep = Annotated[AsyncSession, Depends(get_session)]
EventsDep = Annotated[EventBus, Depends(get_events)]
