"""Request and response bodies of the reports API."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class ReportKind(StrEnum):
    register = "register"
    executive = "executive"


class ReportFormat(StrEnum):
    csv = "csv"
    xlsx = "xlsx"
    pdf = "pdf"


class ReportCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: ReportKind = Field(
        description="register: every live risk; executive: score, severities, heatmap, top "
        "risks, overdue mitigations"
    )
    format: ReportFormat


class ReportOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    kind: str
    format: str
    filename: str
    content_type: str
    size_bytes: int
    summary: dict[str, Any] = Field(description="The figures the report was generated from")
    created_by: uuid.UUID | None
    created_at: datetime
    download_url: str
