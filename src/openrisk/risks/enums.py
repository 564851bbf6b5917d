"""Closed vocabularies of the register."""

from __future__ import annotations

from enum import StrEnum

from openrisk.risks.scoring import Criticality, Severity

__all__ = [
    "Criticality",
    "HistoryAction",
    "RiskSource",
    "RiskStatus",
    "Severity",
    "SortField",
    "SortOrder",
    "Treatment",
]


class RiskStatus(StrEnum):
    DRAFT = "DRAFT"
    ACTIVE = "ACTIVE"
    MITIGATED = "MITIGATED"
    ACCEPTED = "ACCEPTED"
    CLOSED = "CLOSED"


# Risks in these statuses are dealt with: "top risks" (dashboard, executive report) leave them out.
SETTLED_STATUSES = (RiskStatus.MITIGATED.value, RiskStatus.CLOSED.value)


class Treatment(StrEnum):
    MITIGATE = "MITIGATE"
    ACCEPT = "ACCEPT"
    TRANSFER = "TRANSFER"
    AVOID = "AVOID"


class RiskSource(StrEnum):
    MANUAL = "MANUAL"
    IMPORT = "IMPORT"
    CONNECTOR = "CONNECTOR"


class HistoryAction(StrEnum):
    CREATE = "CREATE"
    UPDATE = "UPDATE"
    STATUS_CHANGE = "STATUS_CHANGE"
    SCORE_CHANGE = "SCORE_CHANGE"
    DELETE = "DELETE"
    RESTORE = "RESTORE"  # back from the bin: counts again, like a creation


class SortField(StrEnum):
    SCORE = "score"
    TITLE = "title"
    CREATED_AT = "created_at"
    UPDATED_AT = "updated_at"
    IMPACT = "impact"
    PROBABILITY = "probability"
    STATUS = "status"
    SEVERITY = "severity"
    RESIDUAL_SCORE = "residual_score"
    NEXT_REVIEW_DATE = "next_review_date"


class SortOrder(StrEnum):
    ASC = "asc"
    DESC = "desc"
