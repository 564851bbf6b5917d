"""The bin: deleted risks, newest deletion first, each with a Restore button (the API's bin
service: who may delete a risk may bring it back, with the mitigations deleted with it)."""

from __future__ import annotations

import uuid

from fastapi import Request
from starlette.responses import Response

from openrisk.core.deps import SessionDep
from openrisk.core.errors import Conflict
from openrisk.core.uow import UowDep
from openrisk.risks import bin as risk_bin
from openrisk.web.context import FormDep, WebDep
from openrisk.web.rendering import flash_redirect, render
from openrisk.web.views.common import member_directory, page_router, pager

router = page_router()


@router.get("/risks/bin")
async def bin_page(request: Request, web: WebDep, session: SessionDep) -> Response:
    web.require("risk:delete")
    page = pager(request)
    rows, total = await risk_bin.list_deleted(
        session, context=web.context, offset=page.offset, limit=page.page_size
    )
    return render(
        request,
        "risks/bin.html",
        {
            "rows": rows,
            "pager": page.with_total(total),
            "directory": await member_directory(request, session, web),
            "only_own": not web.has_all("risk:delete"),
        },
        web=web,
        section="risks",
    )


@router.post("/risks/{risk_id}/restore")
async def restore_risk(request: Request, risk_id: uuid.UUID, web: FormDep, uow: UowDep) -> Response:
    web.require("risk:delete")
    try:
        restored = await risk_bin.restore_risk(uow=uow, context=web.context, risk_id=risk_id)
    except Conflict:  # restored meanwhile (another tab, another person)
        return flash_redirect(
            request, f"/risks/{risk_id}", "This risk was already restored.", level="error"
        )
    return flash_redirect(
        request, f"/risks/{restored.risk.id}", f"“{restored.risk.title}” is back in the register."
    )
