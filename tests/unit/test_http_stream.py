"""The remote engine's own HTTP/1.1 connections: one write per request, kept alive, closed
idle connections retried, chunked answers split into lines, httpx's errors."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import AsyncIterator, Awaitable, Callable

import httpx
import pytest

from engine.http_stream import StreamPool, direct

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@contextlib.asynccontextmanager
async def serving(handler: Handler) -> AsyncIterator[str]:
    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}/v1/completions"
    finally:
        server.close()


async def read_request(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    length = next(
        int(line.split(b":")[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length")
    )
    return head + await reader.readexactly(length)


def chunked(body: bytes, cuts: tuple[int, ...]) -> bytes:
    """A chunked 200 answer of `body`, cut at `cuts` (lines split across chunks)."""
    edges = [0, *cuts, len(body)]
    parts = [body[a:b] for a, b in itertools.pairwise(edges)]
    framed = b"".join(b"%x\r\n%s\r\n" % (len(part), part) for part in parts)
    head = (
        b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    return head + framed + b"0\r\n\r\n"


CHUNKED = chunked(b'data: {"a":1}\r\n\r\ndata: [DONE]\r\n\r\n', (3, 14, 20))


def pool(read_timeout_s: float | None = 5.0) -> StreamPool:
    return StreamPool(
        headers={"Authorization": "Bearer k"},
        ca_bundle=None,
        connect_timeout_s=2.0,
        read_timeout_s=read_timeout_s,
    )


async def test_a_request_is_one_write_and_its_connection_is_kept(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    received: list[bytes] = []
    peers: set[object] = set()

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peers.add(writer.get_extra_info("peername"))
        while not reader.at_eof():
            try:
                received.append(await read_request(reader))
            except asyncio.IncompleteReadError:
                break
            writer.write(CHUNKED)
            await writer.drain()

    writes: list[bytes] = []
    original = asyncio.StreamWriter.write

    def spy(self: asyncio.StreamWriter, data: bytes) -> None:
        writes.append(bytes(data))
        original(self, data)

    monkeypatch.setattr(asyncio.StreamWriter, "write", spy)
    streams = pool()
    async with serving(handler) as url:
        for _ in range(3):
            response = await streams.post(url, b'{"prompt": "x"}', {"X-Request-Id": "r1"})
            assert response.status_code == 200
            lines = [line async for line in response.aiter_lines()]
            assert lines == ['data: {"a":1}', "", "data: [DONE]", ""]
            await response.aclose()
        await streams.aclose()
    client_writes = [w for w in writes if w.startswith(b"POST ")]
    assert len(client_writes) == 3 and all(w.endswith(b'{"prompt": "x"}') for w in client_writes)
    assert b"authorization: Bearer k" in received[0].lower().replace(b"bearer", b"Bearer")
    assert b"x-request-id: r1" in received[0].lower()
    assert len(peers) == 1, "the three requests shared one connection"


async def test_an_idle_connection_the_server_closed_is_replaced() -> None:
    connections = 0

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        await read_request(reader)
        writer.write(CHUNKED)
        await writer.drain()
        writer.close()  # no keep-alive, without saying so

    streams = pool()
    async with serving(handler) as url:
        for _ in range(2):
            response = await streams.post(url, b"{}", {})
            assert await response.aread()
            await response.aclose()
            await asyncio.sleep(0.05)
        await streams.aclose()
    assert connections == 2


async def test_errors_are_httpx_errors() -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        await asyncio.sleep(5)

    async with serving(silent) as url:
        with pytest.raises(httpx.ReadTimeout):
            await pool(read_timeout_s=0.2).post(url, b"{}", {})
    closed = url  # that server is gone now
    with pytest.raises(httpx.ConnectError):
        await pool().post(closed, b"{}", {})

    async def unanswered(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.close()

    async with serving(unanswered) as url:
        with pytest.raises(httpx.RemoteProtocolError):
            await pool().post(url, b"{}", {})


def test_requests_through_a_proxy_are_left_to_httpx(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "http_proxy",
        "HTTP_PROXY",
        "https_proxy",
        "HTTPS_PROXY",
        "all_proxy",
        "ALL_PROXY",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    monkeypatch.delenv("NO_PROXY", raising=False)
    assert direct("http://gpu-box:8000/v1")
    assert not direct("http://user:secret@gpu-box:8000/v1")  # basic auth: httpx's job
    monkeypatch.setenv("HTTP_PROXY", "http://proxy.internal:3128")
    assert not direct("http://gpu-box:8000/v1")
    assert direct("https://gpu-box:8000/v1")  # no proxy for https
    monkeypatch.setenv("NO_PROXY", "gpu-box")
    assert direct("http://gpu-box:8000/v1")
