"""``openrisk serve`` as a subprocess on a free loopback port, for load tests and benchmarks."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx

LOOPBACK = "127.0.0.1"
READY_PATH = "/api/v1/health/ready"
# Variables the harness sets itself; anything else OPENRISK_* in the caller's environment
# (a JWT secret, pool sizes) is passed through.
_MANAGED = ("PROMETHEUS_MULTIPROC_DIR",)


# What the harness changes from the defaults, for every load test and benchmark (reported).
# Pool: the development profile keeps 2 idle connections, so under concurrency every further
# connection was opened and closed again per request (72 PostgreSQL connections opened in a
# 30-second peak run instead of 25); keep up to 10 (= max open) instead.
HARNESS_SERVER_ENV: dict[str, str] = {"OPENRISK_POOL_MAX_IDLE": "10"}


def harness_env(extra: Mapping[str, str]) -> dict[str, str]:
    """HARNESS_SERVER_ENV unless the caller's environment sets the variable, then ``extra``."""
    env = {k: v for k, v in HARNESS_SERVER_ENV.items() if k not in os.environ}
    env.update(extra)
    return env


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


def openrisk_command() -> list[str]:
    """The `openrisk` console script of this interpreter's environment."""
    script = Path(sys.executable).with_name("openrisk")
    if script.exists():
        return [str(script)]
    found = shutil.which("openrisk")
    if found:
        return [found]
    return [sys.executable, "-c", "from openrisk.cli import app; app()"]


def server_env(overrides: Mapping[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k.upper() not in _MANAGED}
    env.update(overrides)
    return env


def log_tail(path: Path, lines: int = 30) -> str:
    if not path.exists():
        return "(no log)"
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


class ServerFailed(RuntimeError):
    """The server did not start (the message carries the end of its log)."""


@dataclass
class ServerProcess:
    proc: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def base_url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def cpu_seconds(self) -> float | None:
        """CPU time (user + system) used so far by the server and its worker processes, from
        /proc (Linux; None elsewhere). Per request it is a cost measure that other load on the
        machine barely changes, unlike latency and throughput."""
        return process_tree_cpu_seconds(self.proc.pid)

    def stop(self, timeout: float = 15) -> None:
        """SIGTERM (uvicorn drains, runs the shutdown), then SIGKILL of its process group."""
        proc = self.proc
        if proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.kill()
            proc.wait(timeout=5)


def _stat_fields(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return raw.rsplit(")", 1)[1].split()  # after "pid (comm)": state, ppid, …


def process_tree_cpu_seconds(root: int) -> float | None:
    """utime + stime of ``root`` and its descendants (live ones), in seconds."""
    if not Path("/proc").is_dir():
        return None
    children: dict[int, list[int]] = {}
    stats: dict[int, list[str]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (fields := _stat_fields(int(entry.name))) is not None:
            stats[int(entry.name)] = fields
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    if root not in stats:
        return None
    ticks, pending = 0, [root]
    while pending:
        pid = pending.pop()
        if pid in stats:
            ticks += int(stats[pid][11]) + int(stats[pid][12])  # utime, stime
        pending += children.get(pid, [])
    return ticks / os.sysconf("SC_CLK_TCK")


def _wait_ready(server: ServerProcess, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    last: str = ""
    with httpx.Client(timeout=2, trust_env=False) as client:
        while time.monotonic() < deadline:
            if server.proc.poll() is not None:
                raise ServerFailed(
                    f"openrisk serve exited with {server.proc.returncode}:\n{log_tail(server.log)}"
                )
            try:
                response = client.get(server.base_url + READY_PATH)
                if response.status_code == 200:
                    return
                last = f"HTTP {response.status_code}: {response.text[:200]}"
            except httpx.HTTPError as error:
                last = repr(error)
            time.sleep(0.2)
    raise ServerFailed(
        f"openrisk serve not ready after {timeout:.0f}s ({last})\n{log_tail(server.log)}"
    )


@contextlib.contextmanager
def running_server(
    *,
    env: Mapping[str, str],
    workers: int,
    log: Path,
    ready_timeout: float = 90,
    command: Sequence[str] | None = None,
) -> Iterator[ServerProcess]:
    """Start ``openrisk serve --host 127.0.0.1 --port <free> --workers N``; yield once ready.
    ``command`` is the ``openrisk`` to run (another checkout's, to compare), else this one."""
    port = free_port()
    log.parent.mkdir(parents=True, exist_ok=True)
    command = [
        *(command or openrisk_command()),
        "serve",
        "--host",
        LOOPBACK,
        "--port",
        str(port),
        "--workers",
        str(workers),
    ]
    with log.open("wb") as out:
        proc = subprocess.Popen(
            command,
            env=server_env(env),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = ServerProcess(proc=proc, port=port, log=log)
    try:
        _wait_ready(server, ready_timeout)
        yield server
    finally:
        server.stop()
