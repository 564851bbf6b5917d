"""The connection pool: max open/idle, lifetime, idle time, waits and timeouts, per profile."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import event, exc
from sqlalchemy.engine import Engine
from sqlalchemy.pool import AsyncAdaptedQueuePool, ConnectionPoolEntry, PoolProxiedConnection

from openrisk.config import PoolProfile
from openrisk.core.db.timeouts import terminate


class InstrumentedPool(AsyncAdaptedQueuePool):
    """A queue pool that counts the checkouts that had to wait and those that timed out."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.waits = 0
        self.timeouts = 0

    def _do_get(self) -> Any:
        if self.checkedout() >= self.size() + self._max_overflow:
            self.waits += 1
        try:
            return super()._do_get()
        except exc.TimeoutError:
            self.timeouts += 1
            raise

    def recreate(self) -> InstrumentedPool:
        fresh = super().recreate()
        assert isinstance(fresh, InstrumentedPool)
        return fresh


@dataclass(frozen=True)
class PoolStats:
    max_open: int
    max_idle: int
    size: int
    in_use: int
    idle: int
    overflow: int
    waits: int
    timeouts: int
    lifetime_s: int
    max_idle_time_s: int

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


def pool_stats(pool: Any, profile: PoolProfile) -> PoolStats:
    """Live statistics of the engine's pool (any SQLAlchemy pool; queue pools are richest)."""
    size = int(pool.size()) if hasattr(pool, "size") else 0
    in_use = int(pool.checkedout()) if hasattr(pool, "checkedout") else 0
    idle = int(pool.checkedin()) if hasattr(pool, "checkedin") else 0
    overflow = max(int(pool.overflow()), 0) if hasattr(pool, "overflow") else 0
    return PoolStats(
        max_open=profile.max_open,
        max_idle=profile.max_idle,
        size=size,
        in_use=in_use,
        idle=idle,
        overflow=overflow,
        waits=getattr(pool, "waits", 0),
        timeouts=getattr(pool, "timeouts", 0),
        lifetime_s=profile.lifetime_s,
        max_idle_time_s=profile.max_idle_time_s,
    )


def install_idle_policy(engine: Engine, *, max_idle_time_s: float, pre_ping_after_s: float) -> None:
    """Discard connections idle past max idle time; ping those idle past ``pre_ping_after_s``.

    SQLAlchemy's own ``pool_pre_ping`` pings on every checkout, a round trip on the hot path;
    pinging only after idle catches connections the server or a firewall dropped meanwhile.
    """

    @event.listens_for(engine, "checkin")
    def _remember_checkin(dbapi_conn: Any, record: ConnectionPoolEntry) -> None:
        record.info["checked_in_at"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _check_idle(
        dbapi_conn: Any, record: ConnectionPoolEntry, proxy: PoolProxiedConnection
    ) -> None:
        checked_in_at = record.info.get("checked_in_at")
        if checked_in_at is None:
            return
        idle_for = time.monotonic() - checked_in_at
        if idle_for > max_idle_time_s:
            raise exc.DisconnectionError("connection idle past max idle time")
        if idle_for > pre_ping_after_s:
            try:
                engine.dialect.do_ping(dbapi_conn)
            except Exception as error:
                terminate(dbapi_conn)  # a ping that timed out: no graceful goodbye either
                raise exc.DisconnectionError("connection failed its ping after idle") from error
