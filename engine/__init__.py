"""Models and generation for coder-lsp: the Engine protocol and its request/result types.

This package knows nothing about the Language Server Protocol.
"""

from __future__ import annotations

import enum
from collections import deque
from collections.abc import AsyncIterator
from typing import Protocol, runtime_checkable

import msgspec


class EngineStatus(enum.Enum):
    """Lifecycle of an engine."""

    STARTING = "starting"
    READY = "ready"
    FAILED = "failed"
    STOPPED = "stopped"


class EngineState(msgspec.Struct, frozen=True):
    """What an engine is doing; `reason` says why it failed or what it is loading."""

    status: EngineStatus
    reason: str = ""
    model: str = ""


class GenerationRequest(msgspec.Struct, frozen=True, omit_defaults=True):
    """One generation: a fully rendered prompt and how to sample from it."""

    prompt: str
    max_tokens: int = 64
    temperature: float = 0.0
    top_p: float = 1.0
    stop: list[str] = []
    n: int = 1
    logprobs: bool = False
    ignore_eos: bool = False
    request_id: str = ""
    lora: str = ""
    """A LoRA adapter the engine has loaded, by name; "" for the base model."""


class GenerationChunk(msgspec.Struct, frozen=True):
    """The text generated so far for one sample, as it grows.

    `text` is cumulative. `finished` is set on the last chunk of a sample, with
    `finish_reason` ("stop", "length", "abort") and the mean token log-probability when
    logprobs were requested.
    """

    index: int
    text: str
    token_count: int
    finished: bool = False
    finish_reason: str | None = None
    mean_logprob: float | None = None


class RequestRecord(msgspec.Struct, frozen=True):
    """What the engine was asked and how the request ended ("running", "finished", "aborted",
    "failed"): the engine's own record, for status displays and tests."""

    request_id: str
    prompt: str
    status: str
    max_tokens: int = 0
    tokens: int = 0
    lora: str = ""


class RequestLog:
    """The most recent requests of an engine and how each ended, one record per request."""

    def __init__(self, size: int = 64) -> None:
        self._records: deque[RequestRecord] = deque(maxlen=size)

    def record(
        self, request: GenerationRequest, request_id: str, status: str, tokens: int = 0
    ) -> None:
        """Record or update `request_id`'s state (it moves to the newest place)."""
        for i, rec in enumerate(self._records):
            if rec.request_id == request_id:
                del self._records[i]
                break
        self._records.append(
            RequestRecord(
                request_id, request.prompt, status, request.max_tokens, tokens, request.lora
            )
        )

    def records(self) -> list[RequestRecord]:
        """Oldest first."""
        return list(self._records)


class EngineError(Exception):
    """A request could not be served; the engine may still be healthy."""


class EngineNotReady(EngineError):
    """The engine is starting, failed or stopped."""


@runtime_checkable
class Engine(Protocol):
    """A text generator. Cancelling the task iterating `generate` aborts the request."""

    @property
    def state(self) -> EngineState: ...

    async def start(self) -> None:
        """Load the model; on failure the state becomes FAILED with the reason."""
        ...

    def generate(self, request: GenerationRequest) -> AsyncIterator[GenerationChunk]: ...

    def unfinished_requests(self) -> int:
        """Requests the engine itself still holds (read from the engine, not counted here)."""
        ...

    def request_log(self) -> list[RequestRecord]:
        """The most recent requests, oldest first."""
        ...

    async def shutdown(self) -> None: ...


__all__ = [
    "Engine",
    "EngineError",
    "EngineNotReady",
    "EngineState",
    "EngineStatus",
    "GenerationChunk",
    "GenerationRequest",
    "RequestLog",
    "RequestRecord",
]
