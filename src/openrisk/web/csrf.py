"""CSRF protection of the web UI's forms.

- Signed-in pages: a per-session token (an HMAC of the session id, see ``session.csrf_token``)
  is put in a hidden field of every POST form and checked before any handler runs.
- Anonymous forms (login, accepting an invitation): a double-submit token, a random value kept
  in an HttpOnly cookie and echoed by the form.

A missing or wrong token is a 403, whatever else the request carries. The session cookie is also
``SameSite=Lax``, so other sites cannot make a browser POST with it in the first place.
"""

from __future__ import annotations

import hmac
import secrets

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response

from openrisk.core.errors import Forbidden
from openrisk.web.session import WebSession, csrf_token, secure_cookies

CSRF_FIELD = "csrf_token"
ANON_CSRF_COOKIE = "openrisk_csrf"


class CsrfFailed(Forbidden):
    def __init__(self) -> None:
        super().__init__(
            "This form has expired or did not come from OpenRisk. Reload the page and try again."
        )


def _same(expected: str | None, sent: object) -> bool:
    return (
        isinstance(sent, str)
        and bool(expected)
        and hmac.compare_digest(str(expected).encode(), sent.encode())
    )


def check_session_csrf(request: Request, state: WebSession, form: FormData) -> None:
    if not _same(csrf_token(request, state), form.get(CSRF_FIELD)):
        raise CsrfFailed()


def anonymous_token(request: Request) -> str:
    """The double-submit token of an anonymous form (the cookie's, or a new one)."""
    current = request.cookies.get(ANON_CSRF_COOKIE)
    if current and 20 <= len(current) <= 100:
        return current
    return secrets.token_urlsafe(24)


def set_anonymous_cookie(request: Request, response: Response, token: str) -> None:
    response.set_cookie(
        ANON_CSRF_COOKIE,
        token,
        max_age=2 * 3600,
        httponly=True,
        secure=secure_cookies(request),
        samesite="lax",
        path="/",
    )


def anonymous_token_valid(request: Request, form: FormData) -> bool:
    return _same(request.cookies.get(ANON_CSRF_COOKIE), form.get(CSRF_FIELD))
