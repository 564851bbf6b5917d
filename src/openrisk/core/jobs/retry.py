"""Retry timing for tasks: tenacity's wait strategies, read as "seconds before attempt n+1"."""

from __future__ import annotations

from datetime import timedelta

import tenacity
from procrastinate.retry import RetryDecision

from openrisk.core.db.base import utcnow


def wait_seconds(wait: tenacity.wait.wait_base, attempt: int) -> float:
    """How long ``wait`` (e.g. ``tenacity.wait_exponential(...)``) waits after attempt
    ``attempt`` (1, 2, ...) failed."""
    state = tenacity.RetryCallState(tenacity.AsyncRetrying(), None, (), {})
    state.attempt_number = attempt
    return float(wait(state))


def retry_in(seconds: float) -> RetryDecision:
    """A procrastinate retry due in ``seconds`` (fractions too)."""
    return RetryDecision(retry_at=utcnow() + timedelta(seconds=seconds))
