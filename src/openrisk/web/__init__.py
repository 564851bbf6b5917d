"""The server-rendered web UI (SPEC §9): Jinja2 pages at the root, a cookie session with CSRF
protection, the same services and permission checks as the JSON API."""

from __future__ import annotations

from fastapi import FastAPI
from starlette.staticfiles import StaticFiles


def install_web(app: FastAPI) -> None:
    """Mount the static files and the pages (called from ``create_app``)."""
    from openrisk.web.rendering import STATIC_DIR
    from openrisk.web.router import PAGE_ROUTERS

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    for router in PAGE_ROUTERS:
        app.include_router(router)


__all__ = ["install_web"]
