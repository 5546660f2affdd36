"""Where one request's time goes: milliseconds per stage, and the request's trace.

A completion's stages, in order: `request` (from its frame read to the handler), `document`
(the `didChange`s applied since the document's previous completion), `cache`, `gate`,
`follow`, `context`, `prompt`, `engineQueue` (remote: until the endpoint accepted it),
`firstToken`, `generation`, `postprocess`, `response` (building and writing the answer).
`coderLsp/completionLog` shows them per request; the debug log prints them.
"""

from __future__ import annotations

import time
from contextvars import ContextVar


class Stages:
    """Milliseconds per stage: each `mark` ends the stage that ran since the previous one."""

    __slots__ = ("_last", "ms")

    def __init__(self, start: float | None = None) -> None:
        self._last = time.perf_counter() if start is None else start
        self.ms: dict[str, float] = {}

    def mark(self, stage: str) -> None:
        now = time.perf_counter()
        self.add(stage, (now - self._last) * 1000)
        self._last = now

    def add(self, stage: str, ms: float) -> None:
        self.ms[stage] = self.ms.get(stage, 0.0) + ms

    def skip(self) -> None:
        """Start the next stage now (time since the last mark belongs to no stage)."""
        self._last = time.perf_counter()

    def rounded(self) -> dict[str, float]:
        return {name: round(ms, 3) for name, ms in self.ms.items()}

    def __str__(self) -> str:
        return " ".join(f"{name} {ms:.2f}" for name, ms in self.ms.items())


class Trace:
    """One message from the editor: its id, when its frame was read, and the stages of its
    answer (set by a handler that times them; `response` is marked once the answer is
    written)."""

    __slots__ = ("msg_id", "received", "stages")

    def __init__(self, received: float, msg_id: object = None) -> None:
        self.received = received
        self.msg_id = msg_id
        self.stages: Stages | None = None

    def answered(self, message: object) -> None:
        """`message` was just written: the end of `response` if it answers this request."""
        if (
            self.stages is not None
            and getattr(message, "id", None) == self.msg_id
            and getattr(message, "method", None) is None
        ):
            self.stages.mark("response")


TRACE: ContextVar[Trace | None] = ContextVar("coder_lsp_trace", default=None)
"""The message being handled (set when its frame is read; handler tasks and the callback
that sends their answer inherit it)."""
