"""A recording OpenAI-compatible stub on 127.0.0.1: what the remote engine sends, kept for tests.

It answers `GET /v1/models`, `GET /health`, `POST /v1/completions` (streamed or not) and
`POST /tokenize` like `vllm serve`, instantly, and records every request (path, headers, JSON
body). Each response is one write with TCP_NODELAY, so the stub adds no Nagle delay.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import msgspec


class Recorded(msgspec.Struct, frozen=True):
    method: str
    path: str
    headers: dict[str, str]
    body: Any


Reply = Callable[[str], str]
"""The completion text for a prompt."""


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _send(self, status: int, payload: bytes, content_type: str = "application/json") -> None:
        head = (
            f"HTTP/1.1 {status} {'OK' if status == 200 else 'Error'}\r\n"
            f"Content-Type: {content_type}\r\nContent-Length: {len(payload)}\r\n\r\n"
        ).encode()
        self.wfile.write(head + payload)  # one write per response
        self.wfile.flush()

    def _record(self, body: Any) -> None:
        with self.server.lock:
            self.server.requests.append(
                Recorded(self.command, self.path, dict(self.headers.items()), body)
            )

    def do_GET(self) -> None:
        self._record(None)
        if self.path.endswith("/models"):
            data = [{"id": self.server.model, "object": "model", "root": "", "parent": None}]
            self._send(200, json.dumps({"object": "list", "data": data}).encode())
        elif self.path == "/health":
            self._send(200, b"")
        else:
            self._send(404, b"{}")

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length) or b"{}")
        self._record(body)
        if self.path == "/tokenize":
            words = str(body.get("prompt", "")).split()
            tokens = [sum(map(ord, w)) % 50_000 for w in words]
            self._send(200, json.dumps({"tokens": tokens, "count": len(tokens)}).encode())
            return
        if self.path.endswith("/completions"):
            text = self.server.reply(str(body.get("prompt", "")))
            n = int(body.get("n", 1))
            if body.get("stream"):
                truncate = self.server.truncate
                events = []
                for i in range(n):
                    choice = {
                        "index": i,
                        "text": text,
                        "finish_reason": None if truncate else "stop",
                    }
                    events.append({"id": "cmpl-stub", "choices": [choice]})
                stream = "".join(f"data: {json.dumps(e)}\n\n" for e in events)
                end = "" if truncate else "data: [DONE]\n\n"
                self._send(200, (stream + end).encode(), "text/event-stream")
            else:
                choices = [{"index": i, "text": text, "finish_reason": "stop"} for i in range(n)]
                self._send(200, json.dumps({"id": "cmpl-stub", "choices": choices}).encode())
            return
        self._send(404, b"{}")


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, model: str, reply: Reply) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.model = model
        self.reply = reply
        self.truncate = False
        self.requests: list[Recorded] = []
        self.lock = threading.Lock()


class StubOpenAI:
    """`with StubOpenAI() as stub:` serves on `stub.url` (``.../v1``) until the block ends."""

    def __init__(self, model: str = "tiny-moe", reply: Reply = lambda prompt: "pass\n") -> None:
        self._server = _Server(model, reply)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/v1"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def truncate(self) -> bool:
        """Streams end without a finish and without `[DONE]` (a server dying mid-answer)."""
        return self._server.truncate

    @truncate.setter
    def truncate(self, value: bool) -> None:
        self._server.truncate = value

    @property
    def requests(self) -> list[Recorded]:
        with self._server.lock:
            return list(self._server.requests)

    def prompts(self) -> list[str]:
        """Every text sent for a model: completion prompts and /tokenize texts."""
        return [
            str(r.body.get("prompt", ""))
            for r in self.requests
            if r.method == "POST" and isinstance(r.body, dict)
        ]

    def __enter__(self) -> StubOpenAI:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
