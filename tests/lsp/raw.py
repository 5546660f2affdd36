"""A raw LSP peer: `coder-lsp serve --stdio` driven with hand-made frames, for the protocol
fuzzer and the fault tests (pygls' client would refuse to send what they send)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
import time
from collections import defaultdict
from typing import Any

import psutil

SERVER = [sys.executable, "-m", "lsp_server", "serve", "--stdio"]


class RawServer:
    """The server as a subprocess: frames out, every message in (responses by id)."""

    def __init__(self, *args: str, env: dict[str, str] | None = None) -> None:
        self.args = args
        self.env = {**os.environ, **(env or {})}
        self.proc: asyncio.subprocess.Process | None = None
        self.responses: dict[Any, list[dict[str, Any]]] = defaultdict(list)
        self.arrived: dict[Any, float] = {}
        """When each id's first response was read (`time.perf_counter`), for timings."""
        self.notifications: list[dict[str, Any]] = []
        self.requests: list[dict[str, Any]] = []
        """Requests the server sent the client (answered with null)."""
        self.stderr = bytearray()
        self._arrived = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        self.proc = await asyncio.create_subprocess_exec(
            *SERVER,
            *self.args,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=self.env,
            start_new_session=True,
        )
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._read()), loop.create_task(self._drain())]

    async def _drain(self) -> None:
        assert self.proc is not None and self.proc.stderr is not None
        while chunk := await self.proc.stderr.read(1 << 16):
            self.stderr += chunk

    async def _read(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        out = self.proc.stdout
        while True:
            length = 0
            while (line := await out.readline()) not in (b"\r\n", b""):
                name, _, value = line.decode("ascii", "replace").partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value)
            if line == b"":
                return
            message = json.loads(await out.readexactly(length))
            if "method" in message and "id" in message:
                self.requests.append(message)
                await self.write({"jsonrpc": "2.0", "id": message["id"], "result": None})
            elif "method" in message:
                self.notifications.append(message)
            else:
                self.arrived.setdefault(message.get("id"), time.perf_counter())
                self.responses[message.get("id")].append(message)
            self._arrived.set()

    async def write_raw(self, body: bytes, *, header: bytes | None = None) -> None:
        assert self.proc is not None and self.proc.stdin is not None
        head = header if header is not None else f"Content-Length: {len(body)}\r\n\r\n".encode()
        self.proc.stdin.write(head + body)
        await self.proc.stdin.drain()

    async def write(self, message: Any) -> None:
        await self.write_raw(json.dumps(message).encode())

    async def request(self, id_: Any, method: str, params: Any = None) -> None:
        message: dict[str, Any] = {"jsonrpc": "2.0", "id": id_, "method": method}
        if params is not None:
            message["params"] = params
        await self.write(message)

    async def notify(self, method: str, params: Any = None) -> None:
        message: dict[str, Any] = {"jsonrpc": "2.0", "method": method}
        if params is not None:
            message["params"] = params
        await self.write(message)

    async def response(self, id_: Any, timeout: float = 30.0) -> dict[str, Any]:
        """The first response to `id_` (waiting for it)."""
        deadline = time.monotonic() + timeout
        while not self.responses.get(id_):
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no response to {id_!r} in {timeout} s")
            self._arrived.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._arrived.wait(), min(left, 0.5))
            if self.proc is not None and self.proc.returncode is not None:
                raise RuntimeError(f"the server exited ({self.proc.returncode})")
        return self.responses[id_][0]

    async def call(self, id_: Any, method: str, params: Any = None, timeout: float = 30.0) -> Any:
        await self.request(id_, method, params)
        return await self.response(id_, timeout)

    async def initialize(
        self,
        options: dict[str, Any] | None = None,
        root: str | None = None,
        process_id: int | None = None,
    ) -> Any:
        """`process_id`: the editor's process the server watches (default: this one)."""
        result = await self.call(
            0,
            "initialize",
            {
                "processId": os.getpid() if process_id is None else process_id,
                "rootUri": root,
                "capabilities": {"window": {"workDoneProgress": True}},
                "initializationOptions": options,
            },
        )
        await self.notify("initialized", {})
        return result

    async def wait_ready(self, timeout: float = 300.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        n = 0
        while time.monotonic() < deadline:
            n += 1
            stats = (await self.call(f"ready-{n}", "coderLsp/engineStats"))["result"]
            if stats["state"] in ("ready", "failed"):
                return dict(stats)
            await asyncio.sleep(0.2)
        raise TimeoutError("the engine did not load")

    def processes(self) -> list[psutil.Process]:
        """The server and every process under it (vLLM's engine core included)."""
        assert self.proc is not None
        try:
            root = psutil.Process(self.proc.pid)
            return [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []

    async def close_stdin(self) -> None:
        """What an editor that dies does to the server's input."""
        assert self.proc is not None and self.proc.stdin is not None
        self.proc.stdin.close()
        with contextlib.suppress(ConnectionError):
            await self.proc.stdin.wait_closed()

    def alive(self) -> bool:
        return self.proc is not None and self.proc.returncode is None

    async def stop(self) -> None:
        """shutdown + exit, then make sure the whole process group is gone."""
        if self.proc is None:
            return
        if self.alive():
            with contextlib.suppress(Exception):
                await self.call("bye", "shutdown", timeout=30)
                await self.notify("exit")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.proc.wait(), 30)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        await self.proc.wait()
        for task in self._tasks:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(task, 5)
