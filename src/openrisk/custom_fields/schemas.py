"""Custom field definitions (typed: text, number, date, boolean, choice)."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Self

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from openrisk.risks.text import NoNul

NAME_PATTERN = r"^[a-z][a-z0-9_]{0,39}$"
MAX_OPTIONS = 50

OptionText = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100), NoNul
]
Label = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100), NoNul
]


class FieldType(StrEnum):
    text = "text"
    number = "number"
    date = "date"
    boolean = "boolean"
    choice = "choice"


def _check_options(field_type: FieldType | None, options: list[str] | None) -> None:
    if options is not None and len(set(options)) != len(options):
        raise ValueError("options must be unique")
    if field_type is FieldType.choice and not options:
        raise ValueError("a choice field needs at least one option")
    if field_type is not None and field_type is not FieldType.choice and options:
        raise ValueError("only choice fields have options")


class CustomFieldCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Annotated[
        str, Field(pattern=NAME_PATTERN, description="Key in risks' custom_fields"), NoNul
    ]
    label: Label
    type: FieldType
    required: bool = False
    options: Annotated[list[OptionText], Field(max_length=MAX_OPTIONS)] = []
    description: Annotated[str, Field(max_length=500), NoNul] = ""

    @model_validator(mode="after")
    def _options_match_type(self) -> Self:
        _check_options(self.type, self.options)
        return self


class CustomFieldUpdate(BaseModel):
    """Name and type are immutable (risks already hold values of that type)."""

    model_config = ConfigDict(extra="forbid")

    label: Label | None = None
    required: bool | None = None
    options: Annotated[list[OptionText], Field(max_length=MAX_OPTIONS)] | None = None
    description: Annotated[str, Field(max_length=500), NoNul] | None = None

    @model_validator(mode="after")
    def _unique_options(self) -> Self:
        _check_options(None, self.options)
        return self


class CustomFieldOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    name: str
    label: str
    type: FieldType
    required: bool
    options: list[str]
    description: str
    created_at: datetime
    updated_at: datetime
