"""Declared cached reads: the one way an answer is cached.

A cached read is declared once, beside the service function computing it::

    STATS = cached_read(
        stats,                                   # async def stats(session, *, tenant_id, ...)
        namespace="dashboard:stats",
        ttl=600,
        varies_on=("tenant", "period", "today"),
        uses=("session",),
        depends_on=DASHBOARD_STATS,
        encode=..., decode=..., today=clock.today,
    )

and both the API (``core/cache/http.py: respond``) and the web pages (``STATS.value(...)``)
call it. What the declaration says is all the key is made of:

- ``"tenant"``: the answer is the tenant's (``tenant_id``); ``"reader:<code>"``: callers
  holding ``<code>`` on every row share answers, "own"-scoped callers get their own
  (``context``); ``"user"``: every caller (tenant and user) has its own answer (``context``);
- ``"today"``: the answer depends on today's date, taken from the declared ``today`` clock and
  passed to the function as ``today=`` — a key part like any other, so an answer of yesterday
  is never found today (no cut-off at midnight anywhere);
- any other name: a keyword argument of the function, normalised into the key.

``uses`` names the function's other arguments, which must not change the answer for the same
key: the session (what it reads is covered by the generations of ``depends_on``) and process
constants (a codec, a limit from the settings). Declaring is checked at import time: every
argument of the function is in ``varies_on`` or ``uses``, so an answer cannot vary on an input
its key leaves out; ``tests/core/cache/test_declared_reads.py`` walks every declaration.

``depends_on``: the namespaces whose generation the key embeds (``core/cache/invalidation.py``
says which writes bump which), or a function of the inputs (one risk's detail bucket).
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from functools import cached_property
from typing import Any, Generic, TypeVar

import orjson

from openrisk.core.cache.keys import params_digest, validate_namespace
from openrisk.core.cache.response import CachedAnswer, Lookup, ResponseCache

T = TypeVar("T")
TENANT, USER, TODAY = "tenant", "user", "today"
READER_PREFIX = "reader:"
Depends = Sequence[str] | Callable[[Mapping[str, Any]], Sequence[str]]

REGISTRY: dict[str, CachedRead[Any]] = {}


@dataclass(frozen=True, slots=True)
class Place:
    """Where the answers of one call of a declared read live (nothing of the call itself: the
    hot path keeps these)."""

    read: CachedRead[Any]
    tenant_id: str | None
    variant: str
    digest: str
    depends_on: tuple[str, ...]
    day: date | None

    def lookup(self, day: date | None = None) -> Lookup:
        """The answer's key; ``day``: the same call on another day (a dated read's next hit)."""
        when = self.day if day is None else day
        return Lookup.build(
            tenant_id=self.tenant_id,
            namespace=self.read.namespace,
            key_parts=(self.variant, when.isoformat() if when else "", self.digest),
            depends_on=self.depends_on,
        )


@dataclass(frozen=True, slots=True)
class Bound:
    """One call of a declared read: where its answer lives and how to compute it."""

    place: Place
    arguments: dict[str, Any]

    async def compute(self) -> bytes:
        read = self.place.read
        return read.encode(await read.function(**self.arguments))


@dataclass(frozen=True, eq=False)
class CachedRead(Generic[T]):
    function: Callable[..., Awaitable[T]]
    namespace: str
    ttl: int
    varies_on: tuple[str, ...]
    uses: tuple[str, ...]
    depends_on: Depends
    encode: Callable[[T], bytes]
    decode: Callable[[bytes], Any]
    today: Callable[[], date] | None

    @property
    def parameters(self) -> tuple[str, ...]:
        """The function's arguments that are key parts (``varies_on`` minus the special ones)."""
        return tuple(
            name
            for name in self.varies_on
            if name not in (TENANT, USER, TODAY) and not name.startswith(READER_PREFIX)
        )

    @property
    def dated(self) -> bool:
        return TODAY in self.varies_on

    def bind(self, **inputs: Any) -> Bound:
        """The call with these inputs: the function's arguments (but ``today``), plus
        ``context`` when the declaration varies on the caller and the function does not take it."""
        context = inputs.get("context") if self._takes("context") else inputs.pop("context", None)
        if context is None and self._needs_context():
            raise TypeError(f"{self.namespace}: pass context= (the answer varies on the caller)")
        day = None
        if self.dated:
            assert self.today is not None
            day = inputs[TODAY] = self.today()
        names = self._names
        if names != inputs.keys():
            raise TypeError(
                f"{self.namespace}: missing {sorted(names - set(inputs))}, "
                f"unknown {sorted(set(inputs) - names)}"
            )
        tenant = inputs["tenant_id"] if TENANT in self.varies_on else None
        depends = self.depends_on(inputs) if callable(self.depends_on) else self.depends_on
        place = Place(
            read=self,
            tenant_id=None if tenant is None else str(tenant),
            variant=self._variant(context),
            digest=params_digest({name: inputs[name] for name in self.parameters}, {}),
            depends_on=tuple(depends),
            day=day,
        )
        return Bound(place=place, arguments=inputs)

    async def answer(self, cache: ResponseCache, **inputs: Any) -> CachedAnswer:
        """The stored answer, or the function's (encoded and stored)."""
        return await self.answer_bound(cache, self.bind(**inputs))

    async def answer_bound(self, cache: ResponseCache, bound: Bound) -> CachedAnswer:
        ttl = cache.ttl_for(self.namespace, self.ttl)
        return await cache.answer(bound.place.lookup(), bound.compute, ttl=ttl)

    async def value(self, cache: ResponseCache, **inputs: Any) -> Any:
        """The answer decoded (what a web page renders): the same entry as the API's."""
        return self.decode((await self.answer(cache, **inputs)).body)

    def _variant(self, context: Any) -> str:
        if USER in self.varies_on:
            return f"user-{context.tenant_id}-{context.user_id}"
        for name in self.varies_on:
            if name.startswith(READER_PREFIX):
                code = name.removeprefix(READER_PREFIX)
                return "all" if context.has_any_scope(code) else f"own-{context.user_id}"
        return "all"

    def _needs_context(self) -> bool:
        return USER in self.varies_on or any(n.startswith(READER_PREFIX) for n in self.varies_on)

    def _takes(self, name: str) -> bool:
        return name in self._names

    @cached_property
    def _names(self) -> frozenset[str]:
        """The function's argument names, read once (``inspect.signature`` on every call
        cost more than the rest of ``bind``)."""
        return frozenset(inspect.signature(self.function).parameters)


def _as_is(value: Any) -> bytes:
    if not isinstance(value, bytes):
        raise TypeError("a cached read without encode= must return the serialised bytes")
    return value


def cached_read(
    function: Callable[..., Awaitable[T]],
    *,
    namespace: str,
    ttl: int,
    varies_on: Sequence[str],
    depends_on: Depends,
    encode: Callable[[T], bytes] = _as_is,
    decode: Callable[[bytes], Any] = orjson.loads,
    uses: Sequence[str] = ("session",),
    today: Callable[[], date] | None = None,
) -> CachedRead[T]:
    """Declare ``function``'s answer cached; refuses a declaration whose key leaves out an
    argument of the function (see the module docstring). ``encode`` turns the function's
    answer into the stored bytes (default: the function returns them), ``decode`` the bytes
    into what a web page renders (default: parsed JSON)."""
    read = CachedRead(
        function=function,
        namespace=validate_namespace(namespace),
        ttl=ttl,
        varies_on=tuple(varies_on),
        uses=tuple(uses),
        depends_on=depends_on if callable(depends_on) else tuple(depends_on),
        encode=encode,
        decode=decode,
        today=today,
    )
    check(read)
    if namespace in REGISTRY:
        raise ValueError(f"cached read {namespace!r} is declared twice")
    REGISTRY[namespace] = read
    return read


def check(read: CachedRead[Any]) -> None:
    """Every argument of the function is a declared key part or a declared non-input."""
    where = f"cached read {read.namespace!r} ({read.function.__qualname__})"
    arguments = list(inspect.signature(read.function).parameters)
    declared = set(read.parameters) | set(read.uses)
    if read._needs_context():
        declared.add("context")
    if TENANT in read.varies_on:
        declared.add("tenant_id")
        if "tenant_id" not in arguments:
            raise TypeError(f"{where}: varies on the tenant but takes no tenant_id")
    if read.dated:
        declared.add(TODAY)
        if TODAY not in arguments or read.today is None:
            raise TypeError(f"{where}: varies on today: take today= and declare the clock")
    if "tenant_id" in read.varies_on:
        raise TypeError(f"{where}: say 'tenant' (the key's scope), not 'tenant_id'")
    if "context" in arguments and not read._needs_context():
        raise TypeError(f"{where}: takes the caller's context: vary on 'user' or 'reader:<code>'")
    undeclared = [name for name in arguments if name not in declared]
    if undeclared:
        raise TypeError(
            f"{where}: its answer may vary on {', '.join(undeclared)}, which its key leaves "
            "out: add them to varies_on (or to uses, for what cannot change the answer)"
        )
    unknown = [name for name in (*read.parameters, *read.uses) if name not in arguments]
    if unknown:
        raise TypeError(f"{where}: declares {', '.join(unknown)}, which it does not take")
