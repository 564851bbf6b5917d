"""The quantitative answers through the service, with the database: what a request pays on top
of the engine (``benchmarks/quant_bench.py`` measures the engine alone).

    python -m benchmarks.quant_service_bench [--risks 1000] [--iterations 100000] [--repeats 3]

Seeds a fresh SQLite database (a temporary directory) with one tenant of ``--risks`` risks
(``openrisk.seed.register.populate``: assets, mitigations, history), every one of them quantified
(``openrisk.quantification.demo.quantify_sample``), then times:

* reading the register's inputs (every estimate and mitigation, three queries) and their digest;
* simulating the register from them (``service.portfolio``, in a worker thread);
* one risk's first read (its result is simulated and stored) and a later read (stored result,
  digest unchanged);
* what the background recompute job does for a risk whose digest is unchanged (the common
  case of a mitigation edit that touches no input: two queries, no simulation).

Prints wall-clock min and median over the repeats and the machine's load average.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

from rich.console import Console
from rich.table import Table
from sqlalchemy import select

from openrisk.auth.service import create_user
from openrisk.config import Settings
from openrisk.core.db.engine import create_database
from openrisk.core.db.migrate import upgrade
from openrisk.core.uow import UnitOfWork
from openrisk.quantification import service
from openrisk.quantification.demo import quantify_sample
from openrisk.rbac.catalogue import ADMIN
from openrisk.risks.models import Risk
from openrisk.seed.register import populate
from openrisk.tenants.service import create_tenant

console = Console()


async def timed(run: Callable[[], Awaitable[object]], repeats: int) -> list[float]:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        await run()
        times.append(time.perf_counter() - start)
    return times


async def bench(directory: Path, risks: int, iterations: int, repeats: int) -> None:
    url = f"sqlite+aiosqlite:///{directory / 'bench.db'}"
    await asyncio.to_thread(upgrade, url)  # Alembic runs its own event loop
    database = create_database(
        Settings(database_url=url, log_level="WARNING"), bounded_statements=False
    )
    async with database.session() as session:
        user = await create_user(
            session, email=f"bench-{uuid.uuid4().hex[:8]}@example.com", password="x" * 16
        )
        tenant = await create_tenant(session, name="Bench", owner_id=user.id, role_id=ADMIN.id)
        await populate(session, tenant_id=tenant.id, owners=[user.id], risks=risks, span_days=30)
        quantified = await quantify_sample(session, tenant_id=tenant.id, every=1)
        await session.commit()
        risk_id = await session.scalar(
            select(Risk.id).where(Risk.tenant_id == tenant.id).order_by(Risk.id).limit(1)
        )
    assert risk_id is not None
    console.print(f"{quantified} quantified risks; load average before: {os.getloadavg()}")

    rows: list[tuple[str, list[float]]] = []
    async with database.session() as session:

        async def inputs() -> service.PortfolioInputs:
            return await service.portfolio_inputs(
                session, tenant_id=tenant.id, iterations=iterations, seed=0
            )

        rows.append(
            (f"read {quantified:,} estimates + mitigations, digest", await timed(inputs, repeats))
        )
        loaded = await inputs()
        rows.append(
            (
                f"simulate the register, {iterations:,} years",
                await timed(lambda: service.portfolio(loaded), repeats),
            )
        )
        uow = UnitOfWork(session)
        first = await timed(
            lambda: service.get_quantification(uow=uow, tenant_id=tenant.id, risk_id=risk_id), 1
        )
        rows.append(("one risk, first read (simulated and stored)", first))
        rows.append(
            (
                "one risk, later read (stored result)",
                await timed(
                    lambda: service.get_quantification(
                        uow=uow, tenant_id=tenant.id, risk_id=risk_id
                    ),
                    repeats * 4,
                ),
            )
        )
        rows.append(
            (
                "one risk's recompute job, digest unchanged (nothing simulated)",
                await timed(
                    lambda: service.recompute_results(
                        uow=uow, tenant_id=tenant.id, risk_ids=[risk_id]
                    ),
                    repeats * 4,
                ),
            )
        )
    await database.dispose()

    table = Table(title="quantification service (SQLite)")
    for column in ("case", "wall min", "wall median"):
        table.add_column(column, justify="left" if column == "case" else "right")
    for label, times in rows:
        table.add_row(
            label, f"{min(times) * 1e3:.1f} ms", f"{statistics.median(times) * 1e3:.1f} ms"
        )
    console.print(table)
    console.print(f"load average after: {os.getloadavg()}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--risks", type=int, default=1000)
    parser.add_argument("--iterations", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        asyncio.run(bench(Path(directory), args.risks, args.iterations, args.repeats))


if __name__ == "__main__":
    main()
