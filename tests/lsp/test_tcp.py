"""`coder-lsp serve --tcp HOST:PORT` speaks the same protocol over a socket."""

from __future__ import annotations

import asyncio
import json
import os
import socket
from typing import Any

import pytest

from tests.lsp.helpers import SERVER

pytestmark = pytest.mark.scripted  # no vLLM: the fast server tier


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


async def _serve(*extra: str, env: dict[str, str] | None = None) -> asyncio.subprocess.Process:
    cmd = [a for a in SERVER if a != "--stdio"]
    return await asyncio.create_subprocess_exec(
        *cmd,
        *extra,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, **(env or {})},
    )


INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {"processId": None, "rootUri": None, "capabilities": {}},
}


@pytest.mark.parametrize(
    ("extra", "env", "said"),
    [
        pytest.param([], {}, "is not a loopback address", id="no-allow-remote"),
        pytest.param(["--allow-remote"], {}, "needs a token", id="no-token"),
        pytest.param(
            ["--allow-remote"], {"CODER_LSP_TCP_TOKEN": "short"}, "at least 16", id="short-token"
        ),
    ],
)
async def test_a_non_loopback_address_needs_allow_remote_and_a_token(
    extra: list[str], env: dict[str, str], said: str
) -> None:
    proc = await _serve("--tcp", f"0.0.0.0:{_free_port()}", *extra, env=env)
    _, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 2
    lines = err.decode().strip().splitlines()
    assert len(lines) == 1 and said in lines[0], lines


async def test_a_client_without_the_token_gets_no_answer() -> None:
    token = "a-long-enough-token-0123456789"
    port = _free_port()
    proc = await _serve(
        "--tcp", f"0.0.0.0:{port}", "--allow-remote", env={"CODER_LSP_TCP_TOKEN": token}
    )
    drain = asyncio.get_running_loop().create_task(proc.stderr.read())  # type: ignore[union-attr]
    try:
        for _ in range(100):
            try:
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
                break
            except OSError:
                await asyncio.sleep(0.1)
        else:
            raise AssertionError("the server did not listen")
        # No token, then a wrong one: no answer, the connection is closed.
        for options in (None, {"authToken": "a-long-enough-token-0123456788"}):
            if options is not None:
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
            message = json.loads(json.dumps(INITIALIZE))
            message["params"]["initializationOptions"] = options
            await _send(writer, message)
            assert await asyncio.wait_for(reader.read(), 30) == b"", "closed without an answer"
            writer.close()
        # The right token: served as over stdio, and the token is not taken for a setting.
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        message = json.loads(json.dumps(INITIALIZE))
        message["params"]["initializationOptions"] = {"authToken": token}
        await _send(writer, message)
        response = await asyncio.wait_for(_receive(reader), 30)
        assert (
            response["id"] == 1 and "inlineCompletionProvider" in response["result"]["capabilities"]
        )
        await _send(writer, {"jsonrpc": "2.0", "method": "initialized", "params": {}})
        await _send(writer, {"jsonrpc": "2.0", "id": 2, "method": "shutdown"})
        while (answer := await asyncio.wait_for(_receive(reader), 30)).get("id") != 2:
            assert "authToken" not in json.dumps(answer), answer
        writer.close()
    finally:
        if proc.returncode is None:
            proc.kill()
        await proc.wait()
        await drain
