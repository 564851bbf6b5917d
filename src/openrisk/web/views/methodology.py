"""The methodology's pages: the risk model editor (with a dry-run preview), the acceptance
request on a risk, the approvals queue, the review queue. Same services and checks as the
API; the views never commit (the services do, through the unit of work)."""

from __future__ import annotations

import re
import uuid
from typing import Any

from fastapi import Request
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.datastructures import FormData
from starlette.responses import Response

from openrisk.core.deps import SessionDep, SettingsDep
from openrisk.core.errors import Conflict, Forbidden, ValidationFailed
from openrisk.core.uow import UowDep
from openrisk.methodology import acceptance, clock, jobs, reviews, service, store
from openrisk.methodology.acceptance_router import AcceptanceCreate, Decision, ReviewCreate
from openrisk.methodology.models import RiskAcceptance, RiskModelJob
from openrisk.methodology.schemas import MAX_BANDS, RiskModelOut, RiskModelUpdate
from openrisk.risks import reads
from openrisk.risks.enums import SortField, SortOrder
from openrisk.risks.models import Risk
from openrisk.risks.queries import RiskFilters
from openrisk.risks.scoring import Criticality
from openrisk.web import forms
from openrisk.web.context import FormDep, WebContext, WebDep
from openrisk.web.rendering import flash_redirect, redirect, render
from openrisk.web.session import set_flash
from openrisk.web.views import risks as risk_pages
from openrisk.web.views.common import member_directory, page_router

router = page_router()

QUEUE_LIMIT = 100
CRITICALITIES = [c.value for c in Criticality]
_MAPPING = re.compile(r"^\s*(\d+)\s*(?::|→|->)\s*(\d+)\s*$")
_LEVEL_SEPARATOR = re.compile(r"\s+[—-]\s+")


def _back(form: FormData, default: str) -> str:
    """Where a form asked to go back to: a path of this site, never another one."""
    back = forms.text(form, "back")
    return back if back.startswith("/") and not back.startswith("//") else default


# --------------------------------------------------------------------------- acceptances


@router.post("/risks/{risk_id}/acceptances")
async def request_acceptance(
    request: Request, risk_id: uuid.UUID, web: FormDep, session: SessionDep, uow: UowDep
) -> Response:
    """Ask for the risk to be accepted (risk:update on it); errors next to their fields."""
    assert web.form is not None
    values = {
        name: forms.text(web.form, name)
        for name in ("justification", "compensating_controls", "expires_on")
    }
    try:
        body = AcceptanceCreate.model_validate(
            {**values, "expires_on": values["expires_on"] or None}
        )
        await acceptance.submit(
            uow=uow,
            context=web.context,
            risk_id=risk_id,
            justification=body.justification,
            expires_on=body.expires_on,
            compensating_controls=body.compensating_controls,
            today=clock.today(),
        )
    except ValidationError as error:
        errors = forms.pydantic_errors(error)
    except ValidationFailed as error:
        errors = forms.service_errors(error)
    except Conflict as error:
        errors = {forms.FORM_ERROR: error.detail}
    else:
        return flash_redirect(
            request,
            f"/risks/{risk_id}#acceptance",
            "Acceptance requested: it waits for an approver.",
        )
    return await risk_pages.risk_detail_page(
        request,
        web,
        session,
        risk_id,
        acceptance_values=values,
        acceptance_errors=errors,
        status=422,
    )


DECISIONS: dict[str, tuple[Any, str]] = {
    "approve": (acceptance.approve, "Acceptance approved: the risk is accepted until {until}."),
    "reject": (acceptance.reject, "Acceptance rejected."),
    "revoke": (acceptance.revoke, "Acceptance ended."),
}


@router.post("/acceptances/{acceptance_id}/{verb}")
async def decide(
    request: Request, acceptance_id: uuid.UUID, verb: str, web: FormDep, uow: UowDep
) -> Response:
    """Approve, reject or revoke (withdraw, for the requester) an acceptance; a refusal (the
    requester deciding, a junior approver above the appetite) comes back as a message."""
    assert web.form is not None
    back = _back(web.form, "/acceptances")
    if verb not in DECISIONS:
        return flash_redirect(request, back, "Unknown decision.", level="error")
    step, message = DECISIONS[verb]
    try:
        comment = Decision.model_validate({"comment": forms.text(web.form, "comment")}).comment
        kwargs: dict[str, Any] = {"today": clock.today()} if verb == "approve" else {}
        decided = await step(
            uow=uow, context=web.context, acceptance_id=acceptance_id, comment=comment, **kwargs
        )
    except ValidationError as error:
        text = "Comment: " + forms.first_message(error)
        level = "error"
    except (Forbidden, Conflict, ValidationFailed) as error:
        text, level = error.detail, "error"
    else:
        was_withdrawn = verb == "revoke" and decided.decided_by is None
        text = "Request withdrawn." if was_withdrawn else message
        text, level = text.format(until=decided.expires_on.isoformat()), "success"
    return flash_redirect(request, back, text, level=level)


async def _risk_rows(
    session: AsyncSession, web: WebContext, found: list[RiskAcceptance]
) -> dict[uuid.UUID, Any]:
    ids = sorted({a.risk_id for a in found})
    if not ids:
        return {}
    rows = await session.execute(
        select(
            Risk.id,
            Risk.title,
            Risk.score,
            Risk.severity,
            Risk.residual_score,
            Risk.within_appetite,
            Risk.owner_id,
        ).where(Risk.tenant_id == web.tenant_id, Risk.id.in_(ids))
    )
    return {row.id: row for row in rows}


@router.get("/acceptances")
async def approvals(request: Request, web: WebDep, session: SessionDep) -> Response:
    """The approvers' queue (submitted, oldest first) and the acceptances in force."""
    web.require("risk:read")
    waiting, waiting_total = await acceptance.list_acceptances(
        session,
        context=web.context,
        status=acceptance.SUBMITTED,
        risk_id=None,
        offset=0,
        limit=QUEUE_LIMIT,
    )
    active, active_total = await acceptance.list_acceptances(
        session,
        context=web.context,
        status=acceptance.APPROVED,
        risk_id=None,
        offset=0,
        limit=QUEUE_LIMIT,
    )
    model = await store.load(session, tenant_id=web.tenant_id)
    rules = model.definition.get("acceptance", store.DEFAULT_ACCEPTANCE)
    return render(
        request,
        "methodology/approvals.html",
        {
            "waiting": waiting,
            "waiting_total": waiting_total,
            "active": sorted(active, key=lambda a: a.expires_on),
            "active_total": active_total,
            "risks": await _risk_rows(session, web, [*waiting, *active]),
            "directory": await member_directory(request, session, web),
            "approver_min_level": int(rules["approver_min_level"]),
            "band_colors": {b.name: b.color for b in model.scoring.bands},
            "today": clock.today(),
        },
        web=web,
        section="approvals",
    )


# --------------------------------------------------------------------------- reviews


@router.get("/reviews")
async def review_queue(request: Request, web: WebDep, session: SessionDep) -> Response:
    """Risks whose review is overdue (oldest due first), then those due within 14 days."""
    web.require("risk:read")
    today = clock.today()
    lists = {}
    for kind in ("overdue", "due_soon"):
        found = await reads.list_risks(
            session,
            tenant_id=web.tenant_id,
            filters=RiskFilters(review=kind, review_today=today),
            sort=SortField.NEXT_REVIEW_DATE,
            order=SortOrder.ASC,
            limit=QUEUE_LIMIT,
        )
        lists[kind] = found
    model = await store.load(session, tenant_id=web.tenant_id)
    return render(
        request,
        "methodology/reviews.html",
        {
            "overdue": lists["overdue"],
            "due_soon": lists["due_soon"],
            "directory": await member_directory(request, session, web),
            "band_colors": {b.name: b.color for b in model.scoring.bands},
            "today": today,
        },
        web=web,
        section="reviews",
    )


@router.post("/risks/{risk_id}/reviews")
async def record_review(
    request: Request, risk_id: uuid.UUID, web: FormDep, uow: UowDep
) -> Response:
    assert web.form is not None
    back = _back(web.form, "/reviews")
    try:
        body = ReviewCreate.model_validate(
            {
                "outcome": forms.text(web.form, "outcome") or "unchanged",
                "comment": forms.text(web.form, "comment"),
            }
        )
    except ValidationError as error:
        message = "Review not recorded: " + forms.first_message(error)
        return flash_redirect(request, back, message, level="error")
    await reviews.record_review(
        uow=uow,
        context=web.context,
        risk_id=risk_id,
        outcome=body.outcome,
        comment=body.comment,
        today=clock.today(),
    )
    risk = await reads.get_risk(uow.session, tenant_id=web.tenant_id, risk_id=risk_id)
    return flash_redirect(
        request,
        back,
        f"Review of “{risk.title}” recorded: the next one is due on "
        f"{risk.next_review_date.isoformat()}.",
    )


# --------------------------------------------------------------------------- the model editor


def _model_values(model: RiskModelOut) -> dict[str, Any]:
    """The editor's fields for a model."""

    def lines(levels: list[Any]) -> str:
        return "\n".join(
            lv.name + (f" — {lv.description}" if lv.description else "") for lv in levels
        )

    bands = [
        {
            "name": b.name,
            "min": f"{float(b.min_score):g}",
            "color": b.color,
            "review": str(model.review_days.get(b.name, store.FALLBACK_REVIEW_DAYS)),
        }
        for b in model.bands
    ]
    return {
        "impact_levels": lines(model.impact_levels),
        "probability_levels": lines(model.probability_levels),
        "bands": bands,
        "appetite_score": f"{float(model.appetite_score):g}",
        "max_days": str(model.acceptance.max_days),
        "approver_min_level": str(model.acceptance.approver_min_level),
        "factors": {str(k): f"{float(v):g}" for k, v in model.asset_factors.items()},
        "mapping_impact": "",
        "mapping_probability": "",
        "version": str(model.version),
    }


def _form_values(form: FormData) -> dict[str, Any]:
    bands = []
    for k in range(MAX_BANDS):
        row = {name: forms.text(form, f"band_{name}_{k}") for name in ("name", "min", "color")}
        row["review"] = forms.text(form, f"band_review_{k}")
        if row["name"] or row["min"]:
            bands.append(row)
    return {
        "impact_levels": str(form.get("impact_levels") or ""),
        "probability_levels": str(form.get("probability_levels") or ""),
        "bands": bands,
        "appetite_score": forms.text(form, "appetite_score"),
        "max_days": forms.text(form, "max_days"),
        "approver_min_level": forms.text(form, "approver_min_level"),
        "factors": {c: forms.text(form, f"factor_{c}") for c in CRITICALITIES},
        "mapping_impact": forms.text(form, "mapping_impact"),
        "mapping_probability": forms.text(form, "mapping_probability"),
        "version": forms.text(form, "version"),
    }


def _levels(text: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for line in text.splitlines():
        if not line.strip():
            continue
        parts = _LEVEL_SEPARATOR.split(line.strip(), maxsplit=1)
        name = parts[0]
        description = parts[1] if len(parts) > 1 else ""
        found.append({"value": len(found) + 1, "name": name, "description": description})
    return found


def _mapping(text: str, field: str, errors: dict[str, str]) -> dict[str, str]:
    found: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in text.replace(";", ",").split(","))):
        match = _MAPPING.match(part)
        if match is None:
            errors[field] = "Write each move as old:new, e.g. 5:4, 6:4."
            return {}
        found[match.group(1)] = match.group(2)
    return found


def _body(values: dict[str, Any], errors: dict[str, str]) -> dict[str, Any]:
    """The API's body for the editor's fields (syntax errors of the mappings in ``errors``)."""
    bands = values["bands"]
    return {
        "version": values["version"] or None,
        "impact_levels": _levels(values["impact_levels"]),
        "probability_levels": _levels(values["probability_levels"]),
        "bands": [
            {"name": b["name"], "min_score": b["min"] or None, "color": b["color"] or "#9e9e9e"}
            for b in bands
        ],
        "review_days": {b["name"]: b["review"] for b in bands if b["name"] and b["review"]},
        "appetite_score": values["appetite_score"] or None,
        "acceptance": {
            "max_days": values["max_days"] or None,
            "approver_min_level": values["approver_min_level"] or None,
        },
        "asset_factors": {c: v for c, v in values["factors"].items() if v},
        "level_mapping": {
            "impact": _mapping(values["mapping_impact"], "mapping_impact", errors),
            "probability": _mapping(values["mapping_probability"], "mapping_probability", errors),
        },
    }


def field_of(location: list[str], bands: list[dict[str, Any]]) -> str:
    """The editor's input that an API error location names."""
    head = location[0] if location else ""
    if head in ("impact_levels", "probability_levels", "appetite_score"):
        return head
    if head == "bands" and len(location) > 2 and location[1].isdigit():
        short = {"name": "name", "min_score": "min", "color": "color"}.get(location[2], "name")
        return f"band_{short}_{location[1]}"
    if head == "review_days" and len(location) > 1:
        names = [b["name"] for b in bands]
        if location[1] in names:
            return f"band_review_{names.index(location[1])}"
    if head == "acceptance" and len(location) > 1:
        return location[1]
    if head == "asset_factors" and len(location) > 1:
        return f"factor_{location[1]}"
    if head == "level_mapping" and len(location) > 1:
        return f"mapping_{location[1]}"
    if head in ("bands", "review_days"):
        return "bands"
    return forms.FORM_ERROR


def _model_errors(
    error: ValidationError | ValidationFailed, values: dict[str, Any]
) -> dict[str, str]:
    found: dict[str, str] = {}
    if isinstance(error, ValidationError):
        for detail in error.errors():
            location = [str(p) for p in detail.get("loc", ())]
            found.setdefault(field_of(location, values["bands"]), forms.message_of(detail))
    else:
        for item in error.errors or []:
            location = str(item.get("field") or "").split(".")
            found.setdefault(field_of(location, values["bands"]), str(item.get("message")))
    return found or {forms.FORM_ERROR: "Correct the model."}


def _grid(model: RiskModelOut) -> list[list[dict[str, Any]]]:
    """The model's grid, highest impact first: each cell's band and colour."""
    scoring = store.to_scoring(model.model_dump(mode="json"))
    colors = {b.name: b.color for b in scoring.bands}
    rows = []
    for i in range(scoring.impact_levels, 0, -1):
        row = []
        for p in range(1, scoring.probability_levels + 1):
            band = scoring.severity(i * p)
            row.append({"impact": i, "probability": p, "band": band, "color": colors[band]})
        rows.append(row)
    return rows


def _editor(
    request: Request,
    web: WebContext,
    values: dict[str, Any],
    model: RiskModelOut,
    *,
    preview: RiskModelOut | None = None,
    errors: dict[str, str] | None = None,
    status: int = 200,
    job: RiskModelJob | None = None,
) -> Response:
    bands = list(values["bands"])
    while len(bands) < min(MAX_BANDS, len(values["bands"]) + 2):
        bands.append({"name": "", "min": "", "color": "#9e9e9e", "review": ""})
    shown = preview or model
    return render(
        request,
        "methodology/risk_model.html",
        {
            "values": {**values, "bands": bands},
            "model": model,
            "preview": preview,
            "grid": _grid(shown),
            "grid_levels": (shown.impact_levels, shown.probability_levels),
            "criticalities": CRITICALITIES,
            "errors": errors or {},
            "editable": web.has("tenant:update"),
            "job": job,
        },
        web=web,
        section="risk-model",
        status=status,
    )


@router.get("/settings/risk-model")
async def risk_model_page(request: Request, web: WebDep, session: SessionDep) -> Response:
    web.require("risk:read")
    model = await service.get_model(session, context=web.context)
    job = await jobs.latest_job(session, context=web.context)
    return _editor(request, web, _model_values(model), model, job=job)


@router.post("/settings/risk-model")
async def save_risk_model(
    request: Request, web: FormDep, session: SessionDep, uow: UowDep, settings: SettingsDep
) -> Response:
    """Preview (a dry run: what would move, nothing written) or save the edited model."""
    web.require("tenant:update")
    assert web.form is not None
    values = _form_values(web.form)
    dry_run = forms.text(web.form, "action") != "save"
    errors: dict[str, str] = {}
    body = _body(values, errors)
    current = await service.get_model(session, context=web.context)
    try:
        if errors:
            raise ValidationFailed("Invalid value for: " + ", ".join(errors))
        data = RiskModelUpdate.model_validate(body)
        if dry_run:
            answer: RiskModelOut | RiskModelJob = await service.put_model(
                uow=uow, context=web.context, data=data, dry_run=True
            )
        else:
            answer = await jobs.request_change(
                uow=uow,
                context=web.context,
                data=data,
                threshold=settings.risk_model_async_threshold,
            )
    except (ValidationError, ValidationFailed) as error:
        errors = errors or _model_errors(error, values)
        return _editor(request, web, values, current, errors=errors, status=422)
    except Conflict as error:
        return _editor(
            request, web, values, current, errors={forms.FORM_ERROR: error.detail}, status=409
        )
    if isinstance(answer, RiskModelJob):
        response = redirect("/settings/risk-model")
        set_flash(
            request,
            response,
            "The register is large: the new risk model is being applied in the background; "
            "every risk is re-scored at once when it is done (this page shows when).",
        )
        return response
    if dry_run:
        return _editor(request, web, values, current, preview=answer)
    response = redirect("/settings/risk-model")
    moved = answer.remapping.severity_changed if answer.remapping else 0
    set_flash(
        request,
        response,
        f"Risk model saved (version {answer.version}): {moved} "
        f"risk{'' if moved == 1 else 's'} changed band.",
    )
    return response
