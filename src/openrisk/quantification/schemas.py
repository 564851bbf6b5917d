"""What the API takes and answers about quantified risks, the register's annual loss and the
loss appetite. Bounds keep one simulation small: at most ``MAX_EVENTS_PER_YEAR`` events a year
and losses up to ``MAX_LOSS`` spanning at most ``MAX_LOSS_RATIO``."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    StringConstraints,
    model_serializer,
)

MAX_EVENTS_PER_YEAR = 365.0
MAX_LOSS = 1e12
MAX_LOSS_RATIO = 1e6
DEFAULT_CURRENCY = "EUR"

# The stored result of one risk: this many simulated years, this seed (the risk's id keys its
# random streams, so one seed serves every risk).
RISK_ITERATIONS = 100_000
RISK_SEED = 0
# The register's distribution: ``iterations`` is bounded (422 above the maximum).
DEFAULT_PORTFOLIO_ITERATIONS = 100_000
MAX_PORTFOLIO_ITERATIONS = 200_000
MIN_PORTFOLIO_ITERATIONS = 1_000
DEFAULT_PORTFOLIO_SEED = 0

Events = Annotated[float, Field(ge=0, le=MAX_EVENTS_PER_YEAR, allow_inf_nan=False)]
Money = Annotated[float, Field(gt=0, le=MAX_LOSS, allow_inf_nan=False)]
Currency = Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")]
Share = Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)]
AnnualCost = Annotated[float, Field(ge=0, le=MAX_LOSS, allow_inf_nan=False)]


class Frequency(BaseModel):
    """Loss events per year, a three-point (PERT) estimate."""

    model_config = ConfigDict(extra="forbid")

    min: Events
    most_likely: Events
    max: Events


class Loss(BaseModel):
    """The loss of one event: either the 90 % confidence interval ``low``–``high`` (a
    lognormal) or a three-point estimate ``min``/``most_likely``/``max`` (a PERT)."""

    model_config = ConfigDict(extra="forbid")

    low: Money | None = None
    high: Money | None = None
    min: Money | None = None
    most_likely: Money | None = None
    max: Money | None = None
    currency: Currency = DEFAULT_CURRENCY

    @model_serializer(mode="wrap")
    def _given_form_only(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        return {k: v for k, v in handler(self).items() if v is not None}

    @property
    def kind(self) -> Literal["interval", "pert"]:
        return "interval" if self.low is not None or self.high is not None else "pert"


class QuantificationIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    frequency: Frequency
    loss: Loss


def problems(data: QuantificationIn) -> list[tuple[str, str]]:
    """(field, message) for every rule the bounds of each value alone do not cover."""
    found: list[tuple[str, str]] = []
    f = data.frequency
    if f.most_likely < f.min:
        found.append(("frequency.most_likely", "must be at least frequency.min"))
    if f.max < f.most_likely:
        found.append(("frequency.max", "must be at least frequency.most_likely"))
    if f.max <= 0:
        found.append(("frequency.max", "must be greater than 0"))
    loss = data.loss
    interval = {"low": loss.low, "high": loss.high}
    pert = {"min": loss.min, "most_likely": loss.most_likely, "max": loss.max}
    given_interval = [k for k, v in interval.items() if v is not None]
    given_pert = [k for k, v in pert.items() if v is not None]
    if given_interval and given_pert:
        found.append(("loss", "give either low and high, or min, most_likely and max"))
        return found
    if given_interval:
        for name in sorted(set(interval) - set(given_interval)):
            found.append((f"loss.{name}", "is required with a 90 % interval"))
        if loss.low is not None and loss.high is not None:
            if loss.high <= loss.low:
                found.append(("loss.high", "must be greater than loss.low"))
            elif loss.high / loss.low > MAX_LOSS_RATIO:
                found.append(("loss.high", f"may be at most {MAX_LOSS_RATIO:,.0f} × loss.low"))
        return found
    for name in ("min", "most_likely", "max"):
        if pert[name] is None:
            found.append((f"loss.{name}", "is required (or give low and high)"))
    if loss.min is not None and loss.most_likely is not None and loss.most_likely < loss.min:
        found.append(("loss.most_likely", "must be at least loss.min"))
    if loss.most_likely is not None and loss.max is not None and loss.max < loss.most_likely:
        found.append(("loss.max", "must be at least loss.most_likely"))
    return found


class LossSummaryOut(BaseModel):
    """Statistics of the simulated annual loss; ``mean`` is the annualised loss expectancy."""

    mean: float = Field(description="ALE: the mean annual loss")
    median: float
    p90: float
    p95: float
    p99: float
    maximum: float
    p_at_least_one: float = Field(description="Probability of at least one loss in a year")


class ExceedanceCurveOut(BaseModel):
    """P(annual loss > threshold), inherent and residual, on the same thresholds."""

    thresholds: list[float]
    inherent: list[float]
    residual: list[float]


class ControlOut(BaseModel):
    """One mitigation alone against the inherent loss: ROSI = (ALE before − ALE after − annual
    cost) / annual cost, null for a mitigation that costs nothing."""

    mitigation_id: uuid.UUID
    title: str
    status: str
    frequency_reduction: float
    loss_reduction: float
    annual_cost: float
    ale_before: float
    ale_after: float
    rosi: float | None


class RiskResultOut(BaseModel):
    iterations: int
    seed: int
    digest: str
    computed_at: datetime
    inherent: LossSummaryOut
    residual: LossSummaryOut
    curve: ExceedanceCurveOut
    controls: list[ControlOut]


class QuantificationOut(BaseModel):
    """A risk's inputs (null when it is not quantified) and the results for them and its
    mitigations (not cancelled ones) as they are now."""

    risk_id: uuid.UUID
    quantification: QuantificationIn | None
    results: RiskResultOut | None
    updated_at: datetime | None = None


class AppetiteIn(BaseModel):
    """ "P(annual loss > threshold) <= max_probability"."""

    model_config = ConfigDict(extra="forbid")

    threshold: Money
    max_probability: Annotated[float, Field(gt=0, lt=1, allow_inf_nan=False)]
    currency: Currency = DEFAULT_CURRENCY


class AppetiteOut(AppetiteIn):
    updated_at: datetime


class AppetiteState(BaseModel):
    """The tenant's loss appetite, null while none is set."""

    loss_appetite: AppetiteOut | None


class AppetiteVerdictOut(BaseModel):
    threshold: float
    max_probability: float
    currency: str
    probability_inherent: float
    probability_residual: float
    verdict: Literal["within", "above"]


class ContributorOut(BaseModel):
    risk_id: uuid.UUID
    title: str
    ale_inherent: float
    ale_residual: float
    share: float = Field(description="Share of the register's residual ALE")


class PortfolioOut(BaseModel):
    """The register's annual loss: every quantified risk simulated over the same years."""

    iterations: int
    seed: int
    correlation: float
    digest: str
    risk_count: int
    currencies: list[str]
    inherent: LossSummaryOut | None
    residual: LossSummaryOut | None
    var_p95: float | None = Field(description="Residual annual loss exceeded one year in 20")
    var_p99: float | None
    curve: ExceedanceCurveOut | None
    contributors: list[ContributorOut]
    appetite: AppetiteVerdictOut | None


def as_json(model: BaseModel) -> dict[str, Any]:
    return model.model_dump(mode="json", exclude_none=True)
