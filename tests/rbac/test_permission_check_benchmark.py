"""Micro-benchmark of the hot-path permission check.

Run: `.venv/bin/pytest tests/rbac -p no:xdist --benchmark-only` prints the cost per check.
The assertions are about the decisions; the printed table is the measurement.
"""

from __future__ import annotations

import asyncio
import uuid

import pytest
from pytest_benchmark.fixture import BenchmarkFixture

from openrisk.core.cache.memory import MemoryCache
from openrisk.core.cache.resilient import ResilientCache
from openrisk.core.context import RequestContext
from openrisk.core.errors import Forbidden
from openrisk.rbac.authz_cache import AuthzCache
from openrisk.rbac.catalogue import ANALYST
from openrisk.rbac.service import ResolvedMembership

CHECKS_PER_ROUND = 1000


def analyst_membership() -> ResolvedMembership:
    return ResolvedMembership(
        user_id=uuid.uuid4(),
        email="analyst@example.com",
        is_superuser=False,
        tenant_id=uuid.uuid4(),
        tenant_slug="acme",
        tenant_status="active",
        role_id=ANALYST.id,
        role_name=ANALYST.name,
        role_level=ANALYST.level,
        grants=ANALYST.grants,
    )


def test_permission_check_on_a_resolved_context(benchmark: BenchmarkFixture) -> None:
    context: RequestContext = analyst_membership().context()

    def check() -> None:
        context.require("risk:read")
        context.require_on("risk:update", context.user_id)

    benchmark(check)
    with pytest.raises(Forbidden):
        context.require("risk:assign")


def test_cached_resolution_and_check_per_request(benchmark: BenchmarkFixture) -> None:
    """What a request pays with a warm cache: generation read, local lookup, context, check."""
    membership = analyst_membership()
    authz = AuthzCache(ResilientCache(MemoryCache(max_entries=1000, max_bytes=1 << 20)))
    loads = 0

    async def load() -> ResolvedMembership:
        nonlocal loads
        loads += 1
        return membership

    async def one_round() -> None:
        for _ in range(CHECKS_PER_ROUND):
            resolved = await authz.get_or_load(("member", membership.user_id, None), load)
            resolved.context().require("risk:read")

    loop = asyncio.new_event_loop()
    try:
        benchmark.extra_info["checks_per_round"] = CHECKS_PER_ROUND
        benchmark.pedantic(lambda: loop.run_until_complete(one_round()), rounds=20)
    finally:
        loop.close()
    assert loads == 1  # resolved once, then served from the process cache
    if benchmark.stats is not None:  # None when timing is off (pytest-xdist runs the suite)
        per_check_us = benchmark.stats.stats.mean / CHECKS_PER_ROUND * 1e6
        print(f"\ncached resolution + permission check: {per_check_us:.2f} µs per request")
