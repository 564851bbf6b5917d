"""Request and response bodies of the risk register."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
)

from openrisk.core.inputs import FreeJson
from openrisk.risks.enums import HistoryAction, RiskSource, RiskStatus, Treatment
from openrisk.risks.text import NoNul

MAX_TAGS = 30
MAX_ASSETS = 100
MAX_BULK = 500

Title = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=255), NoNul
]
Level = Annotated[
    int,
    Field(ge=1, le=10, description="1 (lowest) to the top level of the tenant's risk model"),
]
Label = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64), NoNul]
Description = Annotated[str, Field(max_length=20_000), NoNul]
ExternalId = Annotated[str, StringConstraints(strip_whitespace=True, max_length=255), NoNul]
CustomValues = Annotated[
    dict[Annotated[str, StringConstraints(max_length=64), NoNul], Any],
    Field(max_length=100, description="Values of the tenant's custom fields, by name"),
    FreeJson,
]


class Levels(BaseModel):
    """Impact and probability of the inherent or target level of a risk."""

    model_config = ConfigDict(extra="forbid")

    impact: Level
    probability: Level


class LevelOut(BaseModel):
    impact: int
    probability: int
    score: float
    severity: str


def _unique(values: list[str], *, lower: bool) -> list[str]:
    return list(dict.fromkeys([v.lower() for v in values] if lower else values))


class _RiskFields(BaseModel):
    @field_validator("tags", check_fields=False)
    @classmethod
    def _normalise_tags(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else _unique(value, lower=True)

    @field_validator("frameworks", check_fields=False)
    @classmethod
    def _normalise_frameworks(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else _unique(value, lower=False)

    @field_validator("asset_ids", check_fields=False)
    @classmethod
    def _unique_assets(cls, value: list[uuid.UUID] | None) -> list[uuid.UUID] | None:
        return None if value is None else list(dict.fromkeys(value))


def _empty(kind: type[list[Any]] | type[dict[str, Any]]) -> Any:
    """An empty list or dict made fresh for each model, still documented as its default."""
    return Field(default_factory=kind, json_schema_extra={"default": kind()})


class RiskCreate(_RiskFields):
    model_config = ConfigDict(extra="forbid")

    title: Title
    description: Description = ""
    impact: Level
    probability: Level
    status: RiskStatus = RiskStatus.DRAFT
    treatment: Treatment = Treatment.MITIGATE
    owner_id: uuid.UUID | None = Field(
        default=None, description="A member of the tenant; defaults to the caller"
    )
    # made for each risk: a literal [] or {} default is deep-copied for each (3.5 µs a row)
    tags: Annotated[list[Label], Field(max_length=MAX_TAGS)] = _empty(list)
    frameworks: Annotated[list[Label], Field(max_length=MAX_TAGS)] = _empty(list)
    asset_ids: Annotated[list[uuid.UUID], Field(max_length=MAX_ASSETS)] = _empty(list)
    custom_fields: CustomValues = _empty(dict)
    review_date: date | None = None
    source: RiskSource = RiskSource.MANUAL
    external_id: ExternalId | None = None
    inherent: Levels | None = Field(
        default=None, description="Without controls; defaults to impact and probability"
    )
    target: Levels | None = Field(default=None, description="The level the owner aims at")


class RiskUpdate(_RiskFields):
    """Partial update; ``version`` (or an ``If-Match`` header) makes it conditional (412)."""

    model_config = ConfigDict(extra="forbid")

    title: Title | None = None
    description: Description | None = None
    impact: Level | None = None
    probability: Level | None = None
    status: RiskStatus | None = None
    treatment: Treatment | None = None
    owner_id: uuid.UUID | None = None
    tags: Annotated[list[Label], Field(max_length=MAX_TAGS)] | None = None
    frameworks: Annotated[list[Label], Field(max_length=MAX_TAGS)] | None = None
    asset_ids: Annotated[list[uuid.UUID], Field(max_length=MAX_ASSETS)] | None = None
    custom_fields: CustomValues | None = Field(
        default=None, description="Merged into the current values; null removes a value"
    )
    review_date: date | None = None
    external_id: ExternalId | None = None
    inherent: Levels | None = None
    target: Levels | None = Field(default=None, description="null removes the target")
    version: Annotated[int, Field(ge=1, le=2**31 - 1)] | None = None


# fields that may not be set to null in a PATCH
NOT_NULLABLE = frozenset(
    {"title", "impact", "probability", "status", "treatment", "owner_id", "tags", "frameworks"}
    | {"asset_ids", "custom_fields", "description", "inherent"}
)


class QuantificationSummary(BaseModel):
    """Expected annual loss of the risk's last simulation (``GET /risks/{id}/quantification``
    has the rest, and simulates again when the estimate or the mitigations changed since)."""

    ale_inherent: float = Field(description="Mean annual loss without the mitigations")
    ale_residual: float = Field(description="Mean annual loss after the open mitigations")
    currency: str
    computed_at: datetime


class RiskOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    title: str
    description: str
    impact: int
    probability: int
    score: float
    severity: str = Field(description="The band of the tenant's risk model the score is in")
    status: RiskStatus
    treatment: Treatment
    owner_id: uuid.UUID | None
    tags: list[str]
    frameworks: list[str]
    asset_ids: list[uuid.UUID]
    custom_fields: dict[str, Any]
    review_date: date | None
    acceptance_expires_on: date | None = Field(
        description="While ACCEPTED: the last day of its approved acceptance"
    )
    last_reviewed_on: date | None
    next_review_date: date = Field(
        description="Last review (or creation) + the band's review days, or review_date if earlier"
    )
    review_status: Literal["ok", "due_soon", "overdue"] = Field(
        description="due_soon: within 14 days"
    )
    version: int
    source: RiskSource
    external_id: str | None
    created_by: uuid.UUID | None
    created_at: datetime
    updated_at: datetime
    inherent: LevelOut = Field(description="Without controls")
    residual: LevelOut = Field(
        description="Current less the reductions of the planned and in-progress mitigations"
    )
    target: LevelOut | None = Field(description="The level the owner aims at")
    within_appetite: bool = Field(description="The current score is within the appetite")
    residual_within_appetite: bool
    quantification: QuantificationSummary | None = Field(
        None, description="The last simulation of the risk's loss estimate; null without one"
    )

    @field_validator("score", mode="before")
    @classmethod
    def _score_number(cls, value: Any) -> float:
        return float(value)


class RiskSearchHit(RiskOut):
    rank: float = Field(description="Relevance; higher is better")


class HistoryOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    risk_id: uuid.UUID
    action: HistoryAction
    impact: int
    probability: int
    score: float
    severity: str = Field(description="The band of the tenant's risk model the score is in")
    status: RiskStatus
    changed_by: uuid.UUID | None
    changes: dict[str, Any] | None
    created_at: datetime

    @field_validator("score", mode="before")
    @classmethod
    def _score_number(cls, value: Any) -> float:
        return float(value)


class DeletedRiskOut(BaseModel):
    """A risk in the bin: deleted, restorable with ``POST /risks/{id}/restore``."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    title: str
    severity: str
    score: float
    status: RiskStatus
    owner_id: uuid.UUID | None
    deleted_at: datetime
    deleted_by: uuid.UUID | None = Field(description="Who deleted it (null if unknown)")
    mitigations: int = Field(description="Mitigations deleted with it; a restore brings them back")

    @field_validator("score", mode="before")
    @classmethod
    def _score_number(cls, value: Any) -> float:
        return float(value)


class MatrixCell(BaseModel):
    impact: int
    probability: int
    count: int
    band: str = Field(description="The band of impact × probability in the tenant's model")
    color: str = Field(description="That band's colour")


class MatrixLevel(BaseModel):
    value: int
    name: str


class Matrix(BaseModel):
    basis: Literal["inherent", "current", "residual", "target"] = Field(
        description="Which of the risks' four levels the cells count"
    )
    impact_levels: list[MatrixLevel]
    probability_levels: list[MatrixLevel]
    cells: list[MatrixCell] = Field(
        description="Every cell of the tenant's impact × probability grid, impact-major"
    )
    total: int


class ExportFormat(StrEnum):
    csv = "csv"
    json = "json"
    xlsx = "xlsx"


class BulkAction(StrEnum):
    update = "update"
    delete = "delete"
    assign = "assign"


class BulkChanges(BaseModel):
    model_config = ConfigDict(extra="forbid")

    impact: Level | None = None
    probability: Level | None = None
    status: RiskStatus | None = None
    treatment: Treatment | None = None
    review_date: date | None = None
    add_tags: Annotated[list[Label], Field(max_length=MAX_TAGS)] = []
    remove_tags: Annotated[list[Label], Field(max_length=MAX_TAGS)] = []


class BulkRequest(BaseModel):
    """``update`` applies ``changes``, ``assign`` sets ``owner_id``, ``delete`` soft-deletes."""

    model_config = ConfigDict(extra="forbid")

    action: BulkAction
    ids: Annotated[list[uuid.UUID], Field(min_length=1, max_length=MAX_BULK)]
    changes: BulkChanges | None = None
    owner_id: uuid.UUID | None = None


class BulkItem(BaseModel):
    index: int
    id: uuid.UUID
    status: Literal["ok", "error"]
    code: int = Field(description="HTTP-like status of this row: 200, 403, 404, 412, 422")
    error: str | None = None


class BulkResult(BaseModel):
    action: BulkAction
    succeeded: int
    failed: int
    results: list[BulkItem]


class ImportRowError(BaseModel):
    row: int = Field(description="Row number in the file (the header is row 1)")
    field: str
    message: str


class ImportResult(BaseModel):
    dry_run: bool
    committed: bool
    total_rows: int
    created: int
    updated: int
    failed: int
    errors: list[ImportRowError]
    ids: list[uuid.UUID] = Field(description="Created or updated risks (empty on a dry run)")
