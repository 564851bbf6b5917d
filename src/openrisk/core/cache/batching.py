"""Concurrent small reads share one round trip (the hot path's generation reads).

Every cached hit reads a few generation numbers from the shared cache. With Redis, the
round trip through redis-py costs more CPU than everything else the hit does, yet under load
several hits wait for it at the same moment. `BatchedReader.get_many` sends the keys of every
caller that arrived while the previous read was in flight in one ``get_many``.

Freshness is unchanged: a caller's keys are always read by a request sent after the caller
arrived, never by one already in flight, so a hit still sees every invalidation acknowledged
before it started (read-your-writes).

Who sends: the first caller with nothing in flight sends its own batch; when a batch
completes, the oldest waiting caller is woken to send the next one (so nobody keeps sending
for others after its own answer has arrived).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from openrisk.core.cache.base import Cache, CacheUnavailable

Values = list[bytes | None]


class _Waiter:
    __slots__ = ("future", "keys")

    def __init__(self, keys: Sequence[str], future: asyncio.Future[Values | None]) -> None:
        self.keys = keys
        self.future = future  # the values, or None: "you send the next batch"


class BatchedReader:
    def __init__(self, cache: Cache) -> None:
        self._cache = cache
        self._waiting: list[_Waiter] = []
        self._in_flight = False  # a batch is being sent, or a waiter was told to send one
        self.round_trips = 0
        self.reads = 0

    async def get_many(self, keys: Sequence[str]) -> Values:
        """Like `Cache.get_many`, and raises what it raises."""
        self.reads += 1
        me = _Waiter(keys, asyncio.get_running_loop().create_future())
        self._waiting.append(me)
        if self._in_flight:
            try:
                values = await me.future
            except asyncio.CancelledError:
                if _told_to_send(me):  # nobody else will send: pass the turn on
                    self._in_flight = False
                    self._hand_over()
                raise
            if values is not None:
                return values
        return await self._send(me)

    async def _send(self, me: _Waiter) -> Values:
        """One read for every waiting caller's keys (``me`` among them)."""
        self._in_flight = True
        batch, self._waiting = self._waiting, []
        keys = list(dict.fromkeys(key for waiter in batch for key in waiter.keys))
        others = [waiter for waiter in batch if waiter is not me]
        try:
            self.round_trips += 1
            values = await self._cache.get_many(keys)
        except BaseException as exc:
            error = exc if isinstance(exc, Exception) else CacheUnavailable("read cancelled")
            for waiter in others:
                if not waiter.future.done():
                    waiter.future.set_exception(error)
            raise
        finally:
            self._in_flight = False
            self._hand_over()
        found = dict(zip(keys, values, strict=True))
        for waiter in others:
            if not waiter.future.done():
                waiter.future.set_result([found[key] for key in waiter.keys])
        return [found[key] for key in me.keys]

    def _hand_over(self) -> None:
        """Tell the oldest live waiter to send the next batch."""
        while self._waiting:
            first = self._waiting[0]
            if first.future.done():  # cancelled while waiting
                self._waiting.pop(0)
                continue
            self._in_flight = True
            first.future.set_result(None)
            return


def _told_to_send(waiter: _Waiter) -> bool:
    future = waiter.future
    return future.done() and not future.cancelled() and future.result() is None
