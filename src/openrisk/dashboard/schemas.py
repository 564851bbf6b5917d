from __future__ import annotations

from datetime import date
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from openrisk.risks.schemas import RiskOut


class Period(StrEnum):
    d7 = "7d"
    d30 = "30d"
    d90 = "90d"
    all = "all"


PERIOD_DAYS = {Period.d7: 7, Period.d30: 30, Period.d90: 90, Period.all: None}


class SeverityCounts(BaseModel):
    """Live risks per band of the tenant's risk model (the default bands always present)."""

    model_config = ConfigDict(extra="allow")

    CRITICAL: int = 0
    HIGH: int = 0
    MEDIUM: int = 0
    LOW: int = 0


class StatusCounts(BaseModel):
    DRAFT: int = 0
    ACTIVE: int = 0
    MITIGATED: int = 0
    ACCEPTED: int = 0
    CLOSED: int = 0


class MitigationStats(BaseModel):
    total: int
    planned: int
    in_progress: int
    done: int
    cancelled: int
    overdue: int
    completion_rate: float = Field(description="Done / (total − cancelled), in percent")


class AppetiteCounts(BaseModel):
    current: int = Field(description="Live risks whose score is above the appetite")
    residual: int = Field(description="Live risks whose residual score is above the appetite")


class ReviewCounts(BaseModel):
    overdue: int = Field(description="Next review date before today")
    due_soon: int = Field(description="Next review due within 14 days")


class AcceptanceCounts(BaseModel):
    submitted: int = Field(description="Requests waiting for an approver")
    expiring_30d: int = Field(description="Approved acceptances ending within 30 days")
    expired: int = Field(
        description="Approved acceptances past their end, or that expired in the last 30 days"
    )


class Stats(BaseModel):
    period: Period
    total_risks: int
    mean_score: float
    global_risk_score: int = Field(description="max(0, 100 − floor(mean score × 4))")
    high_risks: int = Field(
        description="Risks in the bands that start above the appetite (by default HIGH and "
        "CRITICAL)"
    )
    mitigated_risks: int
    by_severity: SeverityCounts
    by_status: StatusCounts
    mitigations: MitigationStats
    above_appetite: AppetiteCounts
    reviews: ReviewCounts
    acceptances: AcceptanceCounts = Field(description="Acceptances of the counted risks")


class TimelinePoint(BaseModel):
    date: date
    total: int = Field(description="Live risks at the end of the day")
    mean_score: float = Field(description="Their mean score (0 without risks)")
    mean_residual_score: float = Field(
        description="Their mean residual score: after the open mitigations' reductions"
    )
    created: int
    mitigated: int = Field(description="Risks that became MITIGATED that day")


class Timeline(BaseModel):
    points: list[TimelinePoint]


class TopRisks(BaseModel):
    items: list[RiskOut]
