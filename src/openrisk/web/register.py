"""The risk register's query string, read once for the list, its exports and its bulk actions:
filters (validated like the API's: a bad value is a form error, not silently ignored), sort,
and the columns a person chose to see."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.datastructures import QueryParams

from openrisk.methodology import clock
from openrisk.risks.enums import RiskStatus, Severity, SortField, SortOrder
from openrisk.risks.queries import RiskFilters
from openrisk.web import forms

STATUSES = [s.value for s in RiskStatus]
SEVERITIES = [s.value for s in Severity]
SORTS = [s.value for s in SortField]
FILTER_KEYS = (
    "q",
    "status",
    "severity",
    "tag",
    "owner_id",
    "asset_id",
    "min_score",
    "max_score",
    "impact",
    "probability",
    "above_appetite",
    "residual_above_appetite",
    "review",
)
REVIEWS = ("overdue", "due_soon")
BOOLEANS = ("true", "false")


@dataclass(frozen=True)
class Column:
    key: str
    label: str
    sort: str | None = None  # the SortField it sorts by, if any


COLUMNS: tuple[Column, ...] = (
    Column("score", "Score", "score"),
    Column("severity", "Severity"),
    Column("impact", "Impact", "impact"),
    Column("probability", "Probability", "probability"),
    Column("status", "Status", "status"),
    Column("treatment", "Treatment"),
    Column("owner", "Owner"),
    Column("tags", "Tags"),
    Column("review_date", "Review date"),
    Column("residual", "Residual", "residual_score"),
    Column("next_review", "Next review", "next_review_date"),
    Column("created", "Created", "created_at"),
    Column("updated", "Updated", "updated_at"),
)
DEFAULT_COLUMNS = (
    "score",
    "severity",
    "impact",
    "probability",
    "status",
    "owner",
    "tags",
    "updated",
)
COLUMN_KEYS = tuple(c.key for c in COLUMNS)
COLUMNS_COOKIE = "openrisk_register_columns"


class _Checked(BaseModel):
    """The typed filters, checked with the API's bounds (0..100 scores, ids)."""

    model_config = ConfigDict(extra="ignore")

    q: str = Field(default="", max_length=200)
    tag: str = Field(default="", max_length=64)
    min_score: Decimal | None = Field(default=None, ge=0, le=100)
    max_score: Decimal | None = Field(default=None, ge=0, le=100)
    owner_id: uuid.UUID | None = None
    asset_id: uuid.UUID | None = None


@dataclass(frozen=True)
class RegisterQuery:
    filters: RiskFilters
    sort: SortField
    order: SortOrder
    columns: tuple[str, ...]
    values: dict[str, str]  # what was typed, to show it again
    errors: dict[str, str] = field(default_factory=dict)
    columns_chosen: bool = False  # the query named its columns (remember them)

    @property
    def filtered(self) -> bool:
        """Whether any filter narrows the register (for an honest empty state)."""
        return self.filters != RiskFilters()

    def filter_params(self) -> list[tuple[str, str]]:
        """The filters and sort as query parameters (exports, links back)."""
        items = [(k, v) for k, v in self.values.items() if v]
        items += [("status", s) for s in self.filters.status]
        items += [("severity", s) for s in self.filters.severity]
        items += [("impact", str(i)) for i in self.filters.impact]
        items += [("probability", str(p)) for p in self.filters.probability]
        for name in ("above_appetite", "residual_above_appetite"):
            flag = getattr(self.filters, name)
            if flag is not None:
                items.append((name, "true" if flag else "false"))
        if self.filters.review:
            items.append(("review", self.filters.review))
        return [*items, ("sort", self.sort.value), ("order", self.order.value)]


def _choices(params: QueryParams, name: str, allowed: Sequence[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(v for v in params.getlist(name) if v in allowed))


def _columns(params: QueryParams, cookies: Mapping[str, str]) -> tuple[tuple[str, ...], bool]:
    chosen = params.getlist("col")
    if chosen:
        return tuple(k for k in COLUMN_KEYS if k in chosen), True
    remembered = [k for k in cookies.get(COLUMNS_COOKIE, "").split(".") if k in COLUMN_KEYS]
    return (tuple(remembered) if remembered else DEFAULT_COLUMNS), False


def _flag(params: QueryParams, name: str, errors: dict[str, str]) -> bool | None:
    raw = (params.get(name) or "").strip()
    if raw and raw not in BOOLEANS:
        errors[name] = "Choose yes or no."
    return None if raw not in BOOLEANS else raw == "true"


def parse(
    params: QueryParams,
    cookies: Mapping[str, str] | None = None,
    *,
    bands: Sequence[str] = SEVERITIES,
    impact_levels: int = 5,
    probability_levels: int = 5,
) -> RegisterQuery:
    """The register's query for a tenant whose model has ``bands`` and that many levels."""
    raw = {
        name: (params.get(name) or "").strip()
        for name in ("q", "tag", "min_score", "max_score", "owner_id", "asset_id")
    }
    errors: dict[str, str] = {}
    try:
        checked = _Checked.model_validate({k: v for k, v in raw.items() if v})
    except ValidationError as error:
        errors = forms.pydantic_errors(error)
        checked = _Checked.model_validate({k: v for k, v in raw.items() if v and k not in errors})
    if (
        checked.min_score is not None
        and checked.max_score is not None
        and checked.min_score > checked.max_score
    ):
        errors["max_score"] = "Enter a maximum at least as high as the minimum."
    levels = {
        "impact": tuple(str(v) for v in range(1, impact_levels + 1)),
        "probability": tuple(str(v) for v in range(1, probability_levels + 1)),
    }
    for name, allowed in levels.items():
        if any(v not in allowed for v in params.getlist(name)):
            errors[name] = f"Choose levels from 1 to {len(allowed)}."
    review = (params.get("review") or "").strip()
    if review and review not in REVIEWS:
        errors["review"] = "Choose overdue or due soon."
    above = _flag(params, "above_appetite", errors)
    residual_above = _flag(params, "residual_above_appetite", errors)
    filters = RiskFilters(
        q=checked.q or None,
        status=_choices(params, "status", STATUSES),
        severity=_choices(params, "severity", [*bands, *(s for s in SEVERITIES if s not in bands)]),
        min_score=checked.min_score,
        max_score=checked.max_score,
        tags=(checked.tag.lower(),) if checked.tag else (),
        owner_id=checked.owner_id,
        asset_id=checked.asset_id,
        impact=tuple(sorted(int(v) for v in _choices(params, "impact", levels["impact"]))),
        probability=tuple(
            sorted(int(v) for v in _choices(params, "probability", levels["probability"]))
        ),
        above_appetite=above,
        residual_above_appetite=residual_above,
        review=review if review in REVIEWS else None,
        review_today=clock.today() if review in REVIEWS else None,
    )
    sort = params.get("sort", "")
    order = params.get("order", "")
    columns, chosen = _columns(params, cookies or {})
    return RegisterQuery(
        filters=filters,
        sort=SortField(sort) if sort in SORTS else SortField.CREATED_AT,
        order=SortOrder(order) if order in ("asc", "desc") else SortOrder.DESC,
        columns=columns,
        values=raw,
        errors=errors,
        columns_chosen=chosen,
    )
