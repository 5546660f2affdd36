"""Generations in flight, shared by the requests that wait on them.

A request whose prefix is an in-flight generation's prefix plus (part of) the text it has
generated so far (nothing, for a request at the same cursor) follows that generation instead
of starting another: typing the characters the model is producing costs no new engine
request. When the last request waiting on a generation is cancelled, the generation is
aborted after a short grace period, long enough for the next keystroke's request (editors
cancel the old request and send the new one together) to pick it up.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

from lsp_server.completion.cache import PREFIX_CHARS, SUFFIX_CHARS, typed_since

__all__ = ["Stream", "Streams"]

DEFAULT_GRACE_S = 0.25
"""How long an unwatched generation keeps running before it is aborted."""

Produce = Callable[["Stream"], Awaitable[tuple[str, ...]]]
"""Runs the generation; calls :meth:`Stream.grow` as text arrives; returns finalized items."""


class Stream:
    """One generation at one cursor; ``items`` (finalized) are the result of its task."""

    def __init__(
        self, prefix: str, suffix: str, tag: str, produce: Produce, grace_s: float
    ) -> None:
        self.prefix_len = len(prefix)
        self.prefix_tail = prefix[-PREFIX_CHARS:]
        self.suffix_head = suffix[:SUFFIX_CHARS]
        self.tag = tag
        self.text = ""
        """Raw text of the first sample so far."""
        self.grace_s = grace_s
        self._waiting = 0
        self._abort: asyncio.TimerHandle | None = None
        self.task: asyncio.Task[tuple[str, ...]] = asyncio.ensure_future(produce(self))

    def grow(self, text: str) -> None:
        """Record the first sample's text so far."""
        self.text = text

    def typed(self, prefix: str, suffix: str, tag: str) -> str | None:
        """What was typed since this generation's cursor, if it agrees with the model so far."""
        if self.task.done() and (self.task.cancelled() or self.task.exception() is not None):
            return None
        same_suffix = tag == self.tag and suffix[:SUFFIX_CHARS] == self.suffix_head
        typed = typed_since(prefix, self.prefix_len, self.prefix_tail, same_suffix)
        if typed is None:
            return None
        # Only what the model has already produced: following on a guess would make the
        # request wait for a generation that may not agree with the typing after all.
        return typed if self.text.startswith(typed) else None

    async def result(self) -> tuple[str, ...]:
        """Wait for the items. Cancelling the waiter lets the generation go after the grace."""
        self._waiting += 1
        if self._abort is not None:
            self._abort.cancel()
            self._abort = None
        try:
            return await asyncio.shield(self.task)
        finally:
            self._waiting -= 1
            if self._waiting == 0 and not self.task.done():
                self._schedule_abort()

    def abort(self) -> None:
        """Stop the generation now (the engine aborts the request)."""
        if self._abort is not None:
            self._abort.cancel()
            self._abort = None
        self.task.cancel()

    def _schedule_abort(self) -> None:
        if self.grace_s <= 0:
            self.task.cancel()
            return
        loop = asyncio.get_running_loop()
        self._abort = loop.call_later(self.grace_s, self._abort_if_unwatched)

    def _abort_if_unwatched(self) -> None:
        self._abort = None
        if self._waiting == 0:
            self.task.cancel()


class Streams:
    """The latest generation per key (a document): a newer unrelated one supersedes it."""

    def __init__(self, grace_s: float = DEFAULT_GRACE_S) -> None:
        self.grace_s = grace_s
        self._by_key: dict[str, Stream] = {}

    def find(self, key: str, prefix: str, suffix: str, tag: str) -> tuple[Stream, str] | None:
        """The in-flight generation this cursor can follow, and what was typed since."""
        stream = self._by_key.get(key)
        if stream is None:
            return None
        typed = stream.typed(prefix, suffix, tag)
        return None if typed is None else (stream, typed)

    def start(self, key: str, prefix: str, suffix: str, tag: str, produce: Produce) -> Stream:
        """Start a generation for ``key``, aborting the one it supersedes."""
        self.supersede(key)
        stream = Stream(prefix, suffix, tag, produce, self.grace_s)
        self._by_key[key] = stream
        stream.task.add_done_callback(lambda _: self._forget(key, stream))
        return stream

    def supersede(self, key: str) -> None:
        """Abort the generation running for ``key``, if any."""
        old = self._by_key.pop(key, None)
        if old is not None and not old.task.done():
            old.abort()

    def abort_all(self) -> None:
        """Stop every generation (the server is shutting down)."""
        for key in list(self._by_key):
            self.supersede(key)

    def running(self) -> int:
        """Generations not finished yet."""
        return sum(1 for stream in self._by_key.values() if not stream.task.done())

    def _forget(self, key: str, stream: Stream) -> None:
        if self._by_key.get(key) is stream:
            del self._by_key[key]
        if not stream.task.cancelled():
            with contextlib.suppress(BaseException):
                stream.task.exception()  # retrieved: no "never retrieved" warning
