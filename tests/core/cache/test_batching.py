"""Concurrent reads share round trips, and never get an answer read before they arrived."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from openrisk.core.cache import CacheError, MemoryCache
from openrisk.core.cache.batching import BatchedReader


class SlowCache(MemoryCache):
    """`get_many` snapshots the values when called, then waits for the gate to open."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = asyncio.Event()
        self.calls: list[list[str]] = []
        self.fail: Exception | None = None

    async def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        self.calls.append(list(keys))
        snapshot = await super().get_many(keys)
        await self.gate.wait()
        if self.fail is not None:
            raise self.fail
        return snapshot


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_callers_arriving_during_a_read_share_the_next_one() -> None:
    cache = SlowCache()
    for n in range(20):
        await cache.set(f"k{n}", str(n).encode())
    reader = BatchedReader(cache)
    first = asyncio.create_task(reader.get_many(["k0", "k1"]))
    await settle()
    others = [asyncio.create_task(reader.get_many([f"k{n}", "k1"])) for n in range(2, 20)]
    await settle()
    cache.gate.set()
    assert await first == [b"0", b"1"]
    for n, task in zip(range(2, 20), others, strict=True):
        assert await task == [str(n).encode(), b"1"]
    assert reader.round_trips == 2 and len(cache.calls) == 2
    assert sorted(cache.calls[1]) == sorted({f"k{n}" for n in range(2, 20)} | {"k1"})


async def test_a_caller_never_gets_values_read_before_it_arrived() -> None:
    cache = SlowCache()
    await cache.set("generation", b"1")
    reader = BatchedReader(cache)
    early = asyncio.create_task(reader.get_many(["generation"]))
    await settle()  # its read is in flight and has seen "1"
    await cache.set("generation", b"2")  # a write's invalidation lands
    late = asyncio.create_task(reader.get_many(["generation"]))
    await settle()
    cache.gate.set()
    assert await early == [b"1"]
    assert await late == [b"2"]


async def test_a_failed_read_fails_every_caller_in_it_and_the_next_batch_still_runs() -> None:
    cache = SlowCache()
    reader = BatchedReader(cache)
    cache.fail = CacheError("down")
    first = asyncio.create_task(reader.get_many(["a"]))
    await settle()
    second = asyncio.create_task(reader.get_many(["b"]))
    third = asyncio.create_task(reader.get_many(["c"]))
    await settle()
    cache.gate.set()
    for task in (first, second, third):
        with pytest.raises(CacheError):
            await task
    cache.fail = None
    assert await reader.get_many(["a"]) == [None]


async def test_cancelled_callers_never_leave_the_others_waiting() -> None:
    cache = SlowCache()
    await cache.set("a", b"A")
    reader = BatchedReader(cache)
    sending = asyncio.create_task(reader.get_many(["a"]))
    await settle()
    next_sender = asyncio.create_task(reader.get_many(["a"]))  # will be told to send next
    waiting = asyncio.create_task(reader.get_many(["a"]))
    await settle()
    sending.cancel()  # the read in flight goes away: its batch-mates must not hang
    next_sender.cancel()
    await settle()
    cache.gate.set()
    async with asyncio.timeout(5):
        assert await waiting == [b"A"]
        assert await reader.get_many(["a"]) == [b"A"]


async def test_a_caller_cancelled_just_after_its_turn_to_send_passes_the_turn_on() -> None:
    cache = SlowCache()
    await cache.set("a", b"A")
    reader = BatchedReader(cache)
    sending = asyncio.create_task(reader.get_many(["a"]))
    await settle()
    next_sender = asyncio.create_task(reader.get_many(["a"]))
    waiting = asyncio.create_task(reader.get_many(["a"]))
    await settle()
    sending.cancel()
    await asyncio.sleep(0)  # the cancelled read hands the turn to next_sender...
    next_sender.cancel()  # ...which goes away before taking it
    cache.gate.set()
    async with asyncio.timeout(5):
        assert await waiting == [b"A"]
    assert next_sender.cancelled()
