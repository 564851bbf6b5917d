"""The mitigations of a risk's page: plan, update and delete them and their sub-actions. Each
form posts back to the risk page, through the same services and permission checks as the API."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import Request
from pydantic import ValidationError
from starlette.responses import Response

from openrisk.core.deps import SessionDep
from openrisk.core.errors import Conflict, ValidationFailed
from openrisk.core.uow import UowDep
from openrisk.mitigations import service as mitigations
from openrisk.mitigations.schemas import (
    MitigationCreate,
    MitigationUpdate,
    SubActionCreate,
    SubActionUpdate,
)
from openrisk.web import forms
from openrisk.web.context import FormDep
from openrisk.web.rendering import flash_redirect
from openrisk.web.views import risks as risk_pages
from openrisk.web.views.common import page_router, uuid_param

router = page_router()


def _back(
    request: Request,
    risk_id: object,
    message: str,
    *,
    anchor: str = "mitigations",
    level: str = "success",
) -> Response:
    """Back to the risk's page at ``anchor`` with what was done (the form names its risk)."""
    target = uuid_param(str(risk_id))
    url = f"/risks/{target}#{anchor}" if target else "/risks"
    return flash_redirect(request, url, message, level=level)


def _failed(request: Request, risk_id: object, message: str) -> Response:
    return _back(request, risk_id, message, level="error")


@router.post("/risks/{risk_id}/mitigations")
async def create_mitigation(
    request: Request, risk_id: uuid.UUID, web: FormDep, session: SessionDep, uow: UowDep
) -> Response:
    web.require("mitigation:create")
    form = web.form
    assert form is not None
    values = {
        name: forms.text(form, name)
        for name in ("title", "assignee_id", "status", "due_date", "cost", "effort_days")
    }
    values["description"] = str(form.get("description") or "")
    body: dict[str, Any] = {
        "title": values["title"],
        "description": values["description"],
        "status": values["status"] or "PLANNED",
        "due_date": values["due_date"] or None,
        "cost": values["cost"] or 2,
        "effort_days": values["effort_days"] or 1,
        "assignee_id": values["assignee_id"] or None,
    }
    for name in ("frequency_reduction", "loss_reduction", "annual_cost"):
        values[name] = forms.text(form, name)
        if values[name]:
            body[name] = values[name]
    with forms.refusals() as refused:
        data = MitigationCreate.model_validate(body)
        await mitigations.create_mitigation(
            uow=uow, context=web.context, risk_id=risk_id, data=data
        )
    if not refused:
        return _back(request, risk_id, f"Mitigation “{data.title}” planned.")
    return await risk_pages.risk_detail_page(
        request,
        web,
        session,
        risk_id,
        mitigation_values=values,
        mitigation_errors=refused.errors,
        status=422,
    )


@router.post("/mitigations/{mitigation_id}/update")
async def update_mitigation(
    request: Request, mitigation_id: uuid.UUID, web: FormDep, uow: UowDep
) -> Response:
    web.require("mitigation:update")
    form = web.form
    assert form is not None
    risk_id = forms.text(form, "risk_id")
    body: dict[str, Any] = {}
    for name in (
        "status",
        "progress",
        "assignee_id",
        "frequency_reduction",
        "loss_reduction",
        "annual_cost",
    ):
        if value := forms.text(form, name):
            body[name] = value
    if "due_date" in form:
        body["due_date"] = forms.text(form, "due_date") or None
    try:
        data = MitigationUpdate.model_validate(body)
        await mitigations.update_mitigation(
            uow=uow, context=web.context, mitigation_id=mitigation_id, data=data
        )
    except ValidationError as error:
        return _failed(request, risk_id, _first(forms.pydantic_errors(error)))
    except (ValidationFailed, Conflict) as error:
        return _failed(request, risk_id, error.detail)
    return _back(request, risk_id, "Mitigation updated.", anchor=f"mitigation-{mitigation_id}")


def _first(errors: dict[str, str]) -> str:
    field, message = next(iter(errors.items()))
    return message if field == forms.FORM_ERROR else f"{field.replace('_', ' ')}: {message}"


@router.post("/mitigations/{mitigation_id}/delete")
async def delete_mitigation(
    request: Request, mitigation_id: uuid.UUID, web: FormDep, uow: UowDep
) -> Response:
    web.require("mitigation:delete")
    assert web.form is not None
    await mitigations.delete_mitigation(
        uow=uow,
        context=web.context,
        mitigation_id=mitigation_id,
    )
    return _back(request, forms.text(web.form, "risk_id"), "Mitigation deleted.")


@router.post("/mitigations/{mitigation_id}/subactions")
async def add_sub_action(
    request: Request, mitigation_id: uuid.UUID, web: FormDep, uow: UowDep
) -> Response:
    web.require("mitigation:update")
    assert web.form is not None
    risk_id = forms.text(web.form, "risk_id")
    try:
        data = SubActionCreate.model_validate({"title": forms.text(web.form, "title")})
        await mitigations.add_sub_action(
            uow=uow, context=web.context, mitigation_id=mitigation_id, data=data
        )
    except ValidationError as error:
        return _failed(request, risk_id, "Sub-action " + _first(forms.pydantic_errors(error)))
    except ValidationFailed as error:
        return _failed(request, risk_id, error.detail)
    return _back(
        request, risk_id, f"Sub-action “{data.title}” added.", anchor=f"mitigation-{mitigation_id}"
    )


@router.post("/mitigations/{mitigation_id}/subactions/{sub_id}/toggle")
async def toggle_sub_action(
    request: Request,
    mitigation_id: uuid.UUID,
    sub_id: uuid.UUID,
    web: FormDep,
    uow: UowDep,
) -> Response:
    web.require("mitigation:update")
    assert web.form is not None
    completed = forms.text(web.form, "completed") == "true"
    view = await mitigations.update_sub_action(
        uow=uow,
        context=web.context,
        mitigation_id=mitigation_id,
        sub_id=sub_id,
        data=SubActionUpdate(completed=completed),
    )
    # back to the sub-action itself: the page focuses it, not the top of the page
    return _back(
        request,
        forms.text(web.form, "risk_id"),
        _toggled(view, sub_id, completed),
        anchor=f"sub-{sub_id}",
    )


def _toggled(view: mitigations.MitigationView, sub_id: uuid.UUID, completed: bool) -> str:
    title = next((s.title for s in view.mitigation.sub_actions if s.id == sub_id), "Sub-action")
    state = "done" if completed else "to do again"
    return (
        f"“{title}” marked {state}; “{view.mitigation.title}” is {view.mitigation.progress} % done."
    )


@router.post("/mitigations/{mitigation_id}/subactions/{sub_id}/delete")
async def delete_sub_action(
    request: Request,
    mitigation_id: uuid.UUID,
    sub_id: uuid.UUID,
    web: FormDep,
    uow: UowDep,
) -> Response:
    web.require("mitigation:update")
    assert web.form is not None
    await mitigations.delete_sub_action(
        uow=uow,
        context=web.context,
        mitigation_id=mitigation_id,
        sub_id=sub_id,
    )
    return _back(
        request,
        forms.text(web.form, "risk_id"),
        "Sub-action removed.",
        anchor=f"mitigation-{mitigation_id}",
    )
