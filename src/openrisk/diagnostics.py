"""Reachability of what the configuration points at (``openrisk check-config``): the database
(and whether its schema is current), the cache backend and, when configured, the SMTP relay.

Each check is bounded in time and reports what failed in words; none changes anything.
"""

from __future__ import annotations

import asyncio
import re
import smtplib
import urllib.parse
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from openrisk.config import Settings

TIMEOUT_S = 5.0


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str


def redact(url: str) -> str:
    """The URL with any password replaced by ***."""
    return re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", url)


def _reason(error: BaseException) -> str:
    if isinstance(error, TimeoutError):
        return f"no answer within {TIMEOUT_S:.0f} s"
    text = str(error).strip().splitlines()[0] if str(error).strip() else ""
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


async def check_database(settings: Settings) -> Check:
    from openrisk.core.db.engine import create_database
    from openrisk.core.db.migrate import SchemaBehind, ensure_schema_current

    database = create_database(settings, pooled=False)
    try:
        await asyncio.wait_for(database.ping(), TIMEOUT_S)
        await asyncio.wait_for(ensure_schema_current(database.engine), TIMEOUT_S)
    except SchemaBehind as error:
        return Check("database (OPENRISK_DATABASE_URL)", False, str(error))
    except Exception as error:
        where = redact(settings.database_url)
        return Check(
            "database (OPENRISK_DATABASE_URL)", False, f"{where} unreachable: {_reason(error)}"
        )
    finally:
        await database.dispose()
    return Check(
        "database (OPENRISK_DATABASE_URL)", True, f"{database.engine.dialect.name}, schema current"
    )


async def check_cache(settings: Settings) -> Check:
    from openrisk.core.cache.factory import build_app_caches

    name = "cache (OPENRISK_CACHE_BACKEND)"
    if settings.cache_backend == "memory":
        return Check(name, True, "memory: inside each server process, nothing to reach")
    where = settings.cache_backend
    if settings.cache_backend == "redis":
        where = f"redis at {redact(settings.redis_url)}"
    caches = build_app_caches(settings)
    try:
        answered = await asyncio.wait_for(caches.shared.ping(), TIMEOUT_S)
    except Exception as error:
        return Check(name, False, f"{where} unreachable: " + _reason(error))
    finally:
        await caches.shared.close()
    if not answered:
        return Check(name, False, f"{where} does not answer (OPENRISK_REDIS_URL)")
    return Check(name, True, f"{where} answers")


def _smtp_ehlo(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    secure = parts.scheme == "smtps"
    host, port = parts.hostname or "", parts.port or (465 if secure else 25)
    client_class = smtplib.SMTP_SSL if secure else smtplib.SMTP
    with client_class(host, port, timeout=TIMEOUT_S) as client:
        code, _ = client.ehlo()
        return f"{host}:{port} answers EHLO ({code})"


async def check_smtp(url: str | None) -> Check:
    """The SMTP relay of ``OPENRISK_SMTP_URL`` greets us (no message is sent, no login tried)."""
    name = "smtp (OPENRISK_SMTP_URL)"
    if not url:
        return Check(name, True, "not configured: email is not sent")
    where = redact(url)
    try:
        detail = await asyncio.wait_for(asyncio.to_thread(_smtp_ehlo, url), TIMEOUT_S + 1)
    except Exception as error:
        return Check(name, False, f"{where} unreachable: " + _reason(error))
    return Check(name, True, detail)


async def run_checks(
    settings: Settings, *, extra: tuple[Callable[[], Awaitable[Check]], ...] = ()
) -> list[Check]:
    checks = [check_database(settings), check_cache(settings), *(make() for make in extra)]
    return list(await asyncio.gather(*checks))
