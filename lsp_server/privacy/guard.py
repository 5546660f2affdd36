"""The engine boundary: every prompt, of every feature, to every engine, is redacted here.

`EngineHost` wraps each engine it builds in `GuardedEngine`, and a tokenizer that sends text
to a server (`/tokenize`) in `GuardedTokenizer`. The features redact their prompts themselves
first, to budget tokens with the placeholders in place and to keep a secret that a window cut
whole; what reaches this layer is then already clean and passes unchanged (the redactor
remembers its own outputs), while anything a feature missed is caught.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

import msgspec

from engine import Engine, EngineState, GenerationChunk, GenerationRequest, RequestRecord
from engine.tokenizer import PromptTokenizer
from lsp_server.privacy.redact import Redactor, summary

log = logging.getLogger(__name__)


class GuardedEngine:
    """An `Engine` that redacts each request's prompt before the inner engine sees it."""

    def __init__(self, inner: Engine, redactor: Callable[[], Redactor]) -> None:
        self.inner = inner
        self._redactor = redactor
        self.caught = 0
        """Secrets found here, in prompts a feature had not redacted (should stay 0)."""

    @property
    def state(self) -> EngineState:
        return self.inner.state

    async def start(self) -> None:
        await self.inner.start()

    def generate(self, request: GenerationRequest) -> AsyncIterator[GenerationChunk]:
        redacted = self._redactor().redact(request.prompt)
        if redacted.spans:
            self.caught += len(redacted.spans)
            log.warning("redacted %s at the engine boundary", summary(redacted.kinds))
            request = msgspec.structs.replace(request, prompt=redacted.text)
        return self.inner.generate(request)

    def unfinished_requests(self) -> int:
        return self.inner.unfinished_requests()

    def request_log(self) -> list[RequestRecord]:
        return self.inner.request_log()

    async def shutdown(self) -> None:
        await self.inner.shutdown()

    def __getattr__(self, name: str) -> Any:
        # Optional capabilities of the inner engine (endpoints, plan, tokenizer_path, model).
        return getattr(self.inner, name)


def unwrap(engine: Engine | None) -> Engine | None:
    """The engine inside a `GuardedEngine` (or `engine` itself)."""
    return engine.inner if isinstance(engine, GuardedEngine) else engine


class GuardedTokenizer:
    """A `PromptTokenizer` that sends text elsewhere (a server's `/tokenize`): redacted first,
    so the counts are those of the prompt as it will be sent."""

    def __init__(self, inner: PromptTokenizer, redactor: Callable[[], Redactor]) -> None:
        self.inner = inner
        self._redactor = redactor

    def encode(self, text: str) -> list[int]:
        return self.inner.encode(self._redactor().redact(text).text)

    def single_token_id(self, text: str) -> int | None:
        return self.inner.single_token_id(self._redactor().redact(text).text)
