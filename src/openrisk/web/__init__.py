"""The server-rendered web UI: Jinja2 pages at the root, a cookie session with CSRF
protection, the same services and permission checks as the JSON API."""

from __future__ import annotations

from fastapi import FastAPI
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.staticfiles import StaticFiles


def wants_html(request: Request) -> bool:
    """A browser navigating (``Accept: text/html``), not an API client, outside ``/api``."""
    return "text/html" in request.headers.get("accept", "") and not request.url.path.startswith(
        "/api/"
    )


def install_web(app: FastAPI) -> None:
    """Mount the static files and the pages (called from ``create_app``, after the API's error
    handlers: an unknown address asked for by a browser gets an HTML page, not JSON)."""
    from openrisk.web.rendering import STATIC_DIR, error_page, secure
    from openrisk.web.router import PAGE_ROUTERS

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    for router in PAGE_ROUTERS:
        app.include_router(router)

    @app.get("/favicon.ico", include_in_schema=False)
    async def favicon() -> Response:
        return FileResponse(
            STATIC_DIR / "favicon.ico",
            media_type="image/x-icon",
            headers={"Cache-Control": "public, max-age=86400"},
        )

    api_handler = app.exception_handlers[StarletteHTTPException]

    async def http_error(request: Request, error: Exception) -> Response:
        assert isinstance(error, StarletteHTTPException)
        if error.status_code == 404 and wants_html(request):
            return secure(error_page(request, 404, "There is nothing at this address."))
        response = api_handler(request, error)
        return await response if not isinstance(response, Response) else response

    app.add_exception_handler(StarletteHTTPException, http_error)


__all__ = ["install_web", "wants_html"]
