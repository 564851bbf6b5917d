"""Bodies of ``/risk-model``: the tenant's risk model and the re-mapping a change causes."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer, StringConstraints

from openrisk.quantification.schemas import AppetiteIn
from openrisk.risks.scoring import Criticality
from openrisk.risks.text import NoNul

MIN_LEVELS, MAX_LEVELS = 3, 10
MAX_BANDS = 10

LevelValue = Annotated[int, Field(ge=1, le=MAX_LEVELS)]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64), NoNul]
BandName = Annotated[
    str,
    StringConstraints(pattern=r"^[A-Z][A-Z0-9_]{0,7}$"),
    Field(description="Upper case, up to 8 characters, e.g. CRITICAL"),
]
AsNumber = PlainSerializer(float, return_type=float, when_used="json")
Score = Annotated[Decimal, Field(ge=0, le=Decimal("999.99"), decimal_places=2), AsNumber]
Factor = Annotated[Decimal, Field(gt=0, le=Decimal("9.99"), decimal_places=2), AsNumber]
Color = Annotated[str, StringConstraints(pattern=r"^#[0-9a-fA-F]{6}$")]


class Level(BaseModel):
    model_config = ConfigDict(extra="forbid")

    value: LevelValue = Field(description="The level's number: 1..N, in order")
    name: Name
    description: Annotated[str, Field(max_length=500), NoNul] = ""


class Band(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: BandName
    min_score: Score = Field(description="The lowest score of the band; the first band's is 0")
    color: Color = "#9e9e9e"


class AcceptanceRules(BaseModel):
    model_config = ConfigDict(extra="forbid")

    max_days: Annotated[int, Field(ge=1, le=3650)] = Field(
        365, description="An acceptance expires at most this many days after its approval"
    )
    approver_min_level: Annotated[int, Field(ge=0, le=100)] = Field(
        6, description="Above appetite, the approver's role level must be at least this"
    )


class RiskModelFields(BaseModel):
    model_config = ConfigDict(extra="forbid")

    impact_levels: Annotated[list[Level], Field(min_length=MIN_LEVELS, max_length=MAX_LEVELS)]
    probability_levels: Annotated[list[Level], Field(min_length=MIN_LEVELS, max_length=MAX_LEVELS)]
    bands: Annotated[list[Band], Field(min_length=1, max_length=MAX_BANDS)] = Field(
        description="In ascending min_score; a risk's severity is the last band it reaches"
    )
    asset_factors: dict[Criticality, Factor] = Field(
        default_factory=dict,
        description="Score multiplier per linked asset criticality (mean over the assets); "
        "criticalities left out keep their default (LOW 0.8, MEDIUM 1.0, HIGH 1.25, "
        "CRITICAL 1.5)",
    )
    appetite_score: Score = Field(
        Decimal("14.99"), description="Risks scoring above it are above appetite"
    )
    review_days: dict[BandName, Annotated[int, Field(ge=1, le=3650)]] = Field(
        default_factory=dict,
        description="Days between reviews per band; bands left out get 365",
    )
    acceptance: AcceptanceRules = AcceptanceRules()


class LevelMapping(BaseModel):
    """Where the risks on levels an axis loses go: ``{"5": 4}`` moves level 5 to 4."""

    model_config = ConfigDict(extra="forbid")

    impact: dict[LevelValue, LevelValue] = {}
    probability: dict[LevelValue, LevelValue] = {}


class RiskModelUpdate(RiskModelFields):
    """The whole model; ``version`` is the one you read (409 when it changed meanwhile)."""

    version: Annotated[int, Field(ge=1, le=2**31 - 1)]
    level_mapping: LevelMapping = LevelMapping()
    loss_appetite: AppetiteIn | None = Field(
        None,
        description='"P(annual loss > threshold) ≤ max_probability"; left out: unchanged, '
        "null: removed",
    )


class BandCount(BaseModel):
    name: str
    before: int
    after: int


class Transition(BaseModel):
    before: str = Field(serialization_alias="from")
    after: str = Field(serialization_alias="to")
    count: int


class Remapping(BaseModel):
    """What applying a model does to the tenant's live risks (equal in a dry run)."""

    risks: int = Field(description="Live risks of the tenant")
    rescored: int = Field(description="Risks whose levels, score or severity change")
    severity_changed: int
    by_band: list[BandCount]
    transitions: list[Transition]


class RiskModelOut(RiskModelFields):
    model_config = ConfigDict(extra="forbid")

    version: int
    updated_at: datetime | None = None
    loss_appetite: AppetiteIn | None = Field(
        None, description="The loss appetite the register's annual loss is judged against"
    )
    dry_run: bool | None = None
    remapping: Remapping | None = None


class RiskModelJobOut(BaseModel):
    """A model change applied by a job: ``queued``, ``running``, ``done`` (``version`` is the
    model version it made, ``remapping`` what it did) or ``failed`` (``error``)."""

    id: uuid.UUID
    status: Literal["queued", "running", "done", "failed"]
    status_url: str
    version: int | None = None
    remapping: Remapping | None = None
    error: str | None = None
    created_at: datetime
    finished_at: datetime | None = None
