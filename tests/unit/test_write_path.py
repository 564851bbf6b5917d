"""Routers and web views never commit or publish: every change goes through a service's unit
of work (core/uow.py), which writes its events and invalidations with the change."""

from __future__ import annotations

import re
from pathlib import Path

import openrisk

SRC = Path(openrisk.__file__).parent
ROUTE_MODULES = sorted(
    [*SRC.glob("*/router.py"), *SRC.glob("*/*_router.py"), *SRC.glob("web/views/*.py")]
)
FORBIDDEN = {
    r"\.commit\(": "commits (a service commits through its unit of work)",
    r"\.publish\(": "publishes an event (uow.emit in the service does)",
    r"state\.events\b|\bEventBus\b": "reaches for the event bus",
}


def test_there_are_route_modules_to_check() -> None:
    assert len(ROUTE_MODULES) > 20


def test_routes_and_pages_never_commit_or_publish() -> None:
    found = [
        f"{path.relative_to(SRC)}:{number}: {why}"
        for path in ROUTE_MODULES
        for number, line in enumerate(path.read_text().splitlines(), 1)
        for pattern, why in FORBIDDEN.items()
        if re.search(pattern, line)
    ]
    assert found == []


OPTIONAL_UNIT_OF_WORK = re.compile(
    r"\b(uow|events)\s*:\s*[\w.]+\s*\|\s*None|Optional\[UnitOfWork\]"
)


def test_no_service_takes_an_optional_unit_of_work() -> None:
    """A service called without its unit of work would change data and skip its events and
    invalidations without any error, so the unit of work is never optional."""
    offenders = [
        f"{path.relative_to(SRC)}:{number}"
        for path in SRC.rglob("*.py")
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if OPTIONAL_UNIT_OF_WORK.search(line)
    ]
    assert offenders == []


def test_the_optional_unit_of_work_pattern_catches_what_it_should() -> None:
    assert OPTIONAL_UNIT_OF_WORK.search("async def f(*, uow: UnitOfWork | None = None) -> None:")
    assert OPTIONAL_UNIT_OF_WORK.search("    events: EventBus | None = None,")
    assert not OPTIONAL_UNIT_OF_WORK.search("async def f(*, uow: UnitOfWork) -> None:")
