"""The interactive API documentation (Swagger UI at ``/docs``, ReDoc at ``/redoc``), served
from the installed package: the pages work without internet access and load nothing from
another site. The JavaScript and CSS come from the ``fastapi-offline`` wheel, which ships
current Swagger UI and ReDoc bundles as package data.
"""

from __future__ import annotations

import base64
import hashlib
import re

from fastapi import FastAPI
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.staticfiles import StaticFiles

DOCS_URL = "/docs"
REDOC_URL = "/redoc"
OAUTH2_REDIRECT_URL = "/docs/oauth2-redirect"
ASSETS_URL = "/docs/assets"
FAVICON_URL = "/static/favicon.svg?v=1"


_INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.S)


def confined(page: HTMLResponse) -> HTMLResponse:
    """A Content-Security-Policy that lets the page reach only this server: the bundles'
    links to other sites (a logo, the online validator) are never requested. The page's own
    inline start-up script is allowed by its hash."""
    hashes = " ".join(
        "'sha256-" + base64.b64encode(hashlib.sha256(script.encode()).digest()).decode() + "'"
        for script in _INLINE_SCRIPT.findall(bytes(page.body).decode())
    )
    page.headers["Content-Security-Policy"] = (
        f"default-src 'self'; script-src 'self' {hashes}; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data:; worker-src 'self' blob:; connect-src 'self'; "
        "object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
    )
    page.headers["X-Content-Type-Options"] = "nosniff"
    return page


def install_api_docs(app: FastAPI) -> None:
    """Add the two documentation pages and the Authorize button's OAuth2 redirect page."""
    openapi_url = app.openapi_url or "/openapi.json"
    app.mount(
        ASSETS_URL, StaticFiles(packages=[("fastapi_offline", "static")]), name="api-docs-assets"
    )

    @app.get(DOCS_URL, include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "").rstrip("/")
        return confined(
            get_swagger_ui_html(
                openapi_url=root + openapi_url,
                title=f"{app.title} — API documentation",
                oauth2_redirect_url=root + OAUTH2_REDIRECT_URL,
                swagger_js_url=f"{root}{ASSETS_URL}/swagger-ui-bundle.js",
                swagger_css_url=f"{root}{ASSETS_URL}/swagger-ui.css",
                swagger_favicon_url=root + FAVICON_URL,
                # the Authorize dialog signs in through POST /api/v1/auth/token (password flow)
                swagger_ui_parameters={
                    "persistAuthorization": False,
                    "tryItOutEnabled": True,
                    "validatorUrl": None,
                },
            )
        )

    @app.get(OAUTH2_REDIRECT_URL, include_in_schema=False)
    async def swagger_ui_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    @app.get(REDOC_URL, include_in_schema=False)
    async def redoc(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "").rstrip("/")
        return confined(
            get_redoc_html(
                openapi_url=root + openapi_url,
                title=f"{app.title} — API reference",
                redoc_js_url=f"{root}{ASSETS_URL}/redoc.standalone.js",
                redoc_favicon_url=root + FAVICON_URL,
                with_google_fonts=False,
            )
        )
