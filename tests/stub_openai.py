"""A recording OpenAI-compatible stub on 127.0.0.1: what the remote engine sends, kept for tests.

It answers `GET /v1/models`, `GET /health`, `POST /v1/completions` (streamed or not) and
`POST /tokenize` like `vllm serve`, instantly, and records every request (path, headers, JSON
body). Each response is one write with TCP_NODELAY, so the stub adds no Nagle delay.

`stub.fault` makes `/v1/completions` misbehave the ways a real server can (`FAULTS`).
"""

from __future__ import annotations

import json
import socket
import struct
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import msgspec


class Recorded(msgspec.Struct, frozen=True):
    method: str
    path: str
    headers: dict[str, str]
    body: Any
    peer: int = 0
    """The client's port: one per connection."""


Reply = Callable[[str], str]
"""The completion text for a prompt."""

FAULTS = ("hang", "reset", "500", "garbage", "truncate")
"""hang: never answer; reset: close the connection with a TCP reset; 500: an HTTP error;
garbage: a 200 stream of bytes that are not server-sent events of JSON; truncate: events that
stop without a finish and without `[DONE]` (a server dying mid-answer)."""


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
        if not self.server.record_tokenize and self.path == "/tokenize":
            return
        with self.server.lock:
            self.server.requests.append(
                Recorded(
                    self.command,
                    self.path,
                    dict(self.headers.items()),
                    body,
                    peer=self.client_address[1],
                )
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
            if self._fault():
                return
            if self.server.delay_s:
                time.sleep(self.server.delay_s)  # a slow model
            text = self.server.reply(str(body.get("prompt", "")))
            n = int(body.get("n", 1))
            if body.get("stream"):
                truncate = self.server.fault == "truncate"
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

    def _fault(self) -> bool:
        """Misbehave as `server.fault` says; True when the request got no normal answer."""
        fault = self.server.fault
        if fault == "hang":
            self.server.released.wait()
            self.close_connection = True
        elif fault == "reset":
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.close_connection = True
        elif fault == "500":
            self._send(500, b'{"object": "error", "message": "internal error"}')
        elif fault == "garbage":
            self._send(
                200,
                b"\x00\xff\xfe<html>502</html>\ndata: {not json\n\ndata: [1, 2]\n\n",
                "text/event-stream",
            )
        else:
            return False
        return True


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that hangs up mid-answer (a cancelled generation) is not the stub's error.
        import sys

        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)

    def __init__(self, model: str, reply: Reply) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.model = model
        self.reply = reply
        self.fault: str | None = None
        self.released = threading.Event()
        self.record_tokenize = True
        self.delay_s = 0.0
        """Completions wait this long before answering (a slow model)."""
        self.requests: list[Recorded] = []
        self.lock = threading.Lock()


class StubOpenAI:
    """`with StubOpenAI() as stub:` serves on `stub.url` (``.../v1``) until the block ends."""

    def __init__(
        self,
        model: str = "tiny-moe",
        reply: Reply = lambda prompt: "pass\n",
        *,
        record_tokenize: bool = True,
    ) -> None:
        self._server = _Server(model, reply)
        self._server.record_tokenize = record_tokenize
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/v1"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def fault(self) -> str | None:
        """How `/v1/completions` misbehaves now (one of `FAULTS`), None: it answers."""
        return self._server.fault

    @fault.setter
    def fault(self, value: str | None) -> None:
        assert value is None or value in FAULTS, value
        self._server.fault = value

    @property
    def delay_s(self) -> float:
        """Seconds `/v1/completions` waits before it answers."""
        return self._server.delay_s

    @delay_s.setter
    def delay_s(self, value: float) -> None:
        self._server.delay_s = value

    @property
    def requests(self) -> list[Recorded]:
        with self._server.lock:
            return list(self._server.requests)

    def completion_bodies(self) -> list[dict[str, Any]]:
        """The JSON bodies of every `/v1/completions` request, in order."""
        return [
            r.body
            for r in self.requests
            if r.path.endswith("/completions") and isinstance(r.body, dict)
        ]

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
        self._server.released.set()  # hung requests end
        self._server.shutdown()
        self._server.server_close()
