"""Run ``openrisk serve`` as a real subprocess on loopback, for the metrics and monitoring tests."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

OPENRISK = Path(sys.executable).with_name("openrisk")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def log_tail(path: Path, lines: int = 40) -> str:
    if not path.exists():
        return "(no log)"
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def base_env(database_url: str, **extra: str) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("OPENRISK_") and key.upper() != "PROMETHEUS_MULTIPROC_DIR"
    }
    env.update(
        OPENRISK_DATABASE_URL=database_url,
        OPENRISK_LOG_LEVEL="WARNING",
        OPENRISK_CACHE_BACKEND="memory",
    )
    env.update(extra)
    return env


def migrated_sqlite(directory: Path) -> str:
    """A fresh SQLite database at the head revision, for a server subprocess to open.

    Migrated in this process: a subprocess would first import the whole application again
    (seconds of CPU per database); ``openrisk db upgrade`` itself has its own CLI tests."""
    from openrisk.core.db.migrate import upgrade

    url = f"sqlite+aiosqlite:///{directory / 'openrisk.db'}"
    upgrade(url)
    return url


@dataclass
class Server:
    proc: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    def stop(self, timeout: float = 15) -> None:
        """SIGTERM (graceful: uvicorn drains and runs the lifespan shutdown), then SIGKILL."""
        stop_process(self.proc, timeout=timeout)


def stop_process(proc: subprocess.Popen[bytes], *, timeout: float = 15) -> None:
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        # Still unreaped, so its pid is still its process group (start_new_session=True),
        # which also holds any worker processes it started.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.kill()
        proc.wait(timeout=5)


def wait_until(
    check: Callable[[], bool], *, timeout: float, interval: float = 0.2, what: str
) -> None:
    """Poll ``check()`` until it returns true; fail naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except (httpx.HTTPError, OSError) as error:
            last_error = error
        time.sleep(interval)
    raise AssertionError(
        f"timed out after {timeout}s waiting for {what} (last error: {last_error})"
    )


@contextlib.contextmanager
def running_server(
    directory: Path,
    database_url: str,
    *,
    workers: int = 1,
    env: Mapping[str, str] | None = None,
    timeout: float = 60,
) -> Iterator[Server]:
    """Start ``openrisk serve`` on a free loopback port; yield once it answers readiness."""
    port = free_port()
    log = directory / f"openrisk-{port}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                str(OPENRISK),
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--workers",
                str(workers),
            ],
            env=base_env(database_url, **(env or {})),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = Server(proc=proc, port=port, log=log)
    try:

        def ready() -> bool:
            if proc.poll() is not None:
                raise AssertionError(f"openrisk serve exited {proc.returncode}:\n{log_tail(log)}")
            response = httpx.get(
                f"{server.base_url}/api/v1/health/ready", timeout=2, trust_env=False
            )
            return response.status_code == 200

        try:
            wait_until(ready, timeout=timeout, what="openrisk serve to become ready")
        except AssertionError as error:
            raise AssertionError(f"{error}\n--- server log\n{log_tail(log)}") from None
        yield server
    finally:
        server.stop()


def metric_value(text: str, sample_name: str, **labels: str) -> float | None:
    """Sum of the samples called ``sample_name`` whose labels include ``labels``; None if none."""
    total: float | None = None
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == sample_name and labels.items() <= sample.labels.items():
                total = (total or 0.0) + sample.value
    return total


def label_values(text: str, sample_name: str, label: str) -> set[str]:
    return {
        sample.labels[label]
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == sample_name and label in sample.labels
    }
