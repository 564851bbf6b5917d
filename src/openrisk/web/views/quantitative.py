"""Quantitative risk pages: a risk's frequency and loss estimate (saved from its page), the
register's annual loss with its curve and the loss appetite, and their XLSX/PDF export."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from typing import Any

from fastapi import Request
from pydantic import ValidationError
from starlette.responses import Response

from openrisk.core.cache.response import ResponseCache
from openrisk.core.deps import SessionDep
from openrisk.core.errors import NotFound
from openrisk.core.uow import UowDep
from openrisk.quantification import cached, export, service
from openrisk.quantification.schemas import (
    DEFAULT_PORTFOLIO_ITERATIONS,
    DEFAULT_PORTFOLIO_SEED,
    MAX_PORTFOLIO_ITERATIONS,
    MIN_PORTFOLIO_ITERATIONS,
    AppetiteIn,
    PortfolioOut,
    QuantificationIn,
)
from openrisk.web import charts, forms, quantification
from openrisk.web.context import FormDep, WebContext, WebDep
from openrisk.web.rendering import flash_redirect, redirect, render
from openrisk.web.session import set_flash
from openrisk.web.views import risks as risk_pages
from openrisk.web.views.common import int_param, page_router

router = page_router()

ITERATION_CHOICES = (10_000, 50_000, 100_000, 200_000)


# --------------------------------------------------------------------------- one risk


@router.post("/risks/{risk_id}/quantification")
async def save_quantification(
    request: Request, risk_id: uuid.UUID, web: FormDep, session: SessionDep, uow: UowDep
) -> Response:
    web.require("risk:update")
    assert web.form is not None
    values, body = quantification.form_body(web.form)
    with forms.refusals(nested=("frequency", "loss")) as refused:
        data = QuantificationIn.model_validate(body)
        saved = await service.set_quantification(
            uow=uow, context=web.context, risk_id=risk_id, data=data
        )
    if refused:
        return await risk_pages.risk_detail_page(
            request,
            web,
            session,
            risk_id,
            quant_values=values,
            quant_errors=refused.errors,
            status=422,
        )
    response = redirect(f"/risks/{risk_id}#quantification")
    ale = saved.results.residual.mean if saved.results else None
    set_flash(request, response, f"Quantification saved: expected annual loss {charts.money(ale)}.")
    return response


@router.post("/risks/{risk_id}/quantification/delete")
async def delete_quantification(
    request: Request, risk_id: uuid.UUID, web: FormDep, uow: UowDep
) -> Response:
    web.require("risk:update")
    response = redirect(f"/risks/{risk_id}#quantification")
    try:
        await service.delete_quantification(uow=uow, context=web.context, risk_id=risk_id)
    except NotFound:
        set_flash(request, response, "The risk was not quantified.", level="error")
        return response
    set_flash(request, response, "Quantification removed.")
    return response


# --------------------------------------------------------------------------- the register


async def _portfolio(
    request: Request, web: WebContext, session: SessionDep
) -> tuple[PortfolioOut, service.PortfolioInputs]:
    iterations = int_param(
        request,
        "iterations",
        DEFAULT_PORTFOLIO_ITERATIONS,
        MIN_PORTFOLIO_ITERATIONS,
        MAX_PORTFOLIO_ITERATIONS,
    )
    seed = int_param(request, "seed", DEFAULT_PORTFOLIO_SEED, 0, 2**63 - 1)
    inputs = await service.portfolio_inputs(
        session, tenant_id=web.tenant_id, iterations=iterations, seed=seed
    )
    cache: ResponseCache = request.app.state.response_cache
    result: PortfolioOut = await cached.PORTFOLIO.value(
        cache, tenant_id=web.tenant_id, inputs=inputs
    )
    return result, inputs


def _page_values(
    result: PortfolioOut,
    inputs: service.PortfolioInputs,
    appetite_values: dict[str, str] | None,
    appetite_errors: dict[str, str] | None,
) -> dict[str, Any]:
    appetite = inputs.appetite
    if appetite_values is None:
        appetite_values = {
            "threshold": f"{appetite.threshold:.0f}" if appetite else "1000000",
            "max_probability": f"{appetite.max_probability * 100:g}" if appetite else "5",
            "currency": appetite.currency if appetite else "EUR",
        }
    return {
        "result": result,
        "appetite": appetite,
        "chart": quantification.chart(
            result.curve, (appetite.threshold, appetite.max_probability) if appetite else None
        ),
        "iteration_choices": ITERATION_CHOICES,
        "appetite_values": appetite_values,
        "appetite_errors": appetite_errors or {},
        "query": f"iterations={result.iterations}&seed={result.seed}",
    }


@router.get("/quantitative")
async def quantitative_page(request: Request, web: WebDep, session: SessionDep) -> Response:
    web.require("dashboard:read")
    result, inputs = await _portfolio(request, web, session)
    return render(
        request,
        "quantitative/portfolio.html",
        _page_values(result, inputs, None, None),
        web=web,
        section="quantitative",
    )


@router.post("/quantitative/appetite")
async def save_appetite(
    request: Request, web: FormDep, session: SessionDep, uow: UowDep
) -> Response:
    web.require("tenant:update")
    assert web.form is not None
    values = {n: forms.text(web.form, n) for n in ("threshold", "max_probability", "currency")}
    errors: dict[str, str] = {}
    probability: float | None = None
    try:
        probability = float(values["max_probability"]) / 100
    except ValueError:
        errors["max_probability"] = "Enter a percentage, such as 5."
    if not errors:
        try:
            data = AppetiteIn.model_validate(
                {
                    "threshold": values["threshold"] or None,
                    "max_probability": probability,
                    "currency": values["currency"].upper() or "EUR",
                }
            )
            await service.set_appetite(uow=uow, context=web.context, data=data)
        except ValidationError as error:
            errors = forms.pydantic_errors(error)
            if "max_probability" in errors:
                errors["max_probability"] = "Enter a percentage above 0 and below 100."
    if errors:
        result, inputs = await _portfolio(request, web, session)
        return render(
            request,
            "quantitative/portfolio.html",
            _page_values(result, inputs, values, errors),
            web=web,
            section="quantitative",
            status=422,
        )
    return flash_redirect(request, "/quantitative", "Loss appetite saved.")


@router.get("/quantitative/export")
async def export_portfolio(request: Request, web: WebDep, session: SessionDep) -> Response:
    web.require("dashboard:read")
    fmt = "pdf" if request.query_params.get("format") == "pdf" else "xlsx"
    result, inputs = await _portfolio(request, web, session)
    now = datetime.now(UTC)
    render_file = export.portfolio_pdf if fmt == "pdf" else export.portfolio_xlsx
    content = await asyncio.to_thread(
        render_file, result, inputs, tenant=web.tenant_name, generated_at=now
    )
    name = f"quantitative-{now.strftime('%Y%m%d-%H%M')}.{fmt}"
    return Response(
        content=content,
        media_type=export.PDF_TYPE if fmt == "pdf" else export.XLSX_TYPE,
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )
