"""The web UI's cookie session: a signed (HMAC-SHA256) cookie, bound to a server-side login.

The cookie holds the user id, the chosen tenant, the session id and an absolute expiry. The
session id is the family id of the refresh token that ``auth.service.login`` issued for this
sign-in, so the session is also recorded server-side: logging out revokes that family and a
revoked (or expired) session is refused on the next request, whatever the cookie says.

The API keeps its bearer tokens; nothing here is accepted by ``/api/v1``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time
import uuid
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request
from starlette.responses import Response

from openrisk.auth.models import RefreshToken
from openrisk.config import Settings
from openrisk.core.uow import UnitOfWork

SESSION_COOKIE = "openrisk_session"
FLASH_COOKIE = "openrisk_flash"
_SIGNING_CONTEXT = b"openrisk.web.session.v1"


class Signer:
    """HMAC-SHA256 signatures of small JSON payloads, keyed from ``OPENRISK_SECRET_KEY``."""

    def __init__(self, secret: str) -> None:
        self._key = hmac.new(secret.encode(), _SIGNING_CONTEXT, hashlib.sha256).digest()

    def digest(self, purpose: str, value: bytes) -> str:
        mac = hmac.new(self._key, purpose.encode() + b"\x00" + value, hashlib.sha256).digest()
        return base64.urlsafe_b64encode(mac).rstrip(b"=").decode()

    def dumps(self, purpose: str, payload: dict[str, Any]) -> str:
        body = base64.urlsafe_b64encode(orjson.dumps(payload)).rstrip(b"=")
        return f"{body.decode()}.{self.digest(purpose, body)}"

    def loads(self, purpose: str, token: str | None) -> dict[str, Any] | None:
        """The payload, or None when the token is missing, malformed or not signed by us."""
        if not token or token.count(".") != 1 or len(token) > 4096:
            return None
        body, signature = token.split(".")
        if not hmac.compare_digest(signature, self.digest(purpose, body.encode())):
            return None
        try:
            raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
            payload = orjson.loads(raw)
        except (binascii.Error, ValueError, orjson.JSONDecodeError):
            return None
        return payload if isinstance(payload, dict) else None


@dataclass(frozen=True, slots=True)
class WebSession:
    user_id: uuid.UUID
    session_id: uuid.UUID
    tenant_id: uuid.UUID | None
    expires_at: int  # epoch seconds

    @property
    def expired(self) -> bool:
        return self.expires_at <= time.time()

    def in_tenant(self, tenant_id: uuid.UUID | None) -> WebSession:
        return replace(self, tenant_id=tenant_id)


def signer_for(request: Request) -> Signer:
    signer: Signer | None = getattr(request.app.state, "web_signer", None)
    if signer is None:
        settings: Settings = request.app.state.settings
        signer = Signer(settings.secret_key)
        request.app.state.web_signer = signer
    return signer


def new_session(settings: Settings, *, user_id: uuid.UUID, session_id: uuid.UUID) -> WebSession:
    return WebSession(
        user_id=user_id,
        session_id=session_id,
        tenant_id=None,
        expires_at=int(time.time()) + settings.web_session_hours * 3600,
    )


def read_session(request: Request) -> WebSession | None:
    """The signed, unexpired session of the request's cookie; None otherwise."""
    payload = signer_for(request).loads("session", request.cookies.get(SESSION_COOKIE))
    if payload is None:
        return None
    try:
        state = WebSession(
            user_id=uuid.UUID(str(payload["u"])),
            session_id=uuid.UUID(str(payload["s"])),
            tenant_id=uuid.UUID(str(payload["t"])) if payload.get("t") else None,
            expires_at=int(payload["e"]),
        )
    except (KeyError, ValueError, TypeError):
        return None
    return None if state.expired else state


def secure_cookies(request: Request) -> bool:
    settings: Settings = request.app.state.settings
    return settings.web_cookie_secure or request.url.scheme == "https"


def write_session(request: Request, response: Response, state: WebSession) -> None:
    payload = {
        "u": str(state.user_id),
        "s": str(state.session_id),
        "t": str(state.tenant_id) if state.tenant_id else None,
        "e": state.expires_at,
    }
    response.set_cookie(
        SESSION_COOKIE,
        signer_for(request).dumps("session", payload),
        max_age=max(state.expires_at - int(time.time()), 0),
        httponly=True,
        secure=secure_cookies(request),
        samesite="lax",
        path="/",
    )


def clear_session(request: Request, response: Response) -> None:
    response.delete_cookie(
        SESSION_COOKIE, path="/", httponly=True, secure=secure_cookies(request), samesite="lax"
    )


def csrf_token(request: Request, state: WebSession) -> str:
    """The session's CSRF token: bound to the session id, unguessable without the server key."""
    return signer_for(request).digest("csrf", state.session_id.bytes)


# --------------------------------------------------------------------------- flash messages


def set_flash(request: Request, response: Response, text: str, *, level: str = "success") -> None:
    """A one-shot message shown by the next page (post/redirect/get)."""
    value = signer_for(request).dumps("flash", {"l": level, "m": text[:500]})
    response.set_cookie(
        FLASH_COOKIE,
        value,
        max_age=60,
        httponly=True,
        secure=secure_cookies(request),
        samesite="lax",
    )


def read_flash(request: Request) -> tuple[str, str] | None:
    """(level, text) of a pending flash message; the caller deletes the cookie."""
    payload = signer_for(request).loads("flash", request.cookies.get(FLASH_COOKIE))
    if payload is None:
        return None
    level = str(payload.get("l", "success"))
    return (level if level in ("success", "error", "info") else "info"), str(payload.get("m", ""))


# --------------------------------------------------------------------------- server side


async def session_active(
    session: AsyncSession, *, session_id: uuid.UUID, user_id: uuid.UUID
) -> bool:
    """Whether the sign-in behind a cookie still stands (not logged out, not revoked)."""
    found = await session.scalar(
        select(RefreshToken.id)
        .where(
            RefreshToken.family_id == session_id,
            RefreshToken.user_id == user_id,
            RefreshToken.revoked_at.is_(None),
        )
        .limit(1)
    )
    return found is not None


async def revoke_session(*, uow: UnitOfWork, session_id: uuid.UUID) -> None:
    """Log out: the sign-in's refresh-token family is revoked, so the cookie is dead too."""
    session = uow.session
    await session.execute(
        update(RefreshToken)
        .where(RefreshToken.family_id == session_id, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=datetime.now(UTC))
    )
    uow.authorization_changed()
    await uow.commit()
