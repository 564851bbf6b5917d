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


class Stats(BaseModel):
    period: Period
    total_risks: int
    mean_score: float
    global_risk_score: int = Field(description="max(0, 100 − floor(mean score × 4))")
    high_risks: int = Field(description="HIGH and CRITICAL risks")
    mitigated_risks: int
    by_severity: SeverityCounts
    by_status: StatusCounts
    mitigations: MitigationStats


class TimelinePoint(BaseModel):
    date: date
    total: int = Field(description="Live risks at the end of the day")
    mean_score: float = Field(description="Their mean score (0 without risks)")
    created: int
    mitigated: int = Field(description="Risks that became MITIGATED that day")


class Timeline(BaseModel):
    points: list[TimelinePoint]


class TopRisks(BaseModel):
    items: list[RiskOut]
