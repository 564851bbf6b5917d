"""A minimal HTTP/1.1 keep-alive load generator for ``openrisk bench`` (asyncio streams).

Why not httpx: on this kind of machine httpx.AsyncClient spent 2-5 ms of CPU per request
(more with more connections) against 0.7 ms for the server to answer ``/api/v1/health``; the
client, not the server, set the throughput, and the cache's gain vanished in it. This client
does one thing — GETs over a fixed number of persistent connections, one request in flight per
connection — for ~0.1 ms a request, so the server is what is measured. Responses are parsed
properly (status line, headers, Content-Length or chunked bodies) and the connection is opened
again if the server closes it.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from urllib.parse import urlsplit


class ProtocolError(RuntimeError):
    pass


@dataclass
class Sample:
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    x_cache: Counter[str] = field(default_factory=Counter)
    elapsed_s: float = 0.0


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes


class Connection:
    """One persistent HTTP/1.1 connection; one request at a time."""

    def __init__(self, host: str, port: int, headers: Mapping[str, str]) -> None:
        self.host, self.port = host, port
        fixed = {"Host": f"{host}:{port}", "Connection": "keep-alive", **headers}
        self._fixed = "".join(f"{k}: {v}\r\n" for k, v in fixed.items()).encode("latin-1")
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def _connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self._reader is None or self._writer is None or self._writer.is_closing():
            self._reader, self._writer = await asyncio.open_connection(self.host, self.port)
        return self._reader, self._writer

    async def get(self, path: str) -> Answer:
        for attempt in (1, 2):  # a keep-alive connection the server closed: reconnect once
            reader, writer = await self._connect()
            try:
                writer.write(
                    b"GET " + path.encode("latin-1") + b" HTTP/1.1\r\n" + self._fixed + b"\r\n"
                )
                return await self._read(reader)
            except (ConnectionError, asyncio.IncompleteReadError):
                await self.close()
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    async def _read(self, reader: asyncio.StreamReader) -> Answer:
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/1."):
            raise ProtocolError(f"bad status line {lines[0]!r}")
        headers: dict[str, str] = {}
        for line in lines[1:]:
            if line:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
        if headers.get("transfer-encoding", "").lower() == "chunked":
            body = await self._read_chunked(reader)
        else:
            body = await reader.readexactly(int(headers.get("content-length", "0")))
        if headers.get("connection", "").lower() == "close":
            await self.close()
        return Answer(status=int(parts[1]), headers=headers, body=body)

    @staticmethod
    async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
        chunks: list[bytes] = []
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0].strip(), 16)
            if size == 0:
                while (await reader.readuntil(b"\r\n")) != b"\r\n":  # trailers
                    pass
                return b"".join(chunks)
            chunks.append(await reader.readexactly(size))
            await reader.readexactly(2)

    async def close(self) -> None:
        writer, self._reader, self._writer = self._writer, None, None
        if writer is not None:
            writer.close()
            with contextlib.suppress(ConnectionError, OSError):
                await writer.wait_closed()


async def hammer(
    base_url: str,
    paths: Sequence[str],
    *,
    headers: Mapping[str, str],
    duration_s: float,
    concurrency: int,
    on_progress: Callable[[float], None] | None = None,
) -> Sample:
    """`concurrency` connections send GETs round-robin over `paths` for `duration_s`."""
    address = urlsplit(base_url)
    host, port = address.hostname or "127.0.0.1", address.port or 80
    prefix = address.path.rstrip("/")
    sample = Sample()
    next_index = itertools.count()
    started = time.perf_counter()
    deadline = started + duration_s

    async def worker() -> None:
        connection = Connection(host, port, headers)
        try:
            while time.perf_counter() < deadline:
                path = prefix + paths[next(next_index) % len(paths)]
                sent = time.perf_counter()
                try:
                    answer = await connection.get(path)
                except (OSError, ProtocolError, asyncio.IncompleteReadError, ValueError):
                    sample.errors += 1
                    await connection.close()
                    continue
                sample.latencies.append(time.perf_counter() - sent)
                sample.statuses[answer.status] += 1
                if answer.status >= 400:
                    sample.errors += 1
                if status := answer.headers.get("x-cache"):
                    sample.x_cache[status] += 1
        finally:
            await connection.close()

    async def ticker() -> None:
        while on_progress is not None and time.perf_counter() < deadline:
            on_progress(time.perf_counter() - started)
            await asyncio.sleep(0.5)

    tick = asyncio.create_task(ticker())
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    tick.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await tick
    sample.elapsed_s = time.perf_counter() - started
    return sample
