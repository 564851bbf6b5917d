"""Every PostgreSQL statement bounded in time, so a database that stops answering costs seconds.

A server that stops answering without closing its connections (a "black hole": a frozen host, a
dropped route, a stalled proxy) would otherwise keep a request, and its pooled connection, waiting
as long as the operating system's TCP timers allow. Four bounds apply:

- the server's ``statement_timeout`` cancels a statement that runs too long (SQLSTATE 57014);
- asyncpg's ``command_timeout``, one second later, gives up on a server that cannot even cancel;
  the connection is then terminated at once (not returned to the pool, not closed gracefully);
- asyncpg's connect ``timeout`` bounds opening a connection;
- TCP keepalives on the client socket and on the server (``tcp_keepalives_*``) find a peer that
  vanished while a connection was idle.

Both time-outs surface as :class:`StatementTimedOut`, an ``OperationalError``, which the API
answers 503 with ``Retry-After`` like any other unavailable database.
"""

from __future__ import annotations

import logging
import socket
from typing import Any

from sqlalchemy import event
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Engine, ExceptionContext

from openrisk.config import Settings

log = logging.getLogger(__name__)

CLIENT_MARGIN_S = 1.0
QUERY_CANCELED = "57014"


class StatementTimedOut(sa_exc.OperationalError):
    """The database did not answer a statement (or a connection attempt) in time."""


def connect_args(settings: Settings, *, bounded: bool = True) -> dict[str, Any]:
    """asyncpg ``connect()`` arguments: connect timeout, keepalives and statement bounds (and
    the planner's parallel workers, a setting of the same connections)."""
    server_settings = {
        "tcp_keepalives_idle": str(settings.db_keepalive_idle_s),
        "tcp_keepalives_interval": str(settings.db_keepalive_interval_s),
        "tcp_keepalives_count": str(settings.db_keepalive_count),
        "max_parallel_workers_per_gather": str(settings.db_parallel_workers),
    }
    args: dict[str, Any] = {"timeout": settings.db_connect_timeout_s}
    if bounded and settings.db_statement_timeout_s > 0:
        server_settings["statement_timeout"] = str(round(settings.db_statement_timeout_s * 1000))
        args["command_timeout"] = settings.db_statement_timeout_s + CLIENT_MARGIN_S
    else:
        server_settings["statement_timeout"] = "0"
    args["server_settings"] = server_settings
    return args


def install_timeout_policy(engine: Engine, settings: Settings) -> None:
    """Keepalives on every new socket; a timed-out connection is dropped, not reused."""

    @event.listens_for(engine, "connect")
    def _keepalive(dbapi_conn: Any, record: Any) -> None:
        set_keepalive(dbapi_conn, settings)

    @event.listens_for(engine, "handle_error")
    def _bounded(context: ExceptionContext) -> BaseException | None:
        error = context.original_exception
        if isinstance(error, TimeoutError):
            context.is_disconnect = True
            context.invalidate_pool_on_disconnect = False  # others are found out on their own
            if context.connection is not None and not context.connection.invalidated:
                terminate(context.connection.connection.dbapi_connection)
            log.error("database did not answer in time; connection dropped")
            return _timed_out(context, error)
        if getattr(error, "sqlstate", None) == QUERY_CANCELED:
            log.warning("statement cancelled by statement_timeout")
            return _timed_out(context, error)
        return None


def _timed_out(context: ExceptionContext, error: BaseException) -> StatementTimedOut:
    return StatementTimedOut(
        context.statement,
        None,
        error,
        hide_parameters=True,
        connection_invalidated=context.is_disconnect,
    )


def terminate(dbapi_conn: Any) -> None:
    """Close a connection's socket at once, without the goodbye a black hole never answers."""
    driver = getattr(dbapi_conn, "driver_connection", None)
    close_now = getattr(driver, "terminate", None)
    if callable(close_now):
        close_now()


def set_keepalive(dbapi_conn: Any, settings: Settings) -> None:
    """TCP keepalive options on the connection's socket (where the platform has them)."""
    driver = getattr(dbapi_conn, "driver_connection", None)
    transport = getattr(driver, "_transport", None)  # asyncpg keeps no public handle on it
    sock = transport.get_extra_info("socket") if transport is not None else None
    if sock is None or sock.family not in (socket.AF_INET, socket.AF_INET6):
        return
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    for name, value in (
        ("TCP_KEEPIDLE", settings.db_keepalive_idle_s),
        ("TCP_KEEPINTVL", settings.db_keepalive_interval_s),
        ("TCP_KEEPCNT", settings.db_keepalive_count),
    ):
        option = getattr(socket, name, None)
        if option is not None:
            sock.setsockopt(socket.IPPROTO_TCP, option, value)
