"""`coder-lsp serve --tcp HOST:PORT` speaks the same protocol over a socket."""

from __future__ import annotations

import asyncio
import json
import socket
from typing import Any

from tests.lsp.helpers import SERVER


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _send(writer: asyncio.StreamWriter, message: dict[str, Any]) -> None:
    body = json.dumps(message).encode()
    writer.write(f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
    await writer.drain()


async def _receive(reader: asyncio.StreamReader) -> dict[str, Any]:
    length = 0
    while (line := await reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.decode().partition(":")
        if name.lower() == "content-length":
            length = int(value)
    return dict(json.loads(await reader.readexactly(length)))


async def test_initialize_and_shutdown_over_tcp() -> None:
    port = _free_port()
    cmd = [a for a in SERVER if a != "--stdio"] + ["--tcp", f"127.0.0.1:{port}"]
    proc = await asyncio.create_subprocess_exec(*cmd, stderr=asyncio.subprocess.DEVNULL)
    try:
        for _ in range(100):
            try:
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
                break
            except OSError:
                await asyncio.sleep(0.1)
        else:
            raise AssertionError("the server did not listen")
        await _send(
            writer,
            {
                "jsonrpc": "2.0",
                "id": 1,
                "method": "initialize",
                "params": {"processId": None, "rootUri": None, "capabilities": {}},
            },
        )
        response = await asyncio.wait_for(_receive(reader), 30)
        assert response["id"] == 1
        assert "inlineCompletionProvider" in response["result"]["capabilities"]
        await _send(writer, {"jsonrpc": "2.0", "id": 2, "method": "shutdown"})
        while (message := await asyncio.wait_for(_receive(reader), 30)).get("id") != 2:
            pass
        assert message["result"] is None
        writer.close()
    finally:
        if proc.returncode is None:
            proc.kill()
        await proc.wait()
