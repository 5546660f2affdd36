"""Stage marks from inside an engine, for a caller that times its requests.

A caller that wants to know where a request's time went (the server's completion log) wraps
its iteration of `Engine.generate` in `timed(mark)`; an engine calls `mark(stage)` when a
stage of its own ends (the remote engine: "engineQueue" when the endpoint has accepted the
request). Without a caller timing, `mark` does nothing.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from contextvars import ContextVar

_MARK: ContextVar[Callable[[str], None] | None] = ContextVar("coder_lsp_stage_mark", default=None)


def mark(stage: str) -> None:
    """End `stage` of the request being generated in this context, now."""
    fn = _MARK.get()
    if fn is not None:
        fn(stage)


@contextlib.contextmanager
def timed(fn: Callable[[str], None]) -> Iterator[None]:
    """Send the engine's marks in this context to `fn` while the block runs."""
    token = _MARK.set(fn)
    try:
        yield
    finally:
        _MARK.reset(token)
