"""Logs carrying the request id of the request being served: JSON lines for machines (files,
pipes, log shippers), short readable lines for a person at a terminal."""

from __future__ import annotations

import logging
import sys
from contextvars import ContextVar
from datetime import UTC, datetime

import orjson

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)

_STANDARD_ATTRS = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "color_message"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = request_id_var.get()
        if request_id:
            entry["request_id"] = request_id
        for key, value in record.__dict__.items():
            if key not in _STANDARD_ATTRS and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str).decode()


class HumanFormatter(logging.Formatter):
    """``12:04:05 INFO  GET /risks 200 3.1 ms``: one short line per record, for a terminal."""

    def format(self, record: logging.LogRecord) -> str:
        when = datetime.fromtimestamp(record.created).strftime("%H:%M:%S")
        extra = record.__dict__
        if record.name == "openrisk.access" and "status" in extra:
            text = f"{extra['method']} {extra['path']} {extra['status']} {extra['duration_ms']} ms"
        else:
            text = f"{record.name}: {record.getMessage()}"
        line = f"{when} {record.levelname:<5} {text}"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


def json_wanted(setting: bool | None) -> bool:
    """``OPENRISK_LOG_JSON`` when set; otherwise JSON unless stderr is a terminal."""
    if setting is not None:
        return setting
    return not (hasattr(sys.stderr, "isatty") and sys.stderr.isatty())


def configure_logging(*, level: str = "INFO", json: bool | None = None) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if json_wanted(json) else HumanFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("uvicorn.access", "alembic.runtime.migration", "httpx", "sqlalchemy.pool"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
