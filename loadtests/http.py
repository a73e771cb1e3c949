"""A lean HTTP/1.1 keep-alive client for the load generator.

httpx costs about 2 ms of CPU per request, which on a 2-core machine takes a good share of what
the service under test needs. This client writes prebuilt request heads on plain asyncio streams
and reads `Content-Length` (or chunked) answers: enough for a JSON API on loopback, about ten
times cheaper.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Mapping

_MAX_HEAD = 64 * 1024
IDLE_REUSE_S = 3.0  # uvicorn closes keep-alive connections idle for 5 s; do not reuse older ones


class HttpError(OSError):
    """The connection failed or the answer was not HTTP/1.1 we understand."""


class _Connection:
    """One keep-alive connection."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Wrap an open stream pair."""
        self.reader = reader
        self.writer = writer
        self.idle_since = time.monotonic()

    async def close(self) -> None:
        """Close the socket."""
        self.writer.close()
        with contextlib.suppress(OSError):
            await self.writer.wait_closed()


class HttpPool:
    """Up to `size` keep-alive connections to one host; each request takes one for its time."""

    def __init__(
        self, host: str, port: int, *, size: int, headers: Mapping[str, str], timeout_s: float
    ) -> None:
        """Prepare the pool; connections open on first use."""
        self._host = host
        self._port = port
        self._timeout_s = timeout_s
        common = {"Host": f"{host}:{port}", "Connection": "keep-alive", **headers}
        self._common = "".join(f"{k}: {v}\r\n" for k, v in common.items()).encode("latin-1")
        self._idle: list[_Connection] = []
        self._slots = asyncio.Semaphore(size)
        self._closed = False

    async def request(self, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes]:
        """Send one request; return the status and the body.

        A kept-alive connection the server closed meanwhile fails before any answer arrives;
        the request is then sent once more on a new connection (the API's writes are idempotent
        or, like POST /calls with an `external_id`, made so).
        """
        async with self._slots:
            connection = await self._take()
            reused = connection is not None
            while True:
                if connection is None:
                    connection = await self._open()
                try:
                    status, answer, keep = await asyncio.wait_for(
                        self._exchange(connection, method, path, body), self._timeout_s
                    )
                except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError) as exc:
                    await connection.close()
                    stale = isinstance(exc, ConnectionError) or (
                        isinstance(exc, asyncio.IncompleteReadError) and not exc.partial
                    )
                    if reused and stale:
                        connection, reused = None, False
                        continue
                    raise HttpError(f"{method} {path}: {type(exc).__name__}: {exc}") from exc
                except BaseException:
                    await connection.close()
                    raise
                break
            if keep and not self._closed:
                connection.idle_since = time.monotonic()
                self._idle.append(connection)
            else:
                await connection.close()
            return status, answer

    async def _take(self) -> _Connection | None:
        """An idle connection recent enough to reuse, if any (older ones are closed)."""
        now = time.monotonic()
        while self._idle:
            connection = self._idle.pop()
            if now - connection.idle_since < IDLE_REUSE_S:
                return connection
            await connection.close()
        return None

    async def _open(self) -> _Connection:
        """A new connection."""
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(self._host, self._port, limit=_MAX_HEAD), self._timeout_s
            )
        except OSError as exc:
            raise HttpError(f"cannot connect to {self._host}:{self._port}: {exc}") from exc
        return _Connection(reader, writer)

    async def _exchange(
        self, connection: _Connection, method: str, path: str, body: bytes | None
    ) -> tuple[int, bytes, bool]:
        """Write the request, read the answer; say whether the connection may be reused."""
        payload = body or b""
        head = f"{method} {path} HTTP/1.1\r\n".encode("latin-1") + self._common
        if body is not None or method in ("POST", "PUT", "PATCH"):
            head += b"Content-Length: %d\r\n" % len(payload)
        connection.writer.write(head + b"\r\n" + payload)
        reader = connection.reader
        status_line, *header_lines = (
            (await reader.readuntil(b"\r\n\r\n"))[:-4].decode("latin-1").split("\r\n")
        )
        version, _, rest = status_line.partition(" ")
        if not version.startswith("HTTP/1."):
            raise HttpError(f"not an HTTP/1.x answer: {status_line!r}")
        status = int(rest[:3])
        headers: dict[str, str] = {}
        for line in header_lines:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        if "content-length" in headers:
            answer = await reader.readexactly(int(headers["content-length"]))
        elif headers.get("transfer-encoding", "").lower() == "chunked":
            answer = await self._read_chunked(reader)
        elif status in (204, 304) or 100 <= status < 200:
            answer = b""
        else:  # the body runs until the server closes
            return status, await reader.read(), False
        keep = headers.get("connection", "").lower() != "close" and version == "HTTP/1.1"
        return status, answer, keep

    @staticmethod
    async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
        """Read a chunked body (and its trailers)."""
        parts: list[bytes] = []
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0].strip(), 16)
            if size == 0:
                while await reader.readuntil(b"\r\n") != b"\r\n":
                    pass
                return b"".join(parts)
            parts.append(await reader.readexactly(size))
            await reader.readexactly(2)

    async def aclose(self) -> None:
        """Close the idle connections (busy ones close when their request ends)."""
        self._closed = True
        idle, self._idle = self._idle, []
        for connection in idle:
            await connection.close()
