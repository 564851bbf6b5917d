"""Today's date for the methodology's rules (acceptance expiry, review due dates).

UTC by default; ``set_today`` injects another clock (tests move time without waiting) and
``set_today(None)`` restores the real one.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime

_clock: Callable[[], date] | None = None


def today() -> date:
    return _clock() if _clock is not None else datetime.now(UTC).date()


def set_today(clock: Callable[[], date] | None) -> None:
    global _clock
    _clock = clock
