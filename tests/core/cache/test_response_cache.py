"""Keys, generations and the response cache engine (on memory and on real Redis)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable, Sequence

import pytest
from prometheus_client import REGISTRY
from pydantic import ValidationError

from openrisk.config import Settings
from openrisk.core.cache import (
    Cache,
    CachedAnswer,
    CacheError,
    GenerationStore,
    MemoryCache,
    NullCache,
    ResilientCache,
    ResponseCache,
    compute_etag,
    etag_matches,
    global_key,
    normalise_params,
    params_digest,
    permission_variant,
    tenant_key,
)
from openrisk.core.cache.response import Lookup

# --- keys -----------------------------------------------------------------------------------


def test_params_are_order_independent_with_defaults_filled_in() -> None:
    defaults = {"page": 1, "size": 50, "sort": "-score"}
    explicit = normalise_params({"size": 50, "status": "open", "page": 1}, defaults)
    implicit = normalise_params({"status": "open"}, defaults)
    assert explicit == implicit


def test_params_sort_lists_and_drop_none() -> None:
    first = normalise_params({"tags": ["b", "a", None], "owner": None}, {})
    second = normalise_params({"tags": ("a", "b")}, {})
    assert first == second
    assert "owner" not in first


def test_params_that_change_the_answer_change_the_digest() -> None:
    assert params_digest({"status": "open"}, {}) != params_digest({"status": "closed"}, {})
    assert params_digest({"flag": True}, {}) == params_digest({"flag": "true"}, {})
    assert re.fullmatch(r"[0-9a-f]{16}", params_digest({"q": "x"}, {}))


def test_key_layout() -> None:
    assert tenant_key("t1", "risk:list", "abc") == "openrisk:t:{t1}:risk:list:abc"
    assert global_key("marketplace:connectors", "d1") == "openrisk:marketplace:connectors:d1"


def test_key_parts_cannot_forge_separators_or_globs() -> None:
    assert tenant_key("t1", "risk:id", "a:b*") == "openrisk:t:{t1}:risk:id:a%3Ab%2A"
    assert tenant_key("t{1}", "risk:id", "{x}") == "openrisk:t:{t%7B1%7D}:risk:id:%7Bx%7D"
    assert tenant_key("t1:x", "risk:id", "1") != tenant_key("t1", "x:risk:id", "1")
    with pytest.raises(ValueError, match="namespace"):
        tenant_key("t1", "risk list")


def test_permission_variants() -> None:
    reader = permission_variant(["risk:read", "dashboard:read"])
    assert reader == permission_variant(["dashboard:read", "risk:read", "risk:read"])
    assert reader != permission_variant(["risk:read"])
    assert permission_variant(["risk:read"], user_id="u1") != permission_variant(
        ["risk:read"], user_id="u2"
    )


# --- generations ----------------------------------------------------------------------------


async def test_generation_changes_on_bump_and_is_per_tenant_and_namespace() -> None:
    store = GenerationStore(MemoryCache())
    before = await store.current("t1", ["risk", "asset"])
    other_tenant = await store.current("t2", ["risk"])
    await store.bump("t1", "risk")
    after = await store.current("t1", ["risk", "asset"])
    assert after["risk"] != before["risk"]
    assert after["asset"] == before["asset"]
    assert await store.current("t2", ["risk"]) == other_tenant


async def test_lost_generation_never_restarts_at_a_predictable_value() -> None:
    cache = MemoryCache()
    store = GenerationStore(cache)
    seen = {(await store.current("t1", ["risk"]))["risk"]}
    for _ in range(5):
        await cache.clear()  # as if evicted
        await store.bump("t1", "risk")
        seen.add((await store.current("t1", ["risk"]))["risk"])
        await cache.clear()
        seen.add((await store.current("t1", ["risk"]))["risk"])
    assert len(seen) == 11
    assert not seen & {0, 1, 2}


async def test_bump_counts_invalidations() -> None:
    label = {"namespace": "counted"}
    before = REGISTRY.get_sample_value("openrisk_cache_invalidations_total", label) or 0
    await GenerationStore(MemoryCache()).bump("t1", "counted", "counted")
    assert REGISTRY.get_sample_value("openrisk_cache_invalidations_total", label) == before + 1


# --- response cache -------------------------------------------------------------------------


class Source:
    """A stand-in for the database: counts computations, can be slowed down or fail."""

    def __init__(self, body: bytes = b'{"risks": []}') -> None:
        self.body = body
        self.calls = 0
        self.gate: asyncio.Event | None = None
        self.error: Exception | None = None
        self.started = asyncio.Event()

    async def compute(self) -> bytes:
        self.calls += 1
        self.started.set()
        snapshot = self.body  # read "the database" when the computation starts
        if self.gate is not None:
            await self.gate.wait()
        if self.error is not None:
            raise self.error
        return snapshot


@pytest.fixture(
    params=[
        "memory",
        pytest.param("redis", marks=pytest.mark.redis),
        pytest.param("redis+local", marks=pytest.mark.redis),  # the two-level option
        pytest.param("cluster", marks=pytest.mark.redis),  # a local 3-master Redis Cluster
        pytest.param("cluster+local", marks=pytest.mark.redis),
    ]
)
def response_cache(request: pytest.FixtureRequest) -> ResponseCache:
    # Synchronous on purpose: it pulls the async Redis fixtures via getfixturevalue.
    backend: Cache = (
        MemoryCache()
        if request.param == "memory"
        else request.getfixturevalue(
            "redis_cluster_cache" if request.param.startswith("cluster") else "redis_cache"
        )
    )
    local = MemoryCache() if request.param.endswith("+local") else None
    # The breaker's production 1 s per call is shorter than 100 concurrent first calls can take
    # on a loaded host; these tests are about flights and keys, the breaker has its own tests.
    return ResponseCache(ResilientCache(backend, call_timeout_s=30), local=local)


@pytest.fixture
def tenant(run_id: str) -> str:
    """Tenant ids start with run_id so the Redis fixture's clear() removes their keys."""
    return f"{run_id}-a"


@pytest.fixture
def other_tenant(run_id: str) -> str:
    return f"{run_id}-b"


async def lookup(
    cache: ResponseCache,
    tenant_id: str | None,
    source: Source,
    *,
    namespace: str = "risk:list",
    key_parts: Sequence[str] = ("p1",),
    depends_on: Sequence[str] = ("risk",),
    ttl: int | None = None,
) -> CachedAnswer:
    place = Lookup.build(
        tenant_id=tenant_id, namespace=namespace, key_parts=key_parts, depends_on=depends_on
    )
    return await cache.answer(place, source.compute, ttl=ttl)


async def until_all_missed(cache: ResponseCache, count: int) -> None:
    """Wait until `count` lookups have missed: each then leads or has joined the one flight.

    Generous on purpose: 100 lookups against real Redis on a loaded 2-core host can take
    seconds to all reach the flight; the assertions that matter come after.
    """
    async with asyncio.timeout(60):
        while True:
            if (await cache.stats())["misses"] >= count:
                return
            await asyncio.sleep(0.01)


def requests_counter(namespace: str, result: str) -> float:
    labels = {"namespace": namespace, "result": result}
    return REGISTRY.get_sample_value("openrisk_cache_requests_total", labels) or 0.0


async def test_miss_then_hit_with_a_strong_etag(response_cache: ResponseCache, tenant: str) -> None:
    source = Source()
    first = await lookup(response_cache, tenant, source)
    second = await lookup(response_cache, tenant, source)
    assert (first.status, second.status) == ("MISS", "HIT")
    assert first.body == second.body == source.body
    assert first.etag == second.etag == compute_etag(source.body)
    assert re.fullmatch(r'"[0-9a-f]{32}"', first.etag)
    assert second.headers == {"ETag": first.etag, "X-Cache": "HIT"}
    assert source.calls == 1


async def test_hits_and_misses_are_counted(response_cache: ResponseCache, tenant: str) -> None:
    hits, misses = requests_counter("risk:search", "hit"), requests_counter("risk:search", "miss")
    source = Source()
    for _ in range(3):
        await lookup(response_cache, tenant, source, namespace="risk:search")
    assert requests_counter("risk:search", "miss") == misses + 1
    assert requests_counter("risk:search", "hit") == hits + 2
    stats = await response_cache.stats()
    assert (stats["hits"], stats["misses"], stats["bypasses"]) == (2, 1, 0)


async def test_single_flight_computes_once_for_100_concurrent_misses(
    response_cache: ResponseCache, tenant: str
) -> None:
    source = Source()
    source.gate = asyncio.Event()
    requests = [asyncio.create_task(lookup(response_cache, tenant, source)) for _ in range(100)]
    await until_all_missed(response_cache, 100)
    source.gate.set()
    answers = await asyncio.gather(*requests)
    assert source.calls == 1
    assert {(answer.body, answer.etag) for answer in answers} == {
        (source.body, compute_etag(source.body))
    }
    assert (await lookup(response_cache, tenant, source)).status == "HIT"


async def test_single_flight_shares_a_failure_then_retries(
    response_cache: ResponseCache, tenant: str
) -> None:
    source = Source()
    source.gate, source.error = asyncio.Event(), RuntimeError("database down")
    requests = [asyncio.create_task(lookup(response_cache, tenant, source)) for _ in range(10)]
    await until_all_missed(response_cache, 10)
    source.gate.set()
    results = await asyncio.gather(*requests, return_exceptions=True)
    assert source.calls == 1
    assert all(isinstance(result, RuntimeError) for result in results)
    source.gate, source.error = None, None
    assert (await lookup(response_cache, tenant, source)).status == "MISS"
    assert source.calls == 2


async def test_a_cancelled_leader_does_not_cancel_its_followers(
    response_cache: ResponseCache, tenant: str
) -> None:
    source = Source()
    source.gate = asyncio.Event()
    leader = asyncio.create_task(lookup(response_cache, tenant, source))
    await until_all_missed(response_cache, 1)
    follower = asyncio.create_task(lookup(response_cache, tenant, source))
    await until_all_missed(response_cache, 2)
    leader.cancel()
    await asyncio.sleep(0.02)
    source.gate.set()
    assert (await follower).body == source.body
    assert leader.cancelled()


async def test_read_your_writes_despite_a_slow_read_that_started_before_the_write(
    response_cache: ResponseCache, tenant: str
) -> None:
    source = Source(b"old")
    source.gate = asyncio.Event()
    slow_read = asyncio.create_task(lookup(response_cache, tenant, source))
    await asyncio.wait_for(source.started.wait(), 10)  # it has read "the database": b"old"
    source.body = b"new"  # the write commits...
    await response_cache.invalidate(tenant, "risk")  # ...then invalidates
    source.gate.set()
    assert (await slow_read).body == b"old"  # it began before the write: allowed
    source.gate = None
    after = await lookup(response_cache, tenant, source)
    assert after.body == b"new" and after.status == "MISS"
    assert (await lookup(response_cache, tenant, source)).body == b"new"


async def test_invalidation_reaches_every_dependent_namespace_only(
    response_cache: ResponseCache, tenant: str
) -> None:
    matrix, connectors = Source(b"matrix"), Source(b"connectors")
    await lookup(
        response_cache, tenant, matrix, namespace="risk:matrix", depends_on=["risk", "asset"]
    )
    await lookup(
        response_cache, tenant, connectors, namespace="connector:list", depends_on=["connector"]
    )
    await response_cache.invalidate(tenant, "asset")
    again = await lookup(
        response_cache, tenant, matrix, namespace="risk:matrix", depends_on=["asset", "risk"]
    )
    untouched = await lookup(
        response_cache, tenant, connectors, namespace="connector:list", depends_on=["connector"]
    )
    assert (again.status, untouched.status) == ("MISS", "HIT")


async def test_tenants_never_share_entries(
    response_cache: ResponseCache, tenant: str, other_tenant: str
) -> None:
    mine, theirs = Source(b"tenant a"), Source(b"tenant b")
    assert (await lookup(response_cache, tenant, mine)).body == b"tenant a"
    answer = await lookup(response_cache, other_tenant, theirs)
    assert (answer.body, answer.status) == (b"tenant b", "MISS")
    await response_cache.invalidate(other_tenant, "risk")
    assert (await lookup(response_cache, tenant, mine)).status == "HIT"


async def test_callers_with_different_permissions_never_share_entries(
    response_cache: ResponseCache, tenant: str
) -> None:
    everything = permission_variant(["risk:read"])
    own_only = permission_variant(["risk:read:own"], user_id="u1")
    someone_else = permission_variant(["risk:read:own"], user_id="u2")
    bodies = {}
    for variant in (everything, own_only, someone_else):
        source = Source(variant.encode())
        answer = await lookup(response_cache, tenant, source, key_parts=["d1", variant])
        bodies[variant] = (answer.body, answer.status)
    assert bodies == {v: (v.encode(), "MISS") for v in (everything, own_only, someone_else)}


async def test_global_answers_are_shared_across_tenants() -> None:
    cache = ResponseCache(MemoryCache())
    source = Source(b"catalogue")
    first = await lookup(cache, None, source, namespace="connector:list", depends_on=["connector"])
    second = await lookup(cache, None, source, namespace="connector:list", depends_on=["connector"])
    assert (first.status, second.status, source.calls) == ("MISS", "HIT", 1)
    await cache.invalidate(None, "connector")
    third = await lookup(cache, None, source, namespace="connector:list", depends_on=["connector"])
    assert third.status == "MISS"


async def test_disabled_cache_always_bypasses() -> None:
    cache = ResponseCache(MemoryCache(), enabled=False)
    source = Source()
    answers = [await lookup(cache, "t1", source) for _ in range(3)]
    assert {answer.status for answer in answers} == {"BYPASS"}
    assert answers[0].etag == compute_etag(source.body)
    assert source.calls == 3


async def test_a_zero_ttl_turns_one_namespace_off() -> None:
    cache = ResponseCache(MemoryCache(), ttls={"risk:search": 0})
    source = Source()
    statuses = [(await lookup(cache, "t1", source, namespace="risk:search")).status for _ in "ab"]
    assert statuses == ["BYPASS", "BYPASS"]


async def test_entries_expire_after_their_ttl() -> None:
    now = [1000.0]
    cache = ResponseCache(MemoryCache(clock=lambda: now[0]))
    source = Source()
    await lookup(cache, "t1", source, ttl=1)
    now[0] += 0.9
    assert (await lookup(cache, "t1", source, ttl=1)).status == "HIT"
    now[0] += 0.2
    assert (await lookup(cache, "t1", source, ttl=1)).status == "MISS"


async def test_null_backend_always_misses_but_never_fails() -> None:
    cache = ResponseCache(NullCache())
    source = Source()
    statuses = [(await lookup(cache, "t1", source)).status for _ in range(3)]
    await cache.invalidate("t1", "risk")
    assert statuses == ["MISS", "MISS", "MISS"] and source.calls == 3


async def test_generations_still_work_on_the_null_backend() -> None:
    store = GenerationStore(NullCache())
    before = await store.current("t1", ["risk"])
    await store.bump("t1", "risk")
    assert set(before) == {"risk"}


def test_a_raw_backend_gets_a_circuit_breaker() -> None:
    assert isinstance(ResponseCache(MemoryCache()).cache, ResilientCache)
    breaker = ResilientCache(MemoryCache())
    assert ResponseCache(breaker).cache is breaker


def test_a_declared_ttl_yields_to_an_override() -> None:
    cache = ResponseCache(NullCache(), ttls={"risk:list": 30})
    assert cache.ttl_for("risk:list", 300) == 30
    assert cache.ttl_for("risk:detail", 300) == 300
    assert cache.ttl_for("app:detail", 1200) == 1200


def test_ttl_overrides_come_from_openrisk_cache_ttl_variables(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OPENRISK_CACHE_TTL_RISK_LIST", "60")
    monkeypatch.setenv("OPENRISK_CACHE_TTL_DASHBOARD_TOP_RISKS", "0")
    cache = ResponseCache(NullCache(), ttl_override=Settings().cache_ttl)
    assert cache.ttl_for("risk:list", 300) == 60
    assert cache.ttl_for("dashboard:top_risks", 600) == 0
    assert cache.ttl_for("dashboard:stats", 600) == 600
    monkeypatch.setenv("OPENRISK_CACHE_TTL_APP_DETAIL", "soon")
    with pytest.raises(ValidationError, match="cache_ttl_app_detail"):
        Settings()


def test_if_none_match() -> None:
    etag = compute_etag(b"body")
    assert etag_matches(etag, etag)
    assert etag_matches(f'"other", W/{etag}', etag)
    assert etag_matches("*", etag)
    assert not etag_matches(None, etag)
    assert not etag_matches('"other"', etag)
    assert CachedAnswer(b"body", etag, "HIT").not_modified(etag)


# --- outages --------------------------------------------------------------------------------


class FlakyCache:
    """Delegates to a MemoryCache, but every operation fails while `broken` is set."""

    def __init__(self) -> None:
        self.inner = MemoryCache()
        self.broken = False

    def __getattr__(self, name: str) -> Callable[..., Awaitable[object]]:
        method = getattr(self.inner, name)

        async def guarded(*args: object, **kwargs: object) -> object:
            if self.broken:
                raise CacheError("backend unreachable")
            return await method(*args, **kwargs)

        return guarded


async def test_outage_bypasses_and_deferred_invalidation_lands_before_caching_resumes() -> None:
    flaky = FlakyCache()
    breaker = ResilientCache(flaky, failure_threshold=2, reset_after_s=0.05, backend_name="flaky")
    cache = ResponseCache(breaker)
    source = Source(b"old")
    assert (await lookup(cache, "t1", source)).status == "MISS"
    flaky.broken = True
    source.body = b"new"
    await cache.invalidate("t1", "risk")  # cannot reach the cache: must not raise
    outage = [await lookup(cache, "t1", source) for _ in range(3)]
    assert {(answer.status, answer.body) for answer in outage} == {("BYPASS", b"new")}
    flaky.broken = False
    await asyncio.sleep(0.06)
    recovered = await lookup(cache, "t1", source)
    assert (recovered.status, recovered.body) == ("MISS", b"new")  # never the old entry
    assert (await cache.stats())["pending_invalidations"] == 0


# --- two levels and the hot path's lookup ---------------------------------------------------


@pytest.fixture(
    params=[
        "memory",
        pytest.param("redis", marks=pytest.mark.redis),
        pytest.param("cluster", marks=pytest.mark.redis),
    ]
)
def shared_backend(request: pytest.FixtureRequest) -> Cache:
    if request.param == "memory":
        return MemoryCache()
    fixture = "redis_cluster_cache" if request.param == "cluster" else "redis_cache"
    backend: Cache = request.getfixturevalue(fixture)
    return backend


async def test_two_processes_with_local_copies_never_serve_an_answer_made_stale_elsewhere(
    shared_backend: Cache, tenant: str
) -> None:
    """Two processes' response caches share one backend; each also keeps answers in its own
    memory. A write invalidated through one is seen by the other's very next read."""
    one = ResponseCache(shared_backend, local=MemoryCache())
    two = ResponseCache(shared_backend, local=MemoryCache())
    source = Source(b"v1")
    assert (await lookup(one, tenant, source)).status == "MISS"
    assert (await lookup(two, tenant, source)).status == "HIT"  # from the shared level
    assert (await lookup(two, tenant, source)).status == "HIT"  # from its own memory
    assert source.calls == 1
    source.body = b"v2"
    await one.invalidate(tenant, "risk")
    after = await lookup(two, tenant, source)
    assert (after.status, after.body) == ("MISS", b"v2")
    assert (await lookup(one, tenant, source)).body == b"v2"


async def test_a_local_copy_saves_the_shared_read_of_the_body(tenant: str) -> None:
    shared = MemoryCache()
    cache = ResponseCache(shared, local=MemoryCache())
    source = Source(b"body")
    await lookup(cache, tenant, source)
    reads_before = (await shared.stats())["hits"]
    for _ in range(5):
        assert (await lookup(cache, tenant, source)).status == "HIT"
    assert (await shared.stats())["hits"] == reads_before + 5  # generations only, never values


def built(tenant_id: str, *, parts: Sequence[str] = ("p1",)) -> Lookup:
    return Lookup.build(
        tenant_id=tenant_id, namespace="risk:list", key_parts=parts, depends_on=("risk",)
    )


async def test_peek_answers_stored_answers_only_while_the_guards_hold(
    response_cache: ResponseCache, tenant: str
) -> None:
    guard = GenerationStore.key(None, f"{tenant}-authz")
    guard_generation = (await response_cache.generations.current(None, [f"{tenant}-authz"]))[
        f"{tenant}-authz"
    ]
    guards = {guard: guard_generation}
    assert await response_cache.peek(built(tenant), guards=guards) is None  # nothing stored
    stored = await response_cache.answer(built(tenant), Source(b"stored").compute)
    seen = await response_cache.peek(built(tenant), guards=guards)
    assert seen is not None
    assert (seen.status, seen.body, seen.etag) == ("HIT", b"stored", stored.etag)
    assert await response_cache.peek(built(tenant, parts=("p2",)), guards=guards) is None
    await response_cache.generations.bump(None, f"{tenant}-authz")
    assert await response_cache.peek(built(tenant), guards=guards) is None
    fresh = {guard: guard_generation + 1}
    assert await response_cache.peek(built(tenant), guards=fresh) is not None
    await response_cache.invalidate(tenant, "risk")
    assert await response_cache.peek(built(tenant), guards=fresh) is None


async def test_peek_never_answers_while_the_cache_is_down_or_an_invalidation_is_pending() -> None:
    flaky = FlakyCache()
    cache = ResponseCache(ResilientCache(flaky, failure_threshold=1, reset_after_s=60))
    await cache.answer(built("t1"), Source(b"old").compute)
    assert await cache.peek(built("t1"), guards={}) is not None
    flaky.broken = True
    await cache.invalidate("t1", "risk")  # deferred
    assert await cache.peek(built("t1"), guards={}) is None
    flaky.broken = False
    assert await cache.peek(built("t1"), guards={}) is None  # breaker open, bump still pending
