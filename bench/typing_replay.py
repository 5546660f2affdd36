"""Typing replay: real code typed character by character against the real server.

Snippets of standard library code (whole functions of 200-400 characters from modules of the
running interpreter, chosen with a seed) are typed into their own files as an editor does:
the document opens as the file with the snippet taken out, the cursor where the snippet was;
then for every keystroke an incremental ``textDocument/didChange`` and an automatic
``textDocument/inlineCompletion``, after cancelling (``$/cancelRequest``) the previous request
if it is still pending, as VS Code does. A newline and the next line's indentation are one
keystroke, as an editor with auto-indent types them. Inter-key intervals are lognormal
(median 120 ms), with pauses of 400-800 ms after newlines and after some ``:``, ``,`` and
``)``; ``--speed`` scales them.

The replay runs twice, in two server processes one after the other: the completion cache on
(the default) and off (``{"completion": {"cache": false}}``), with the same snippets and
schedule. It reports how keystrokes were served (gate, cache, following a generation in
flight, engine), engine requests per keystroke (vLLM's own request log), latencies, and
checks every reused suggestion against the document as the bench sent it: the typed text
must precede the cursor and each item shown must be one the model made, less what was typed.

    .venv/bin/python bench/typing_replay.py [--profile cpu-small] [--snippets 6] [--seed 0] \\
        [--chars N] [--speed 1.0] [--output F] [--readme F] [--plot F]
"""

from __future__ import annotations

import os
import sys

if sys.path and os.path.abspath(sys.path[0] or os.curdir) == os.path.dirname(
    os.path.abspath(__file__)
):
    sys.path[0] = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

import argparse
import ast
import asyncio
import contextlib
import json
import logging
import math
import os
import random
import shlex
import sys
import sysconfig
import time
from collections import Counter, deque
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

_HERE = os.path.dirname(os.path.abspath(__file__))
REPO = Path(_HERE).parent
README = Path(_HERE) / "README.md"
PLOT = Path(_HERE) / "typing.png"
OUTPUT = Path(_HERE) / "results" / "typing.json"
SECTION = "## Typing replay"

FILES = (
    "textwrap.py",
    "json/encoder.py",
    "shlex.py",
    "json/decoder.py",
    "fnmatch.py",
    "heapq.py",
    "colorsys.py",
    "string.py",
    "difflib.py",
    "base64.py",
    "glob.py",
    "posixpath.py",
)
"""Standard library modules the snippets come from (one snippet per file while they last)."""

MEDIAN_INTERVAL_S = 0.12
INTERVAL_SIGMA = 0.45
"""Lognormal inter-key intervals: median and the log's standard deviation."""
MIN_INTERVAL_S, MAX_INTERVAL_S = 0.03, 1.5
NEWLINE_PAUSE_S = (0.4, 0.8)
PUNCTUATION = ":,)"
PUNCTUATION_PAUSE_P = 0.3
"""Chance of a pause (as long as after a newline) after one of `PUNCTUATION`."""
START_PAUSE_S = 0.8
"""Before the first keystroke of a snippet (the editor opened the file)."""
THINK_PAUSE_S = (1.5, 3.5)
THINK_PAUSE_P = 0.35
"""Chance, at a line end, of a longer pause (reading the suggestion, thinking)."""

POLL_EVERY = 32
"""Keystrokes between reads of vLLM's request log (it keeps 64; one keystroke starts at most
one request, so none is missed)."""
TAIL_CHARS = 64
"""Characters before the cursor that identify the keystroke an engine prompt was made for."""

REUSED = ("cache", "follow")
CATEGORIES = (
    "gate",
    "cache",
    "follow",
    "engine",
    "cancelled, no new request",
    "cancelled, engine",
    "no answer",
)
"""What became of a keystroke, for the counts and the timeline."""

Json = dict[str, Any]


# -- snippets and keystrokes (pure) ------------------------------------------------------------


@dataclass(frozen=True)
class Snippet:
    """A block of a file to type: ``text[start:end]``, a whole function."""

    path: str
    name: str
    line: int
    """1-based line where the snippet starts."""
    start: int
    end: int
    text: str

    @property
    def code(self) -> str:
        return self.text[self.start : self.end]

    @property
    def document(self) -> str:
        """The file as it opens: the snippet taken out, the cursor at ``start``."""
        return self.text[: self.start] + self.text[self.end :]

    def meta(self) -> Json:
        return {"path": self.path, "name": self.name, "line": self.line, "chars": len(self.code)}


def _line_starts(text: str) -> list[int]:
    starts = [0]
    for i, ch in enumerate(text):
        if ch == "\n":
            starts.append(i + 1)
    return starts


def find_blocks(text: str, min_chars: int, max_chars: int) -> list[tuple[str, int, int, int]]:
    """Functions and methods of `text` (decorators included) of `min_chars` to `max_chars`:
    (qualified name, first line, start offset after the first line's indentation, end offset
    at the end of the last line)."""
    try:
        tree = ast.parse(text)
    except SyntaxError:
        return []
    starts = _line_starts(text)
    lines = text.split("\n")
    found: list[tuple[str, int, int, int]] = []

    def visit(node: ast.AST, scope: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                name = f"{scope}{child.name}"
                if not isinstance(child, ast.ClassDef) and child.end_lineno is not None:
                    first = min([child.lineno, *(d.lineno for d in child.decorator_list)])
                    line = lines[first - 1]
                    start = starts[first - 1] + len(line) - len(line.lstrip())
                    last = child.end_lineno
                    end = starts[last - 1] + len(lines[last - 1])
                    if min_chars <= end - start <= max_chars:
                        found.append((name, first, start, end))
                visit(child, name + ".")

    visit(tree, "")
    return found


def select_snippets(
    paths: Sequence[Path], count: int, seed: int, min_chars: int = 200, max_chars: int = 400
) -> list[Snippet]:
    """`count` snippets, reproducible for a seed and the files' contents: files in a shuffled
    order, one block from each in turn (more from a file only when the others run out)."""
    rng = random.Random(seed)
    pools: list[list[Snippet]] = []
    for path in paths:
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        blocks = [
            Snippet(str(path), name, line, start, end, text)
            for name, line, start, end in find_blocks(text, min_chars, max_chars)
        ]
        if blocks:
            rng.shuffle(blocks)
            pools.append(blocks)
    rng.shuffle(pools)
    chosen: list[Snippet] = []
    while len(chosen) < count and any(pools):
        for pool in pools:
            if pool and len(chosen) < count:
                chosen.append(pool.pop())
    return chosen


def keystrokes(code: str, auto_indent: bool = True) -> list[str]:
    """The text each keystroke inserts. With `auto_indent`, a newline and the next line's
    indentation are one keystroke (blank lines get none), as an editor that indents types."""
    chunks: list[str] = []
    i = 0
    while i < len(code):
        ch = code[i]
        i += 1
        if ch == "\n" and auto_indent:
            j = i
            while j < len(code) and code[j] in " \t":
                j += 1
            if j < len(code) and code[j] != "\n":
                ch, i = code[i - 1 : j], j
        chunks.append(ch)
    return chunks


def schedule(chunks: Sequence[str], rng: random.Random, speed: float = 1.0) -> list[float]:
    """Seconds to wait before each keystroke: lognormal intervals (median
    `MEDIAN_INTERVAL_S`), longer after a newline (now and then a think pause) and sometimes
    after `PUNCTUATION`; divided by `speed`."""
    delays: list[float] = []
    previous = ""
    for index in range(len(chunks)):
        base = rng.lognormvariate(math.log(MEDIAN_INTERVAL_S), INTERVAL_SIGMA)
        delay = min(MAX_INTERVAL_S, max(MIN_INTERVAL_S, base))
        pause = rng.uniform(*NEWLINE_PAUSE_S)
        chance = rng.random()
        think = rng.random()
        if index == 0:
            delay = START_PAUSE_S
        elif previous.startswith("\n") and think < THINK_PAUSE_P:
            delay = rng.uniform(*THINK_PAUSE_S)
        elif previous.startswith("\n") or (
            previous in PUNCTUATION and chance < PUNCTUATION_PAUSE_P
        ):
            delay = pause
        delays.append(delay / speed)
        previous = chunks[index]
    return delays


def position(text: str, offset: int) -> tuple[int, int]:
    """LSP line and character (UTF-16 code units) of `offset`."""
    line = text.count("\n", 0, offset)
    start = text.rfind("\n", 0, offset) + 1
    return line, len(text[start:offset].encode("utf-16-le")) // 2


# -- checks and statistics (pure) ---------------------------------------------------------------


def check_reuse(entry: Json, prefix: str) -> str:
    """Why a reused answer (cache or follow) contradicts the document, or "" if it does not.

    ``prefix`` is the text before the cursor at the request's version. What was typed since
    the suggestion was made must end the prefix, and every item shown must be an item the
    model made (``origin``) less that typed text: shown + typed = a real suggestion.
    """
    typed = str(entry.get("typed", ""))
    items = [str(i) for i in entry.get("items", [])]
    origin = [str(o) for o in entry.get("origin", [])]
    if not prefix.endswith(typed):
        return f"typed {typed!r} is not the text before the cursor ({prefix[-20:]!r})"
    for item in items:
        if not any(o.startswith(typed) and o[len(typed) :] == item for o in origin):
            return f"item {item!r} is no origin item less {typed!r} (origin {origin!r})"
    return ""


def agrees(items: Sequence[str], typed: str) -> bool:
    """Whether a suggestion still fits after `typed` more characters: some item starts with
    them (the rest would be shown), or they cover the item."""
    return not typed or any(i.startswith(typed) or typed.startswith(i) for i in items)


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (`q` in 0..1); NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def attribute(prompt: str, tails: Sequence[str]) -> int:
    """Index of the keystroke a prompt was made for: the last whose text before the cursor
    (its tail, `tails[k]`) the prompt holds; -1 for none. A prompt holds the tails of the
    keystrokes before its own too, never those after (the prefix part ends at the cursor)."""
    for k in range(len(tails) - 1, -1, -1):
        if tails[k] in prompt:
            return k
    return -1


@dataclass
class Request:
    """One keystroke and its completion request."""

    snippet: int
    keystroke: int
    """0-based within the snippet."""
    version: int
    line: int
    character: int
    typed_chars: int
    """Characters of the snippet typed at this version."""
    sent: float
    cancelled: bool = False
    answered: float | None = None
    """When the answer (result or error) arrived; None: never."""
    items: list[str] | None = None
    """The items received; None for an error (a cancelled request's, usually)."""
    error: str = ""
    typed_at_answer: int = 0
    """Characters of the snippet typed when the answer arrived."""
    source: str = "?"
    """From the server's completion log; "?" when it has no entry (cancelled before
    answering)."""
    engine_request: str = ""
    """The vLLM request this keystroke started, if any."""
    logged_version: int = 0

    @property
    def latency_ms(self) -> float:
        return math.nan if self.answered is None else (self.answered - self.sent) * 1000

    @property
    def category(self) -> str:
        if self.source in ("gate", "cache", "follow", "engine"):
            return self.source
        if self.cancelled and self.source == "?":
            return "cancelled, engine" if self.engine_request else "cancelled, no new request"
        return "no answer"


@dataclass
class EngineRequest:
    request_id: str
    status: str
    tokens: int
    snippet: int
    keystroke: int
    """-1: not matched to a keystroke."""


@dataclass
class Checks:
    checked: int = 0
    violations: list[str] = field(default_factory=list)
    late: int = 0
    stale: int = 0
    traced: int = 0
    """Reused answers whose origin items were all answered by the engine earlier."""
    version_mismatch: int = 0
    """Completion log entries whose version is not the request's."""
    received_mismatch: int = 0
    """Answers whose items differ from the completion log's."""


def run_checks(
    requests: Sequence[Request],
    entries: Sequence[Json],
    prefixes: dict[int, tuple[str, str]],
) -> Checks:
    """The contradiction check and stale answers over one configuration.

    ``entries`` are the completion log's entries, each with ``snippet`` and ``keystroke`` of
    the request it answers; ``prefixes[snippet]`` is (document text before the cursor at
    the start, the snippet's code).
    """
    checks = Checks()
    by_key = {(r.snippet, r.keystroke): r for r in requests}
    engine_items: set[tuple[int, str]] = set()
    for entry in entries:
        request = by_key.get((entry["snippet"], entry["keystroke"]))
        if request is None:
            continue
        head, code = prefixes[request.snippet]
        if entry.get("version") != request.version:
            checks.version_mismatch += 1
        if (
            request.items is not None
            and not request.cancelled
            and request.items != list(entry.get("items", []))
        ):
            checks.received_mismatch += 1
        source = entry.get("source")
        if source == "engine":
            engine_items.update((request.snippet, i) for i in entry.get("items", []))
        if source not in REUSED:
            continue
        checks.checked += 1
        why = check_reuse(entry, head + code[: request.typed_chars])
        if why:
            checks.violations.append(
                f"snippet {request.snippet} keystroke {request.keystroke} ({source}): {why}"
            )
        if all((request.snippet, o) in engine_items for o in entry.get("origin", [])):
            checks.traced += 1
    for r in requests:
        if r.items is None or r.answered is None or r.typed_at_answer <= r.typed_chars:
            continue
        checks.late += 1
        _, code = prefixes[r.snippet]
        if r.items and not agrees(r.items, code[r.typed_chars : r.typed_at_answer]):
            checks.stale += 1
    return checks


def summarize(
    requests: Sequence[Request],
    engine: Sequence[EngineRequest],
    checks: Checks,
    served: dict[str, int],
) -> Json:
    """The numbers of one configuration."""
    n = len(requests)
    cats = Counter(r.category for r in requests)
    with_engine = sum(bool(r.engine_request) for r in requests)
    ok = [r for r in requests if not r.cancelled and r.items is not None]
    latencies = [r.latency_ms for r in ok]
    by_source: dict[str, list[float]] = {}
    for r in ok:
        by_source.setdefault(r.source, []).append(r.latency_ms)
    gated = cats["gate"]
    past_gate = n - gated
    cancelled = [r for r in requests if r.cancelled]

    def share(count: int, total: int = n) -> float:
        return count / total if total else math.nan

    return {
        "keystrokes": n,
        "engine_requests": len(engine),
        "engine_requests_per_keystroke": share(len(engine)),
        "engine_requests_unmatched": sum(e.keystroke < 0 for e in engine),
        "engine_requests_aborted": sum(e.status == "aborted" for e in engine),
        "engine_statuses": dict(Counter(e.status for e in engine)),
        "without_engine_request": share(n - with_engine),
        "categories": {c: cats.get(c, 0) for c in CATEGORIES},
        "cache_hit_rate_past_gate": share(cats["cache"], past_gate),
        "answered": len(ok),
        "shown": sum(bool(r.items) for r in ok),
        "cancelled": len(cancelled),
        "cancelled_answered_anyway": sum(r.items is not None for r in cancelled),
        "unlogged_answers": sum(r.items is not None and r.source == "?" for r in requests),
        "latency_ms": {
            "p50": percentile(latencies, 0.5),
            "p95": percentile(latencies, 0.95),
            "max": max(latencies, default=math.nan),
        },
        "latency_by_source_ms": {
            s: {"n": len(v), "p50": percentile(v, 0.5), "p95": percentile(v, 0.95)}
            for s, v in sorted(by_source.items())
            if s
        },
        "served": served,
        "checked": checks.checked,
        "violations": len(checks.violations),
        "violation_examples": checks.violations[:10],
        "late": checks.late,
        "stale": checks.stale,
        "traced": checks.traced,
        "log_version_mismatch": checks.version_mismatch,
        "received_mismatch": checks.received_mismatch,
    }


# -- the editor ---------------------------------------------------------------------------------


def _plain(value: Any) -> Any:
    """A pygls answer to a custom request as plain JSON values."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if hasattr(value, "_asdict"):
        return {k: _plain(v) for k, v in value._asdict().items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _finite(value: Any) -> Any:
    """`value` with NaN floats as None (strict JSON)."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def _items(result: Any) -> list[str]:
    from lsprotocol import types

    raw = result.items if isinstance(result, types.InlineCompletionList) else result or []
    texts: list[str] = []
    for item in raw:
        text = item.insert_text
        texts.append(text if isinstance(text, str) else text.value)
    return texts


class Editor:
    """One server process and the editor session typing into it."""

    def __init__(self, name: str, cmd: list[str], options: Json) -> None:
        from pygls.lsp.client import LanguageClient

        self.name = name
        self.cmd = cmd
        self.options = options
        self.client = LanguageClient("coder-lsp-typing-bench", "1")
        self.stderr: deque[str] = deque(maxlen=60)
        self.ready: asyncio.Future[str] | None = None
        self.requests: list[Request] = []
        self.entries: list[Json] = []
        self.engine: dict[str, EngineRequest] = {}
        self.prefixes: dict[int, tuple[str, str]] = {}
        self.log_seen = 0
        self.served_start: Json = {}
        self.served_end: Json = {}
        self.unfinished_after: list[int] = []
        self.load_s = 0.0
        self.typed_now = 0
        """Characters of the current snippet typed so far."""
        self._drain: asyncio.Task[None] | None = None
        self._seq = 0

    async def start(self, timeout: float) -> None:
        from lsprotocol import types

        loop = asyncio.get_running_loop()
        ready: asyncio.Future[str] = loop.create_future()
        self.ready = ready

        @self.client.feature("coderLsp/status")  # type: ignore[untyped-decorator]
        def on_status(params: Any) -> None:
            value = _plain(params)
            state = value.get("state") if isinstance(value, dict) else None
            if state in ("ready", "failed") and not ready.done():
                ready.set_result(f"{state} {value.get('reason', '')}".strip())

        @self.client.feature(types.WINDOW_WORK_DONE_PROGRESS_CREATE)  # type: ignore[untyped-decorator]
        def on_progress_create(params: Any) -> None:
            return None

        for method in (types.PROGRESS, types.WINDOW_LOG_MESSAGE, types.WINDOW_SHOW_MESSAGE):
            self.client.feature(method)(lambda params: None)

        started = time.perf_counter()
        await self.client.start_io(*self.cmd, cwd=str(REPO))
        server = self.client._server
        if server is not None and server.stderr is not None:
            self._drain = asyncio.create_task(self._read_stderr(server.stderr))
        caps = types.ClientCapabilities(
            window=types.WindowClientCapabilities(work_done_progress=True),
            text_document=types.TextDocumentClientCapabilities(
                inline_completion=types.InlineCompletionClientCapabilities()
            ),
        )
        await self.client.initialize_async(
            types.InitializeParams(
                capabilities=caps, process_id=os.getpid(), initialization_options=self.options
            )
        )
        self.client.initialized(types.InitializedParams())
        server_exit = asyncio.ensure_future(server.wait()) if server is not None else None
        waits: list[asyncio.Future[Any]] = [ready, *([server_exit] if server_exit else [])]
        await asyncio.wait(waits, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        if not ready.done():
            raise RuntimeError(
                "the server exited before the engine was ready"
                if server_exit is not None and server_exit.done()
                else f"the engine was not ready after {timeout:.0f} s"
            )
        state = ready.result()
        self.load_s = time.perf_counter() - started
        if not state.startswith("ready"):
            raise RuntimeError(f"engine {state}")
        self.served_start = await self.stats()

    async def _read_stderr(self, stream: asyncio.StreamReader) -> None:
        # Chunks, not readline(): a logged message can be longer than StreamReader's line
        # limit, and a reader that stops leaves the server blocked on a full pipe.
        pending = ""
        while chunk := await stream.read(1 << 16):
            pending += chunk.decode("utf-8", "replace")
            *lines, pending = pending.split("\n")
            self.stderr.extend(line[:2000].rstrip() for line in lines if line.strip())

    @property
    def alive(self) -> bool:
        server = self.client._server
        return server is not None and server.returncode is None

    async def call(self, method: str, timeout: float = 60.0) -> Any:
        request = self.client.protocol.send_request_async(method, None)
        return _plain(await asyncio.wait_for(request, timeout))

    async def stats(self) -> Json:
        value = await self.call("coderLsp/engineStats")
        return value if isinstance(value, dict) else {}

    async def poll_engine(
        self, snippet: int, tails: Sequence[str], requests: Sequence[Request]
    ) -> None:
        """Read vLLM's request log: new requests are matched to the keystroke they were made
        for; known ones get their latest status."""
        log = await self.call("coderLsp/requestLog")
        for record in log or []:
            rid = str(record.get("requestId", ""))
            known = self.engine.get(rid)
            if known is not None:
                known.status = str(record.get("status", ""))
                known.tokens = int(record.get("tokens", 0))
                continue
            k = attribute(str(record.get("prompt", "")), tails)
            self.engine[rid] = EngineRequest(
                rid, str(record.get("status", "")), int(record.get("tokens", 0)), snippet, k
            )
            if k >= 0:
                requests[k].engine_request = rid

    async def type_snippet(
        self, index: int, snippet: Snippet, chunks: list[str], delays: list[float]
    ) -> None:
        from lsprotocol import types

        protocol = self.client.protocol
        uri = Path(snippet.path).as_uri()
        document = snippet.document
        head = document[: snippet.start]
        code = "".join(chunks)
        self.prefixes[index] = (head, code)
        self.client.text_document_did_open(
            types.DidOpenTextDocumentParams(
                text_document=types.TextDocumentItem(
                    uri=uri, language_id="python", version=1, text=document
                )
            )
        )
        first = len(self.requests)
        self.typed_now = 0
        tails: list[str] = []
        futures: list[Future[Any]] = []
        typed = 0
        pending: tuple[Request, Future[Any], str] | None = None
        clock = time.perf_counter()
        for k, (chunk, delay) in enumerate(zip(chunks, delays, strict=True)):
            clock += delay
            await asyncio.sleep(max(0.0, clock - time.perf_counter()))
            if pending is not None and not pending[1].done():
                pending[0].cancelled = True
                protocol.notify(types.CANCEL_REQUEST, types.CancelParams(id=pending[2]))
            before = head + code[:typed]
            line, character = position(before, len(before))
            at = types.Position(line=line, character=character)
            version = k + 2
            self.client.text_document_did_change(
                types.DidChangeTextDocumentParams(
                    text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=version),
                    content_changes=[
                        types.TextDocumentContentChangePartial(
                            range=types.Range(start=at, end=at), text=chunk
                        )
                    ],
                )
            )
            typed += len(chunk)
            self.typed_now = typed
            before = head + code[:typed]
            line, character = position(before, len(before))
            tails.append(before[-TAIL_CHARS:])
            self._seq += 1
            msg_id = f"{self.name}-{index}-{k}-{self._seq}"
            request = Request(index, k, version, line, character, typed, time.perf_counter())
            self.requests.append(request)
            future = protocol.send_request(
                types.TEXT_DOCUMENT_INLINE_COMPLETION,
                types.InlineCompletionParams(
                    text_document=types.TextDocumentIdentifier(uri=uri),
                    position=types.Position(line=line, character=character),
                    context=types.InlineCompletionContext(
                        trigger_kind=types.InlineCompletionTriggerKind.Automatic
                    ),
                ),
                msg_id=msg_id,
            )
            future.add_done_callback(self._answered(request))
            futures.append(future)
            pending = (request, future, msg_id)
            if (k + 1) % POLL_EVERY == 0:
                await self.poll_engine(index, tails, self.requests[first:])
        # Let the last request finish and unwatched generations end (their grace period).
        with contextlib.suppress(Exception):
            await asyncio.wait_for(asyncio.wrap_future(futures[-1]), 120)
        await asyncio.sleep(1.0)
        await asyncio.gather(
            *(asyncio.wrap_future(f) for f in futures if not f.done()), return_exceptions=True
        )
        await self.poll_engine(index, tails, self.requests[first:])
        self.unfinished_after.append(int((await self.stats()).get("unfinishedRequests", 0)))
        await self._read_log(index, uri, self.requests[first:])
        self.client.text_document_did_close(
            types.DidCloseTextDocumentParams(text_document=types.TextDocumentIdentifier(uri=uri))
        )

    def _answered(self, request: Request) -> Any:
        def done(future: Future[Any]) -> None:
            request.answered = time.perf_counter()
            request.typed_at_answer = self.typed_now
            error = future.exception()
            if error is None:
                request.items = _items(future.result())
            else:
                request.error = f"{type(error).__name__}: {error}"

        return done

    async def _read_log(self, index: int, uri: str, requests: list[Request]) -> None:
        log = await self.call("coderLsp/completionLog") or []
        if len(log) < self.log_seen:
            raise RuntimeError("the completion log lost entries; type fewer characters")
        new, self.log_seen = log[self.log_seen :], len(log)
        by_position = {(r.line, r.character): r for r in requests}
        for entry in new:
            request = by_position.get((entry.get("line"), entry.get("character")))
            if entry.get("uri") != uri or request is None:
                continue
            request.source = str(entry.get("source", ""))
            request.logged_version = int(entry.get("version", 0))
            self.entries.append({**entry, "snippet": index, "keystroke": request.keystroke})

    async def close(self) -> None:
        """Shutdown and exit, then wait for the process (killed if it does not end)."""
        server = self.client._server
        try:
            if self.alive:
                self.served_end = await self.stats()
                await asyncio.wait_for(self.client.shutdown_async(None), 60)
                self.client.exit(None)
        finally:
            if server is not None:
                try:
                    await asyncio.wait_for(server.wait(), 60)
                except TimeoutError:
                    print(f"[{self.name}] the server did not exit; killing it", file=sys.stderr)
                    server.kill()
                    await server.wait()
            await self.client.stop()  # type: ignore[no-untyped-call]
            if self._drain is not None:
                self._drain.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._drain

    def result(self) -> Json:
        start = self.served_start.get("served", {}) or {}
        end = self.served_end.get("served", {}) or {}
        served = {k: int(end.get(k, 0)) - int(start.get(k, 0)) for k in end}
        engine = list(self.engine.values())
        checks = run_checks(self.requests, self.entries, self.prefixes)
        summary = summarize(self.requests, engine, checks, served)
        summary["load_s"] = self.load_s
        summary["unfinished_after_snippets"] = self.unfinished_after
        summary["violation_list"] = checks.violations
        return {
            "summary": summary,
            "requests": [asdict(r) for r in self.requests],
            "engine_requests": [asdict(e) for e in engine],
            "completion_log": self.entries,
        }


async def replay(
    name: str,
    cmd: list[str],
    options: Json,
    work: list[tuple[Snippet, list[str], list[float]]],
    timeout: float,
) -> Json:
    editor = Editor(name, cmd, options)
    try:
        await editor.start(timeout)
        print(f"[{name}] engine ready after {editor.load_s:.1f} s", file=sys.stderr)
        for index, (snippet, chunks, delays) in enumerate(work):
            started = time.perf_counter()
            await editor.type_snippet(index, snippet, chunks, delays)
            print(
                f"[{name}] snippet {index + 1}/{len(work)} {snippet.name} "
                f"({len(chunks)} keystrokes) in {time.perf_counter() - started:.1f} s",
                file=sys.stderr,
            )
    except BaseException:
        print("\n".join(editor.stderr), file=sys.stderr)
        raise
    finally:
        await editor.close()
    return editor.result()


# -- report -------------------------------------------------------------------------------------


def _shown(path: Path) -> str:
    """A path as the README shows it: relative to the repository when inside it."""
    resolved = path.resolve()
    return str(resolved.relative_to(REPO)) if resolved.is_relative_to(REPO) else str(path)


def _ms(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:.0f} ms"


def _pct(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:.1%}"


def table(results: dict[str, Json]) -> list[tuple[str, ...]]:
    """Rows of the README table: a measure, then one column per configuration."""
    s = {name: r["summary"] for name, r in results.items()}

    def row(label: str, fn: Any) -> tuple[str, ...]:
        return (label, *(str(fn(v)) for v in s.values()))

    def cat(name: str) -> Any:
        return lambda v: (
            f"{v['categories'][name]} ({_pct(v['categories'][name] / max(1, v['keystrokes']))})"
        )

    return [
        row("keystrokes", lambda v: v["keystrokes"]),
        row(
            "engine requests (per keystroke)",
            lambda v: f"{v['engine_requests']} ({v['engine_requests_per_keystroke']:.2f})",
        ),
        row(
            "engine requests aborted (cancelled, superseded, cut early)",
            lambda v: v["engine_requests_aborted"],
        ),
        row(
            "keystrokes served without a new engine request",
            lambda v: _pct(v["without_engine_request"]),
        ),
        row("... gated (no suggestion wanted here)", cat("gate")),
        row("... from the cache", cat("cache")),
        row("... following a generation in flight", cat("follow")),
        row(
            "... cancelled before answering, no request of their own",
            cat("cancelled, no new request"),
        ),
        row("answered from a new engine request", cat("engine")),
        row("cancelled, had started an engine request", cat("cancelled, engine")),
        row("cache hit rate past the gate", lambda v: _pct(v["cache_hit_rate_past_gate"])),
        row(
            "latency p50 / p95 (answered, not cancelled)",
            lambda v: f"{_ms(v['latency_ms']['p50'])} / {_ms(v['latency_ms']['p95'])}",
        ),
        row(
            "latency p50 / p95 by source (answers)",
            lambda v: "; ".join(
                f"{k} {_ms(x['p50'])} / {_ms(x['p95'])} ({x['n']})"
                for k, x in v["latency_by_source_ms"].items()
            ),
        ),
        row(
            "requests cancelled (of which answered anyway)",
            lambda v: f"{v['cancelled']} ({v['cancelled_answered_anyway']})",
        ),
        row("answers with a suggestion / answers", lambda v: f"{v['shown']} / {v['answered']}"),
        row(
            "**contradictions** (reused answers checked)",
            lambda v: f"**{v['violations']}** ({v['checked']})",
        ),
        row(
            "late answers (more typed meanwhile) / stale among them",
            lambda v: f"{v['late']} / {v['stale']}",
        ),
        row(
            "server counters: engine / cache / follow / gate",
            lambda v: " / ".join(
                str(v["served"].get(k, "?")) for k in ("engine", "cache", "follow", "gate")
            ),
        ),
    ]


def plot(results: dict[str, Json], target: Path) -> None:
    """Latency CDF per configuration and source, and a per-keystroke timeline of sources."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import ListedColormap
    from matplotlib.patches import Patch

    colors = ["#bbbbbb", "#2ca02c", "#17becf", "#1f77b4", "#ffbb78", "#ff7f0e", "#d62728"]
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(9, 6), gridspec_kw={"height_ratios": [3, 1.3]})
    styles = ["-", "--", ":", "-."]
    for (name, result), style in zip(results.items(), styles, strict=False):
        reqs = [r for r in result["requests"] if not r["cancelled"] and r["items"] is not None]
        values = sorted((r["answered"] - r["sent"]) * 1000 for r in reqs)
        if values:
            ys = [(i + 1) / len(values) for i in range(len(values))]
            top.step(values, ys, where="post", linestyle=style, color="black", label=f"{name}: all")
        for source, color in (("engine", colors[3]), ("cache", colors[1]), ("follow", colors[2])):
            vs = sorted((r["answered"] - r["sent"]) * 1000 for r in reqs if r["source"] == source)
            if vs:
                ys = [(i + 1) / len(vs) for i in range(len(vs))]
                top.step(
                    vs,
                    ys,
                    where="post",
                    linestyle=style,
                    color=color,
                    alpha=0.8,
                    label=f"{name}: {source}",
                )
    top.set_xscale("log")
    top.set_xlabel("latency of answered requests, client wall time (ms, log scale)")
    top.set_ylabel("share of requests")
    top.legend(fontsize=7, loc="lower right")
    top.grid(alpha=0.3)

    index = {c: i for i, c in enumerate(CATEGORIES)}
    rows = []
    for result in results.values():
        rows.append([index[Request(**r).category] for r in result["requests"]])
    width = max((len(r) for r in rows), default=1)
    grid = [r + [len(CATEGORIES)] * (width - len(r)) for r in rows]
    cmap = ListedColormap([*colors, "white"])
    bottom.imshow(
        grid,
        aspect="auto",
        cmap=cmap,
        vmin=-0.5,
        vmax=len(CATEGORIES) + 0.5,
        interpolation="nearest",
    )
    bottom.set_yticks(range(len(results)), list(results))
    bottom.set_xlabel("keystroke (snippets one after another)")
    bottom.legend(
        handles=[Patch(color=c, label=n) for c, n in zip(colors, CATEGORIES, strict=True)],
        fontsize=7,
        ncol=4,
        loc="upper center",
        bbox_to_anchor=(0.5, -0.45),
    )
    fig.tight_layout()
    fig.savefig(target, dpi=100)
    plt.close(fig)


def write_readme(
    args: argparse.Namespace,
    machine: str,
    command: str,
    settings: dict[str, Json],
    snippets: list[Snippet],
    results: dict[str, Json],
    target: Path,
    plot_path: Path,
) -> None:
    from bench.report import replace_section

    rows = table(results)
    header = ("measure", *results)
    lines = [f"| {' | '.join(header)} |", f"| {' | '.join('---' for _ in header)} |"]
    lines += [f"| {' | '.join(r)} |" for r in rows]
    names = ", ".join(
        f"`{os.path.relpath(s.path, sysconfig.get_paths()['stdlib'])}:{s.name}`" for s in snippets
    )
    chars = sum(len(r["requests"]) for r in list(results.values())[:1])
    config_lines = "\n".join(f"  - {name}: `{json.dumps(opts)}`" for name, opts in settings.items())
    violations = sum(r["summary"]["violations"] for r in results.values())
    mismatch = sum(r["summary"]["log_version_mismatch"] for r in results.values())
    image = os.path.relpath(plot_path, target.parent)
    functions = f"{len(snippets)} function{'s' if len(snippets) != 1 else ''}"
    mismatch_note = (
        f"The completion log recorded a version other than the request's for {mismatch} "
        "answers (it records the document's version when the answer is made, not when it "
        "was asked); the check uses the bench's own versions."
        if mismatch
        else ""
    )
    body = f"""{SECTION}

The typing replay (`bench/typing_replay.py`) types real code into the real server
(`python -m lsp_server serve --stdio --profile {args.profile}`), one keystroke at a time, as
an editor does: each keystroke is an incremental `didChange` and an automatic
`textDocument/inlineCompletion`, after a `$/cancelRequest` for the previous request if it is
still pending. The code is {functions} of {args.min_chars}-{args.max_chars}
characters from the standard library of the running interpreter (seed {args.seed}): {names}.
Each file opens with its snippet taken out and the cursor where it was. A newline and the
next line's indentation are one keystroke (an editor's auto-indent). Intervals between keys
are lognormal (median {MEDIAN_INTERVAL_S * 1000:.0f} ms), 400-800 ms after a newline (at
{THINK_PAUSE_P:.0%} of line ends a think pause of {THINK_PAUSE_S[0]:g}-{THINK_PAUSE_S[1]:g} s
instead) and after {PUNCTUATION_PAUSE_P:.0%} of `:`, `,` and `)`; speed factor {args.speed}. Both
configurations run in their own server process, one after the other, with the same keystrokes
at the same times.

- Machine: {machine}
- Command: `{command}`
- Settings (initializationOptions):
{config_lines}

{chr(10).join(lines)}

How to read it. Engine requests are counted in vLLM's own request log (read every
{POLL_EVERY} keystrokes; its prompts tell which keystroke made each request). A keystroke is
served without a new engine request when the gate decided not to suggest (the server does not
ask the model, e.g. in the middle of an identifier), when the cache answered (the same cursor
text, or a suggestion shown earlier whose first characters were then typed), when it followed a
generation still running for an earlier keystroke whose text so far agrees with what was typed,
or when it was cancelled by the next keystroke while waiting on such a generation. Latency is
the client's wall time from sending the request to its answer, over requests that were not
cancelled. The **contradiction check** takes every cache and follow answer in the server's
completion log and checks it against the document as the bench sent it at that version: the
text before the cursor must end with what the server says was typed since the suggestion was
made, and every item shown plus that typed text must be an item the model made (its `origin`).
{violations} contradiction(s) in all. Late answers are those that arrived after more was typed;
an editor drops them, and they count as stale when the extra typing disagrees with every item.
{mismatch_note}

![typing replay: latency and per-keystroke sources]({image})

Raw results: `{_shown(args.output)}` ({chars} keystrokes per configuration).
"""
    replace_section(target, SECTION, body)


# -- main ---------------------------------------------------------------------------------------


def build_work(
    snippets: list[Snippet], seed: int, speed: float, chars: int | None, auto_indent: bool
) -> list[tuple[Snippet, list[str], list[float]]]:
    """Each snippet's keystrokes and delays; `chars` caps the characters typed in all."""
    work: list[tuple[Snippet, list[str], list[float]]] = []
    left = chars if chars is not None else math.inf
    for index, snippet in enumerate(snippets):
        chunks: list[str] = []
        for chunk in keystrokes(snippet.code, auto_indent):
            if left <= 0:
                break
            chunks.append(chunk)
            left -= len(chunk)
        if not chunks:
            break
        delays = schedule(chunks, random.Random(f"{seed}-{index}"), speed)
        work.append((snippet, chunks, delays))
    return work


def main() -> int:
    doc = __doc__ or ""
    parser = argparse.ArgumentParser(description=doc.split("\n")[0])
    parser.add_argument("--profile", default="cpu-small")
    parser.add_argument("--snippets", type=int, default=6)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--chars", type=int, default=None, help="cap on characters typed")
    parser.add_argument("--speed", type=float, default=1.0, help="typing speed factor")
    parser.add_argument("--min-chars", type=int, default=200)
    parser.add_argument("--max-chars", type=int, default=400)
    parser.add_argument("--max-tokens", type=int, default=32)
    parser.add_argument("--context-tokens", type=int, default=0)
    parser.add_argument(
        "--settings", default="{}", help="JSON merged into both configurations' settings"
    )
    parser.add_argument(
        "--char-by-char", action="store_true", help="type newline and indentation separately"
    )
    parser.add_argument("--only", choices=("cache-on", "cache-off"), default=None)
    parser.add_argument("--load-timeout", type=float, default=900.0)
    parser.add_argument("--output", type=Path, default=OUTPUT)
    parser.add_argument("--readme", type=Path, default=README)
    parser.add_argument("--plot", type=Path, default=PLOT)
    args = parser.parse_args()

    os.environ.setdefault("CODER_LSP_CACHE_DIR", str(REPO / ".cache" / "coder-lsp"))
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
    logging.getLogger("pygls").setLevel(logging.ERROR)

    from bench.report import describe

    machine = describe()
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    snippets = select_snippets(
        [stdlib / f for f in FILES], args.snippets, args.seed, args.min_chars, args.max_chars
    )
    work = build_work(snippets, args.seed, args.speed, args.chars, not args.char_by_char)
    snippets = [s for s, _, _ in work]
    if not work:
        print("no snippets to type", file=sys.stderr)
        return 1
    common: Json = {
        "completion": {"maxTokens": args.max_tokens, "contextTokens": args.context_tokens}
    }
    extra = json.loads(args.settings)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(common.get(key), dict):
            common[key] = {**common[key], **value}
        else:
            common[key] = value
    settings = {
        "cache-on": common,
        "cache-off": {**common, "completion": {**common["completion"], "cache": False}},
    }
    if args.only:
        settings = {args.only: settings[args.only]}
    cmd = [sys.executable, "-m", "lsp_server", "serve", "--stdio", "--profile", args.profile]
    total = sum(len(c) for _, c, _ in work)
    print(
        f"{len(work)} snippets, {total} keystrokes, "
        f"{sum(sum(d) for _, _, d in work):.0f} s of typing per configuration",
        file=sys.stderr,
    )
    results: dict[str, Json] = {}
    for name, options in settings.items():
        results[name] = asyncio.run(replay(name, cmd, options, work, args.load_timeout))

    command = ".venv/bin/python bench/typing_replay.py " + shlex.join(sys.argv[1:])
    for row in table(results):
        print(" | ".join(row))
    for name, result in results.items():
        summary = result["summary"]
        for v in summary["violation_list"][:5]:
            print(f"[{name}] contradiction: {v}", file=sys.stderr)
        print(
            f"[{name}] diagnostics: engine requests not matched to a keystroke "
            f"{summary['engine_requests_unmatched']}, answers missing from the completion log "
            f"{summary['unlogged_answers']}, answers differing from the log "
            f"{summary['received_mismatch']}, log entries with another version "
            f"{summary['log_version_mismatch']}, unfinished engine requests after each snippet "
            f"{summary['unfinished_after_snippets']}",
            file=sys.stderr,
        )
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(
        json.dumps(
            _finite(
                {
                    "machine": machine,
                    "command": command,
                    "python": sys.version,
                    "profile": args.profile,
                    "seed": args.seed,
                    "speed": args.speed,
                    "settings": settings,
                    "snippets": [{**s.meta(), "keystrokes": c, "delays": d} for s, c, d in work],
                    "results": results,
                }
            ),
            indent=1,
        ),
        encoding="utf-8",
    )
    plot(results, args.plot)
    write_readme(args, machine, command, settings, snippets, results, args.readme, args.plot)
    print(f"wrote {args.output}, {args.plot}, {args.readme}", file=sys.stderr)
    violations = sum(r["summary"]["violations"] for r in results.values())
    return 1 if violations else 0


if __name__ == "__main__":
    sys.exit(main())
