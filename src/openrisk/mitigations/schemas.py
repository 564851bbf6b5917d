from __future__ import annotations

import uuid
from datetime import date, datetime
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from openrisk.risks.text import NoNul

Title = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=255), NoNul
]
Description = Annotated[str, Field(max_length=20_000), NoNul]
Cost = Annotated[int, Field(ge=1, le=3, description="1 low, 2 medium, 3 high")]
Effort = Annotated[int, Field(ge=1, le=3650, description="Estimated effort in days")]
LevelReduction = Annotated[
    int,
    Field(
        ge=0,
        le=9,
        description="Levels it takes off the risk's current level (residual while planned or "
        "in progress; moved into the current level when done)",
    ),
]
Progress = Annotated[int, Field(ge=0, le=100)]
Reduction = Annotated[
    float,
    Field(
        ge=0,
        le=1,
        allow_inf_nan=False,
        description="Share cut from the risk's quantified loss (0 nothing, 1 all)",
    ),
]
AnnualCost = Annotated[
    float,
    Field(ge=0, le=1e12, allow_inf_nan=False, description="What the mitigation costs a year"),
]
MAX_SUBACTIONS = 100


class MitigationStatus(StrEnum):
    PLANNED = "PLANNED"
    IN_PROGRESS = "IN_PROGRESS"
    DONE = "DONE"
    CANCELLED = "CANCELLED"


OPEN_STATUSES = (MitigationStatus.PLANNED.value, MitigationStatus.IN_PROGRESS.value)


class SubActionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: Title
    completed: bool = False


class SubActionUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: Title | None = None
    completed: bool | None = None


class SubActionOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    title: str
    completed: bool
    position: int
    created_at: datetime


class MitigationCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: Title
    description: Description = ""
    assignee_id: uuid.UUID | None = Field(
        default=None, description="A member of the tenant (another person needs mitigation:assign)"
    )
    status: MitigationStatus = MitigationStatus.PLANNED
    progress: Progress | None = Field(
        default=None, description="Only without sub-actions; computed from them otherwise"
    )
    due_date: date | None = None
    cost: Cost = 2
    effort_days: Effort = 1
    frequency_reduction: Reduction = 0.0
    loss_reduction: Reduction = 0.0
    annual_cost: AnnualCost = 0.0
    impact_reduction: LevelReduction = 0
    probability_reduction: LevelReduction = 0
    sub_actions: Annotated[list[SubActionCreate], Field(max_length=MAX_SUBACTIONS)] = []


class MitigationUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: Title | None = None
    description: Description | None = None
    assignee_id: uuid.UUID | None = None
    status: MitigationStatus | None = None
    progress: Progress | None = None
    due_date: date | None = None
    cost: Cost | None = None
    effort_days: Effort | None = None
    frequency_reduction: Reduction | None = None
    loss_reduction: Reduction | None = None
    annual_cost: AnnualCost | None = None
    impact_reduction: LevelReduction | None = None
    probability_reduction: LevelReduction | None = None


NOT_NULLABLE = frozenset(
    {
        "title",
        "description",
        "status",
        "progress",
        "cost",
        "effort_days",
        "frequency_reduction",
        "loss_reduction",
        "annual_cost",
        "impact_reduction",
        "probability_reduction",
    }
)


class MitigationOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    risk_id: uuid.UUID
    title: str
    description: str
    assignee_id: uuid.UUID | None
    status: MitigationStatus
    progress: int
    due_date: date | None
    cost: int
    effort_days: int
    frequency_reduction: float
    loss_reduction: float
    annual_cost: float
    impact_reduction: int
    probability_reduction: int
    overdue: bool
    risk_score: float
    priority: float = Field(description="round(risk score / max(cost + effort_days, 2), 2)")
    sub_actions: list[SubActionOut]
    created_by: uuid.UUID | None
    created_at: datetime
    updated_at: datetime
