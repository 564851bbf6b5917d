"""The quantification panel of a risk page: its inputs as form values, its results and the
loss exceedance curve (drawn server-side); shared by the risk pages and the quantitative
pages."""

from __future__ import annotations

import uuid
from typing import Any

from starlette.datastructures import FormData

from openrisk.core.uow import UnitOfWork
from openrisk.quantification import service
from openrisk.quantification.schemas import (
    DEFAULT_CURRENCY,
    ExceedanceCurveOut,
    QuantificationIn,
)
from openrisk.web import charts, forms
from openrisk.web.context import WebContext

FREQUENCY = ("min", "most_likely", "max")
INTERVAL = ("low", "high")
PERT = ("min", "most_likely", "max")


def chart(
    curve: ExceedanceCurveOut | None, appetite: tuple[float, float] | None = None
) -> charts.ExceedanceChart | None:
    if curve is None:
        return None
    return charts.exceedance_chart(
        curve.thresholds, curve.inherent, curve.residual, appetite=appetite
    )


def form_values(inputs: QuantificationIn | None) -> dict[str, str]:
    """The form's fields (``frequency.min``, ``loss.low``, ``loss.form``…) of stored inputs."""
    values = {"loss.form": "interval", "loss.currency": DEFAULT_CURRENCY}
    if inputs is None:
        return values
    for name in FREQUENCY:
        values[f"frequency.{name}"] = _number(getattr(inputs.frequency, name))
    values["loss.form"] = inputs.loss.kind
    values["loss.currency"] = inputs.loss.currency
    for name in (*INTERVAL, *PERT):
        value = getattr(inputs.loss, name)
        if value is not None:
            values[f"loss.{name}"] = _number(value)
    return values


def _number(value: float) -> str:
    return f"{value:.0f}" if value == int(value) else f"{value:g}"


def form_body(form: FormData) -> tuple[dict[str, str], dict[str, Any]]:
    """(the values as typed, the API body): only the chosen loss form's fields are sent."""
    values = {
        name: forms.text(form, name)
        for name in (
            *(f"frequency.{n}" for n in FREQUENCY),
            *(f"loss.{n}" for n in (*INTERVAL, *PERT)),
            "loss.form",
            "loss.currency",
        )
    }
    kind = "pert" if values["loss.form"] == "pert" else "interval"
    values["loss.form"] = kind
    loss: dict[str, Any] = {"currency": values["loss.currency"].upper() or DEFAULT_CURRENCY}
    for name in PERT if kind == "pert" else INTERVAL:
        loss[name] = values[f"loss.{name}"] or None
    body = {
        "frequency": {n: values[f"frequency.{n}"] or None for n in FREQUENCY},
        "loss": loss,
    }
    return values, body


async def panel(
    uow: UnitOfWork,
    web: WebContext,
    risk_id: uuid.UUID,
    *,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Template values of the risk page's quantification panel."""
    found = await service.get_quantification(uow=uow, tenant_id=web.tenant_id, risk_id=risk_id)
    appetite = await service.get_appetite(uow.session, tenant_id=web.tenant_id)
    results = found.results
    return {
        "quant": found,
        "quant_chart": chart(
            results.curve if results else None,
            (appetite.threshold, appetite.max_probability) if appetite else None,
        ),
        "quant_values": values if values is not None else form_values(found.quantification),
        "quant_errors": errors or {},
    }
