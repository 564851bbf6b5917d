"""Reachability of the external services the suite uses, and the CI rule for skips.

Outside CI a missing PostgreSQL, Redis, Chromium or promtool skips the tests that need it, with
the reason. With CI=true such a skip is a failure: .ci/run must provide the service.
"""

from __future__ import annotations

import os
import shutil
import socket

import pytest

IN_CI = os.environ.get("CI") == "true"
PG_ADMIN_URL = os.environ.get(
    "OPENRISK_TEST_PG_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
)
REDIS_URL = os.environ.get("OPENRISK_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def need(available: bool, what: str) -> None:
    """Skip (or, in CI, fail) the current test when ``what`` is not available."""
    if available:
        return
    if IN_CI:
        pytest.fail(f"{what} is required in CI (CI=true); .ci/run must provide it")
    pytest.skip(f"{what} not available")


def postgres_available() -> bool:
    return port_open("127.0.0.1", 5432)


def redis_available() -> bool:
    return port_open("127.0.0.1", 6379)


def chromium_path() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")
