from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from openrisk.risks.text import NoNul

ViewName = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=80), NoNul
]


class SavedViewCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: ViewName
    query: Annotated[str, Field(max_length=2000, description="The register's query string"), NoNul]


class SavedViewOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    name: str
    query: str
    created_at: datetime
