"""`coder-lsp serve --tcp HOST:PORT`: loopback by default; other addresses need a token.

Whoever connects to the server can set its workspace root, open documents, list symbols and
drive the model. On a loopback address that is the user's own programs; any other address
needs `--allow-remote` and a token in `CODER_LSP_TCP_TOKEN` that the client presents as
`initializationOptions.authToken` in its `initialize` request. The first message is read and
checked before the protocol sees anything: a client without the right token gets no answer
and is disconnected, and the server goes on waiting for the right one. One client at a time,
as over stdio.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import ipaddress
import json
import logging
import os
import sys
import threading
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from lsp_server import rpc

if TYPE_CHECKING:
    from pygls.lsp.server import LanguageServer

log = logging.getLogger(__name__)

TOKEN_ENV = "CODER_LSP_TCP_TOKEN"
MIN_TOKEN_LENGTH = 16
FIRST_MESSAGE_TIMEOUT_S = 10.0
MAX_FIRST_MESSAGE = 1 << 20


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def tcp_token(host: str, allow_remote: bool) -> tuple[str | None, str | None]:
    """(the token clients must present or None, a one-line refusal or None)."""
    token = os.environ.get(TOKEN_ENV, "").strip() or None
    if is_loopback(host):
        return token, None  # a token set on a loopback server is required all the same
    if not allow_remote:
        return None, (
            f"coder-lsp serve: {host} is not a loopback address, and whoever can reach it could "
            "read your code and drive the model: add --allow-remote and set "
            f"{TOKEN_ENV} (clients send it as initializationOptions.authToken)"
        )
    if token is None or len(token) < MIN_TOKEN_LENGTH:
        return None, (
            f"coder-lsp serve: --allow-remote needs a token of at least {MIN_TOKEN_LENGTH} "
            f"characters in {TOKEN_ENV} (clients send it as initializationOptions.authToken)"
        )
    return token, None


class _Replay:
    """A stream reader that first gives back bytes already read."""

    def __init__(self, head: bytes, reader: asyncio.StreamReader) -> None:
        self._head = head
        self._reader = reader

    async def readline(self) -> bytes:
        if self._head:
            cut = self._head.find(b"\n") + 1 or len(self._head)
            line, self._head = self._head[:cut], self._head[cut:]
            return line
        return await self._reader.readline()

    async def readexactly(self, n: int) -> bytes:
        if self._head:
            part, self._head = self._head[:n], self._head[n:]
            if len(part) < n:
                part += await self._reader.readexactly(n - len(part))
            return part
        return await self._reader.readexactly(n)


async def _first_message(reader: asyncio.StreamReader) -> dict[str, Any] | None:
    length = 0
    while (line := await reader.readline()) not in (b"\r\n", b"\n", b""):
        name, _, value = line.decode("ascii", "replace").partition(":")
        if name.strip().lower() == "content-length" and value.strip().isdigit():
            length = int(value)
    if not 0 < length <= MAX_FIRST_MESSAGE:
        return None
    try:
        message = json.loads(await reader.readexactly(length))
    except (ValueError, asyncio.IncompleteReadError):
        return None
    return message if isinstance(message, dict) else None


def authorized(message: dict[str, Any] | None, token: str) -> bool:
    """Whether `message` is an `initialize` request carrying `token` (constant-time)."""
    if message is None or message.get("method") != "initialize":
        return False
    params = message.get("params")
    options = params.get("initializationOptions") if isinstance(params, dict) else None
    given = options.get("authToken") if isinstance(options, dict) else None
    if not isinstance(given, str):
        return False
    return hmac.compare_digest(given.encode(), token.encode())


def start_tcp(
    server: LanguageServer,
    host: str,
    port: int,
    token: str | None,
    *,
    on_start: Callable[[], None] | None = None,
    on_end: Callable[[str], Awaitable[None]] | None = None,
) -> int:
    """Serve one client at a time on HOST:PORT; with `token`, only a client presenting it.
    `on_start` runs in the event loop once the port listens; `on_end` when the client's
    connection ends. Says on stderr where it listens; the exit status: 2 when the port
    cannot be listened on (one line, no traceback), else 0."""
    stop_event = threading.Event()
    server._stop_event = stop_event
    busy = False

    async def connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal busy
        peer = writer.get_extra_info("peername")
        source: asyncio.StreamReader | _Replay = reader
        if token is not None:
            try:
                message = await asyncio.wait_for(_first_message(reader), FIRST_MESSAGE_TIMEOUT_S)
            except (TimeoutError, OSError, asyncio.IncompleteReadError):
                message = None
            if message is None or not authorized(message, token):
                log.warning("refused a TCP client from %s: no valid authToken", peer)
                writer.close()
                return
            body = json.dumps(message).encode()
            source = _Replay(f"Content-Length: {len(body)}\r\n\r\n".encode() + body, reader)
        if busy:
            log.warning("refused a TCP client from %s: another client is connected", peer)
            writer.close()
            return
        busy = True
        log.info("TCP client connected from %s", peer)
        server.protocol.set_writer(writer)
        await rpc.serve(source, server.protocol, stop_event)
        if on_end is not None:
            await on_end("the TCP client is gone")
        server.shutdown()  # type: ignore[no-untyped-call]

    async def serve() -> int:
        try:
            listener = await asyncio.start_server(connection, host, port)
        except OSError as exc:
            reason = exc.strerror or str(exc)
            sys.stderr.write(f"coder-lsp serve: cannot listen on {host}:{port}: {reason}\n")
            return 2
        server._server = listener
        where = ", ".join(_address(s.getsockname()) for s in listener.sockets)
        sys.stderr.write(f"coder-lsp: listening on {where} (LSP over TCP)\n")
        sys.stderr.flush()
        if on_start is not None:
            on_start()
        async with listener:
            with contextlib.suppress(asyncio.CancelledError):
                await listener.serve_forever()
        return 0

    return asyncio.run(serve())


def _address(name: Any) -> str:
    """HOST:PORT of a socket name (IPv6 hosts in brackets)."""
    host, port = name[0], name[1]
    return f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"
