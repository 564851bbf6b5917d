from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from openrisk.risks.scoring import Criticality
from openrisk.risks.text import NoNul

Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200), NoNul]
AssetType = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=40), NoNul
]
Owner = Annotated[str, StringConstraints(strip_whitespace=True, max_length=200), NoNul]
ExternalId = Annotated[str, StringConstraints(strip_whitespace=True, max_length=255), NoNul]
Description = Annotated[str, Field(max_length=10_000), NoNul]


class AssetSort(StrEnum):
    name = "name"
    criticality = "criticality"
    created_at = "created_at"


class AssetCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name
    type: AssetType = Field(description="e.g. server, application, database, data, vendor")
    criticality: Criticality = Criticality.MEDIUM
    owner: Owner | None = None
    external_id: ExternalId | None = None
    description: Description = ""


class AssetUpdate(BaseModel):
    """Changing ``criticality`` rescores every linked risk."""

    model_config = ConfigDict(extra="forbid")

    name: Name | None = None
    type: AssetType | None = None
    criticality: Criticality | None = None
    owner: Owner | None = None
    external_id: ExternalId | None = None
    description: Description | None = None


NOT_NULLABLE = frozenset({"name", "type", "criticality", "description"})


class AssetOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    name: str
    type: str
    criticality: Criticality
    owner: str | None
    external_id: str | None
    description: str
    risk_count: int = Field(0, description="Live risks linked to this asset")
    created_at: datetime
    updated_at: datetime
