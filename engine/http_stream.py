"""Streamed POSTs on kept-alive HTTP/1.1 connections, each request sent in one write.

A completion request is the remote engine's hot path: on a server nearby its answer starts
within a millisecond. httpx writes a request's headers and its body separately, which wakes
the server twice (a scheduling round each on a small machine), and its layers cost a few
hundred microseconds more. Here h11 frames the request and the answer, one `write` sends the
request, and a connection whose answer was read to its end goes back to an idle list per
host. Failures are raised as httpx's exception types, so that callers handle one family.

Requests that httpx would send through a proxy (the `*_PROXY` variables) are not for this
path: `direct(url)` says which are.
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import socket
import ssl
import urllib.request
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import h11
import httpx

READ_SIZE = 1 << 16
MAX_IDLE = 8
"""Idle connections kept per host."""

_Key = tuple[str, str, int]


def direct(url: str) -> bool:
    """Whether a request to `url` goes straight to its host: no proxy applies to it and it
    carries no credentials of its own."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or parts.username or parts.password:
        return False  # credentials in the URL: httpx turns them into basic auth
    proxies = urllib.request.getproxies()
    if not (proxies.get(parts.scheme) or proxies.get("all")):
        return True
    return bool(urllib.request.proxy_bypass(parts.hostname or ""))


class _Connection:
    __slots__ = ("h11", "reader", "writer")

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.h11 = h11.Connection(h11.CLIENT)

    def usable(self) -> bool:
        """Still open, and the server has not closed its end while it was idle."""
        return not self.writer.is_closing() and not self.reader.at_eof()

    def close(self) -> None:
        """Close now: the server sees the connection end at once (an answer cut short is
        then aborted there), not when the event loop next runs the transport's close."""
        sock = self.writer.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        self.writer.close()


class StreamedResponse:
    """An answer whose body is read as it comes (`aiter_lines`, `aread`); `aclose` gives
    the connection back when the body was read to its end, and closes it otherwise."""

    def __init__(
        self,
        pool: StreamPool,
        key: _Key,
        connection: _Connection,
        status_code: int,
        read_timeout_s: float | None,
    ) -> None:
        self.status_code = status_code
        self._pool = pool
        self._key = key
        self._connection: _Connection | None = connection
        self._read_timeout_s = read_timeout_s
        self._ended = False

    async def _event(self) -> h11.Event:
        connection = self._connection
        if connection is None:
            raise httpx.ReadError("the response is closed")
        while True:
            try:
                event = connection.h11.next_event()
            except h11.RemoteProtocolError as exc:
                raise httpx.RemoteProtocolError(str(exc)) from exc
            if event is not h11.NEED_DATA:
                assert isinstance(event, h11.Event) or event is h11.PAUSED
                return event  # type: ignore[return-value]
            data = await _read(connection.reader, self._read_timeout_s)
            connection.h11.receive_data(data)

    async def aiter_bytes(self) -> AsyncIterator[bytes]:
        while not self._ended:
            event = await self._event()
            if isinstance(event, h11.Data):
                yield bytes(event.data)
            elif isinstance(event, h11.EndOfMessage):
                self._ended = True
            elif isinstance(event, h11.ConnectionClosed):
                raise httpx.RemoteProtocolError("the server closed the connection mid-answer")

    async def aiter_lines(self) -> AsyncIterator[str]:
        """The body's lines without their line ends (`\\n` or `\\r\\n`)."""
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        pending = ""
        async for chunk in self.aiter_bytes():
            pending += decoder.decode(chunk)
            if "\n" in pending:
                *lines, pending = pending.split("\n")
                for line in lines:
                    yield line[:-1] if line.endswith("\r") else line
        pending += decoder.decode(b"", final=True)
        if pending:
            yield pending

    async def aread(self) -> bytes:
        return b"".join([chunk async for chunk in self.aiter_bytes()])

    async def aclose(self) -> None:
        connection, self._connection = self._connection, None
        if connection is None:
            return
        if self._ended and connection.h11.our_state is h11.DONE:
            with contextlib.suppress(h11.LocalProtocolError):
                if connection.h11.their_state is h11.DONE:
                    connection.h11.start_next_cycle()
                    self._pool.release(self._key, connection)
                    return
        connection.close()


async def _read(reader: asyncio.StreamReader, timeout_s: float | None) -> bytes:
    try:
        async with asyncio.timeout(timeout_s):
            return await reader.read(READ_SIZE)
    except TimeoutError as exc:
        raise httpx.ReadTimeout("no data from the server in time") from exc
    except OSError as exc:
        raise httpx.ReadError(str(exc) or type(exc).__name__) from exc


class StreamPool:
    """Kept-alive connections per host, for streamed POSTs."""

    def __init__(
        self,
        *,
        headers: dict[str, str],
        ca_bundle: str | None,
        connect_timeout_s: float,
        read_timeout_s: float | None,
    ) -> None:
        self._headers = [(k, v) for k, v in headers.items()]
        self._ca_bundle = ca_bundle
        self._tls: ssl.SSLContext | None = None
        self._connect_timeout_s = connect_timeout_s
        self._read_timeout_s = read_timeout_s
        self._idle: dict[_Key, list[_Connection]] = {}

    def tls_context(self) -> ssl.SSLContext:
        if self._tls is None:
            import certifi  # httpx's own default bundle, so both paths trust the same CAs

            self._tls = ssl.create_default_context(cafile=self._ca_bundle or certifi.where())
        return self._tls

    async def _connect(self, key: _Key) -> _Connection:
        scheme, host, port = key
        tls = self.tls_context() if scheme == "https" else None
        try:
            async with asyncio.timeout(self._connect_timeout_s):
                reader, writer = await asyncio.open_connection(
                    host, port, ssl=tls, server_hostname=host if tls else None, limit=READ_SIZE
                )
        except TimeoutError as exc:
            raise httpx.ConnectTimeout(f"no connection to {host}:{port} in time") from exc
        except OSError as exc:
            raise httpx.ConnectError(str(exc) or type(exc).__name__) from exc
        return _Connection(reader, writer)  # asyncio sets TCP_NODELAY on TCP sockets

    def release(self, key: _Key, connection: _Connection) -> None:
        idle = self._idle.setdefault(key, [])
        if len(idle) < MAX_IDLE and connection.usable():
            idle.append(connection)
        else:
            connection.close()

    def _reuse(self, key: _Key) -> _Connection | None:
        idle = self._idle.get(key)
        while idle:
            connection = idle.pop()
            if connection.usable():
                return connection
            connection.close()
        return None

    async def post(self, url: str, body: bytes, headers: dict[str, str]) -> StreamedResponse:
        """POST `body` (JSON) to `url`; the answer once its status line and headers came."""
        parts = urlsplit(url)
        scheme = parts.scheme
        port = parts.port or (443 if scheme == "https" else 80)
        key = (scheme, parts.hostname or "", port)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        request = h11.Request(
            method="POST",
            target=target,
            headers=[
                ("Host", parts.netloc),
                ("Content-Type", "application/json"),
                ("Content-Length", str(len(body))),
                ("Accept", "text/event-stream"),
                *self._headers,
                *headers.items(),
            ],
        )
        for attempt in range(2):
            reused = self._reuse(key) if attempt == 0 else None
            connection = reused or await self._connect(key)
            wire = connection.h11.send(request) or b""
            wire += (connection.h11.send(h11.Data(data=body)) or b"") + (
                connection.h11.send(h11.EndOfMessage()) or b""
            )
            try:
                connection.writer.write(wire)  # one write: headers and body together
                response = StreamedResponse(self, key, connection, 0, self._read_timeout_s)
                event = await response._event()
                while isinstance(event, h11.InformationalResponse):  # 100 Continue and kin
                    event = await response._event()
            except (httpx.ReadError, httpx.RemoteProtocolError, OSError) as exc:
                connection.close()
                if reused is not None:
                    continue  # the server had closed the idle connection: once more, fresh
                if isinstance(exc, httpx.HTTPError):
                    raise
                raise httpx.WriteError(str(exc) or type(exc).__name__) from exc
            except BaseException:
                connection.close()
                raise
            if isinstance(event, h11.ConnectionClosed) and reused is not None:
                connection.close()
                continue
            if not isinstance(event, h11.Response):
                connection.close()
                raise httpx.RemoteProtocolError("the server closed the connection unanswered")
            response.status_code = event.status_code
            return response
        raise httpx.RemoteProtocolError("the server closed the connection unanswered")

    async def aclose(self) -> None:
        for idle in self._idle.values():
            for connection in idle:
                connection.close()
        self._idle.clear()
