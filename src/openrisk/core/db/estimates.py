"""Row estimates from PostgreSQL's planner: what a count would roughly say, for the price of
planning the query (well under a millisecond) instead of running it."""

from __future__ import annotations

from typing import Any

import orjson
from sqlalchemy import Executable
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ClauseElement


class _ExplainJson(Executable, ClauseElement):
    inherit_cache = False

    def __init__(self, statement: ClauseElement) -> None:
        self.statement = statement


@compiles(_ExplainJson, "postgresql")
def _compile_explain(element: _ExplainJson, compiler: SQLCompiler, **kw: Any) -> str:
    return "EXPLAIN (FORMAT JSON) " + compiler.process(element.statement, **kw)


async def planned_rows(session: AsyncSession, statement: ClauseElement) -> int | None:
    """The planner's estimate of the rows ``statement`` returns (PostgreSQL), else None."""
    if session.get_bind().dialect.name != "postgresql":
        return None
    plan = (await session.execute(_ExplainJson(statement))).scalar_one()
    if isinstance(plan, str):  # the driver may hand the json over as text
        plan = orjson.loads(plan)
    return int(plan[0]["Plan"]["Plan Rows"])
