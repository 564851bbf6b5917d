"""Every page of the web UI, in one router (mounted at the root by ``install_web``)."""

from __future__ import annotations

from fastapi import APIRouter

from openrisk.web.views import (
    assets,
    audit,
    auth,
    dashboard,
    marketplace,
    methodology,
    mitigations,
    quantitative,
    register_files,
    reports,
    risk_bin,
    risks,
    settings,
)

PAGE_ROUTERS: tuple[APIRouter, ...] = (
    auth.router,
    dashboard.router,
    risk_bin.router,  # before risks: /risks/bin is not a risk id
    quantitative.router,
    methodology.router,  # before risks: /risks/{id}/acceptances and /reviews
    register_files.router,  # before risks: /risks/export, /import, /bulk are not risk ids
    risks.router,
    mitigations.router,
    assets.router,
    marketplace.router,
    settings.router,
    audit.router,
    reports.router,
)
