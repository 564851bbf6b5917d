"""Jinja2 rendering, the page layout's data, and HTML error pages for the web routes.

Web routes use ``WebRoute``: an error raised by a service (403, 404, 409...) becomes an HTML
page instead of the API's problem+json, and a missing session becomes a redirect to the login
form. The API's error handling is untouched.
"""

from __future__ import annotations

import logging
import re
import urllib.parse
from collections.abc import Callable, Coroutine, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from http import HTTPStatus
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from jinja2 import (
    Environment,
    FileSystemLoader,
    StrictUndefined,
    pass_context,
    select_autoescape,
)
from jinja2.runtime import Context
from markupsafe import Markup
from sqlalchemy import exc as sa_exc
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from openrisk import __version__
from openrisk.core.errors import AppError, Unauthorized
from openrisk.core.inputs import InputRefused, check_request
from openrisk.risks.scoring import severity_for
from openrisk.web import charts
from openrisk.web.context import LoginRequired, WebContext
from openrisk.web.csrf import CSRF_FIELD
from openrisk.web.session import FLASH_COOKIE, read_flash, set_flash, write_session

log = logging.getLogger(__name__)

TEMPLATES_DIR = Path(__file__).parent / "templates"
STATIC_DIR = Path(__file__).parent / "static"

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


@dataclass(frozen=True)
class NavItem:
    href: str
    label: str
    permission: str
    section: str


NAV: tuple[NavItem, ...] = (
    NavItem("/", "Dashboard", "dashboard:read", "dashboard"),
    NavItem("/risks", "Risks", "risk:read", "risks"),
    NavItem("/quantitative", "Loss exposure", "dashboard:read", "quantitative"),
    NavItem("/reviews", "Reviews", "risk:read", "reviews"),
    NavItem("/acceptances", "Approvals", "risk:accept", "approvals"),
    NavItem("/assets", "Assets", "asset:read", "assets"),
    NavItem("/marketplace", "Marketplace", "connector:read", "marketplace"),
    NavItem("/reports", "Reports", "report:read", "reports"),
    NavItem("/settings/members", "Members", "member:read", "members"),
    NavItem("/settings/roles", "Roles", "role:read", "roles"),
    NavItem("/settings/risk-model", "Risk model", "tenant:update", "risk-model"),
    NavItem("/settings/tokens", "API tokens", "token:read", "tokens"),
    NavItem("/audit", "Audit log", "audit:read", "audit"),
)


TZ_COOKIE = "openrisk_tz"  # the browser's IANA time zone, set by app.js
_ZONE_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_+\-]*(/[A-Za-z0-9_+\-]+){0,2}")


def time_zone(request: Request) -> ZoneInfo:
    """The person's time zone (from their browser), UTC when unknown or invalid."""
    name = request.cookies.get(TZ_COOKIE, "")
    if _ZONE_NAME.fullmatch(name):
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            pass
    return ZoneInfo("UTC")


@pass_context
def _datetime(ctx: Context, value: datetime | None) -> Markup:
    """``<time>`` in the viewer's zone: ``2026-03-01 14:05 CET``, never wrapped."""
    if value is None:
        return Markup("—")
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    zone: ZoneInfo = ctx.get("tz") or ZoneInfo("UTC")
    local = value.astimezone(zone)
    return Markup('<time class="nowrap" datetime="{}">{}</time>').format(
        value.astimezone(UTC).isoformat(timespec="seconds"),
        local.strftime("%Y-%m-%d %H:%M ") + (local.tzname() or "UTC"),
    )


@pass_context
def _date(ctx: Context, value: date | datetime | None) -> Markup:
    if value is None:
        return Markup("—")
    if isinstance(value, datetime):
        zone: ZoneInfo = ctx.get("tz") or ZoneInfo("UTC")
        value = (value if value.tzinfo else value.replace(tzinfo=UTC)).astimezone(zone)
    return Markup('<time class="nowrap" datetime="{}">{}</time>').format(
        value.isoformat(), value.strftime("%Y-%m-%d")
    )


def _severity_class(score: object) -> str:
    return "sev-" + severity_for(float(str(score))).value.lower()


def _label(value: object) -> str:
    """``IN_PROGRESS`` → ``In progress``."""
    text = str(value).replace("_", " ").strip()
    return text[:1].upper() + text[1:].lower()


def _people(directory: Mapping[Any, Any]) -> list[tuple[str, str]]:
    """Picker options ``(user id, "Name <email>")`` of a member directory, by name."""
    options = [
        (str(uid), f"{row.full_name} <{row.email}>" if row.full_name else row.email)
        for uid, row in directory.items()
    ]
    return sorted(options, key=lambda option: option[1].lower())


def _value(value: object) -> str:
    """A before/after value of a change, readable."""
    if value is None or value == "" or value == [] or value == {}:
        return "—"
    if isinstance(value, list):
        return ", ".join(_value(v) for v in value)
    if isinstance(value, dict):
        return ", ".join(f"{k}: {_value(v)}" for k, v in value.items())
    return str(value)


def _pairs(values: Iterable[object]) -> list[tuple[str, str]]:
    return [(str(v), str(v)) for v in values]


def _labelled(values: Iterable[object]) -> list[tuple[str, str]]:
    """Select options whose text reads like the rest of the page: ``CRITICAL`` → ``Critical``."""
    return [(str(v), _label(v)) for v in values]


def _build_environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES_DIR),
        autoescape=select_autoescape(("html",)),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        auto_reload=False,
    )
    env.filters.update(
        dt=_datetime,
        day=_date,
        sev_class=_severity_class,
        label=_label,
        pairs=_pairs,
        labelled=_labelled,
        value=_value,
        money=charts.money,
        band_style=charts.band_style,
        percent=charts.percent,
    )
    env.globals.update(
        people=_people,
        version=__version__,
        csrf_field=CSRF_FIELD,
        static=lambda p: f"/static/{p}?v={__version__}",
    )
    return env


ENV = _build_environment()


def query_url(path: str, params: Iterable[tuple[str, str]], **changes: object) -> str:
    """``path`` with ``params`` (repeated keys kept), some replaced or removed (None)."""
    kept = [(k, v) for k, v in params if k not in changes and v != ""]
    kept += [(k, str(v)) for k, v in changes.items() if v is not None and v != ""]
    query = urllib.parse.urlencode(kept)
    return f"{path}?{query}" if query else path


def render(
    request: Request,
    template: str,
    values: Mapping[str, Any] | None = None,
    *,
    web: WebContext | None = None,
    status: int = 200,
    section: str = "",
) -> HTMLResponse:
    flash = read_flash(request) if FLASH_COOKIE in request.cookies else None
    context: dict[str, Any] = {
        "request": request,
        "web": web,
        "nav": [n for n in NAV if web is not None and web.has(n.permission)],
        "section": section,
        "section_home": next((n.href for n in NAV if n.section == section), "/"),
        "flash": flash,
        "csrf": web.csrf if web is not None else getattr(request.state, "web_csrf", ""),
        "memberships": getattr(request.state, "web_memberships", None) or [],
        "current_tenant": getattr(request.state, "web_tenant_id", None),
        "path": request.url.path,
        "params": list(request.query_params.multi_items()),
        "query_url": query_url,
        "tz": time_zone(request),
        "band_colors": {},  # the tenant's band colours, for pages that show its own bands
    }
    context.update(values or {})
    response = HTMLResponse(ENV.get_template(template).render(context), status_code=status)
    if FLASH_COOKIE in request.cookies:
        response.delete_cookie(FLASH_COOKIE)
    if web is not None and web.tenant_reset:
        write_session(request, response, web.state)
    return response


def redirect(url: str) -> RedirectResponse:
    """After a successful POST: see other (the browser GETs ``url``)."""
    return RedirectResponse(url, status_code=303)


def flash_redirect(
    request: Request, url: str, message: str, *, level: str = "success"
) -> RedirectResponse:
    """Post/redirect/get with the one-shot message the next page shows (what was done, or
    why it was refused)."""
    response = redirect(url)
    set_flash(request, response, message, level=level)
    return response


def error_page(request: Request, status: int, detail: str, title: str | None = None) -> Response:
    web: WebContext | None = getattr(request.state, "web", None)
    return render(
        request,
        "error.html",
        {"status": status, "title": title or HTTPStatus(status).phrase, "detail": detail},
        web=web,
        status=status,
    )


def login_redirect(request: Request) -> RedirectResponse:
    target = request.url.path
    if request.method == "GET" and request.url.query:
        target += "?" + request.url.query
    if request.method != "GET" or target in ("/", "/login"):
        return RedirectResponse("/login", status_code=303)
    return RedirectResponse("/login?" + urllib.parse.urlencode({"next": target}), status_code=303)


def secure(response: Response) -> Response:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    return response


class WebRoute(APIRoute):
    """A page: HTML errors, login redirects and security headers."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def page_handler(request: Request) -> Response:
            try:
                await check_request(request, has_body=request.method == "POST")
                response = await handler(request)
            except InputRefused as refused:
                field = ".".join(str(p) for p in refused.errors()[0]["loc"][1:]) or "the request"
                message = f"{field}: {refused.errors()[0]['msg']}"
                response = error_page(request, 400, message, "Bad Request")
            except LoginRequired:
                response = login_redirect(request)
            except Unauthorized:
                response = login_redirect(request)
            except AppError as error:
                response = error_page(request, error.status, error.detail, error.title)
            except RequestValidationError:
                # malformed ids in the path or the query: nothing to show
                response = error_page(request, 404, "There is nothing at this address.")
            except (sa_exc.TimeoutError, sa_exc.InterfaceError, sa_exc.OperationalError) as error:
                log.error("database unavailable for a page: %s", type(error).__name__)
                response = error_page(
                    request, 503, "The database is busy or unavailable. Try again shortly."
                )
                response.headers["Retry-After"] = "5"
            except Exception:
                log.exception("unhandled error on a page")
                response = error_page(request, 500, "An unexpected error occurred.")
            return secure(response)

        return page_handler
