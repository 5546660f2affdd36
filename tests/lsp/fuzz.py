"""A seeded protocol fuzzer for `coder-lsp serve --stdio`, over raw frames.

The engine is the remote backend pointed at a recording stub (instant, no model), so the run
is about the server: random incremental edits (CRLF, lone CR, astral characters, combining
marks, NUL, U+2028, very long lines), full-text changes, empty, large and binary documents,
positions and ranges out of bounds or inside a surrogate pair, wrong parameter types, missing
params, unknown methods and notifications, duplicate ids, cancellations of unknown and live
ids, out-of-order versions, requests for unopened and closed documents, bad settings,
malformed frames, and every feature interleaved.

Oracles, checked by `Fuzzer.run`:

* every request gets exactly one response (a duplicate id gets one per request), with the
  error code a bad request calls for;
* the server is alive at the end and still answers;
* the server's text of each document equals a reference model of the edits: at probe points
  an invoked completion at the document's end makes the server send the whole document as
  the FIM prefix, which the stub records.
"""

from __future__ import annotations

import asyncio
import json
import random
import re
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, ClassVar

from engine.templates import template_for
from tests.lsp.raw import RawServer
from tests.stub_openai import StubOpenAI

BEGIN, HOLE, END = template_for("deepseek").markers()
_BREAK = re.compile(r"\r\n|\r|\n")
PIECES = (
    "a", "b", "x", " ", "    ", "def f(x):", "return x", "(", ")", "[", "]", "{", "}", "'", '"',
    "#", "\n", "\n", "\n", "\r\n", "\r", "\t", "😀", "\U0001d518", "e\u0301", "ü", "中文", "\u2028",
    "\x0c", "\x00", "x" * 300,
)  # fmt: skip
ANY = 1
"""An expected outcome: any answer (a result or an error), exactly once."""
"""What edits insert: code, every kind of line break (and U+2028 and form feed, which are
not LSP line breaks), astral characters (two UTF-16 units), combining marks, NUL."""


# --- the reference model ------------------------------------------------------------------


def _utf16(ch: str) -> int:
    return 2 if ord(ch) > 0xFFFF else 1


def reference_offset(text: str, line: int, character: int) -> int:
    """The string offset of an LSP position as the spec has it: lines broken at `\\n`,
    `\\r\\n` and `\\r`; past the end of a line, its end; past the last line, the document's
    end; inside a surrogate pair, the character's start."""
    starts = [0] + [m.end() for m in _BREAK.finditer(text)]
    if line >= len(starts):
        return len(text)
    start = starts[line]
    m = _BREAK.search(text, start)
    end = m.start() if m else len(text)
    units, offset = 0, start
    while offset < end and units + _utf16(text[offset]) <= character:
        units += _utf16(text[offset])
        offset += 1
    return offset


def apply_change(text: str, rng: tuple[int, int, int, int], new: str) -> str:
    a = reference_offset(text, rng[0], rng[1])
    b = reference_offset(text, rng[2], rng[3])
    a, b = min(a, b), max(a, b)
    return text[:a] + new + text[b:]


def end_position(text: str) -> tuple[int, int]:
    lines = _BREAK.split(text)
    return len(lines) - 1, sum(_utf16(c) for c in lines[-1])


def prompt_prefix(prompt: str) -> str | None:
    """The document text a prompt shows before the hole (after the path comment line)."""
    if not prompt.startswith(BEGIN) or HOLE not in prompt:
        return None
    head = prompt[len(BEGIN) : prompt.index(HOLE)]
    if head.startswith("# path: "):
        head = head.split("\n", 1)[1] if "\n" in head else ""
    return head


# --- the run ------------------------------------------------------------------------------


@dataclass
class Report:
    messages: int = 0
    requests: int = 0
    probes: int = 0
    divergences: list[str] = field(default_factory=list)
    missing: list[Any] = field(default_factory=list)
    extra: list[Any] = field(default_factory=list)
    wrong_codes: list[str] = field(default_factory=list)
    kinds: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0
    alive: bool = False


@dataclass
class _Doc:
    uri: str
    text: str
    version: int = 1
    open: bool = True


class Fuzzer:
    """Drives one server with `messages` seeded messages and checks the oracles."""

    SETTINGS: ClassVar[dict[str, Any]] = {
        "completion": {"postprocess": False, "cache": False, "contextTokens": 0},
        "privacy": {"redact": False},
        "workspace": {"index": False},
    }

    def __init__(self, seed: int, messages: int) -> None:
        self.rng = random.Random(seed)
        self.target = messages
        self.report = Report()
        self.expect: dict[Any, list[int | None]] = {}
        """Per request id, the expected outcome of each send: None for a result (or any
        error code that a cancel may cause), else the error code."""
        self.next_id = 1
        self.docs: list[_Doc] = []
        self.live: list[Any] = []

    # -- sending ----------------------------------------------------------------------------

    def _id(self) -> Any:
        self.next_id += 1
        return self.next_id if self.rng.random() < 0.7 else f"r{self.next_id}"

    async def _request(
        self,
        server: RawServer,
        method: str,
        params: Any,
        code: int | None = None,
        kind: str = "",
        fresh: bool = False,
    ) -> Any:
        msg_id = self._id()
        if not fresh and self.live and self.rng.random() < 0.01:
            msg_id = self.rng.choice(self.live)  # a duplicate id
            kind = "duplicate-id"
        self.expect.setdefault(msg_id, []).append(code)
        self.live = [*self.live[-50:], msg_id]
        await server.request(msg_id, method, params)
        self.report.messages += 1
        self.report.requests += 1
        self.report.kinds[kind or method] += 1
        return msg_id

    async def _notify(self, server: RawServer, method: str, params: Any, kind: str = "") -> None:
        await server.notify(method, params)
        self.report.messages += 1
        self.report.kinds[kind or method] += 1

    # -- documents --------------------------------------------------------------------------

    def _text(self, size: int) -> str:
        return "".join(self.rng.choice(PIECES) for _ in range(size))

    async def _open(self, server: RawServer, doc: _Doc) -> None:
        item = {"uri": doc.uri, "languageId": "python", "version": doc.version, "text": doc.text}
        await self._notify(server, "textDocument/didOpen", {"textDocument": item})
        doc.open = True

    def _position(self, doc: _Doc, valid: bool = True) -> tuple[int, int]:
        lines = _BREAK.split(doc.text)
        line = self.rng.randrange(len(lines) + (0 if valid else 3))
        width = sum(_utf16(c) for c in lines[line]) if line < len(lines) else 0
        return line, self.rng.randrange(width + (1 if valid else 5))

    async def _edit(self, server: RawServer) -> None:
        doc = self.rng.choice(self.docs)
        a = self._position(doc, valid=self.rng.random() < 0.9)
        b = self._position(doc, valid=self.rng.random() < 0.9)
        if self.rng.random() < 0.8:
            a, b = min(a, b), max(a, b)
        new = self._text(self.rng.choice((0, 1, 1, 2, 4, 8)))
        doc.version += self.rng.choice((1, 1, 1, -3))  # now and then out of order
        change = {
            "range": {
                "start": {"line": a[0], "character": a[1]},
                "end": {"line": b[0], "character": b[1]},
            },
            "text": new,
        }
        params = {
            "textDocument": {"uri": doc.uri, "version": doc.version},
            "contentChanges": [change],
        }
        await self._notify(server, "textDocument/didChange", params, "didChange")
        if doc.open:
            doc.text = apply_change(doc.text, (a[0], a[1], b[0], b[1]), new)
        if len(doc.text) > 20_000 or doc.text.count(" ") > 300:
            await self._full(server, doc)

    async def _full(self, server: RawServer, doc: _Doc) -> None:
        doc.version += 1
        doc.text = self._text(self.rng.randrange(0, 40))
        params = {
            "textDocument": {"uri": doc.uri, "version": doc.version},
            "contentChanges": [{"text": doc.text}],
        }
        await self._notify(server, "textDocument/didChange", params, "didChange-full")

    # -- requests ---------------------------------------------------------------------------

    def _inline(self, uri: str, line: int, character: int, invoked: bool = True) -> Any:
        return {
            "textDocument": {"uri": uri},
            "position": {"line": line, "character": character},
            "context": {"triggerKind": 1 if invoked else 2},
        }

    async def _some_request(self, server: RawServer) -> None:
        doc = self.rng.choice(self.docs)
        roll = self.rng.random()
        if roll < 0.30:
            line, char = self._position(doc)
            # A completion at a valid position answers a result; at a position the document
            # lacks, -32602 (the reference knows which).
            code = (
                None
                if doc.open and _valid(doc.text, line, char)
                else (-32602 if doc.open else None)
            )
            await self._request(
                server, "textDocument/inlineCompletion", self._inline(doc.uri, line, char), code
            )
        elif roll < 0.38:
            line, char = self._position(doc, valid=False)
            code = None if not doc.open or _valid(doc.text, line, char) else -32602
            await self._request(
                server,
                "textDocument/inlineCompletion",
                self._inline(doc.uri, line, char),
                code,
                "inline-oob",
            )
        elif roll < 0.44:
            line, char = self._position(doc)
            params = {
                "textDocument": {"uri": doc.uri},
                "position": {"line": line, "character": char},
            }
            await self._request(
                server, "textDocument/completion", params, _maybe(self, doc, line, char)
            )
        elif roll < 0.52:
            (l1, c1), (l2, c2) = self._position(doc), self._position(doc)
            params = {
                "textDocument": {"uri": doc.uri},
                "range": {
                    "start": {"line": l1, "character": c1},
                    "end": {"line": l2, "character": c2},
                },
                "context": {"diagnostics": [], "triggerKind": 2},
            }
            await self._request(server, "textDocument/codeAction", params, ANY, "codeAction")
        elif roll < 0.58:
            await self._request(
                server, "textDocument/documentSymbol", {"textDocument": {"uri": doc.uri}}, None
            )
        elif roll < 0.62:
            await self._request(server, "coderLsp/engineStats", None, None)
        elif roll < 0.67:
            await self._request(
                server, f"fuzz/unknown{self.rng.randrange(9)}", {}, -32601, "unknown-method"
            )
        elif roll < 0.74:
            bad: object = self.rng.choice(
                [
                    {"textDocument": doc.uri, "position": 3},
                    {
                        "textDocument": {"uri": doc.uri},
                        "position": {"line": -1, "character": 0},
                        "context": {"triggerKind": 1},
                    },
                    {
                        "textDocument": {"uri": doc.uri},
                        "position": {"line": 2**40, "character": 0},
                        "context": {"triggerKind": 1},
                    },
                    None,
                    [1, 2, 3],
                    "text",
                ]
            )
            await self._request(server, "textDocument/inlineCompletion", bad, -32602, "bad-params")
        elif roll < 0.80:
            target = self.rng.choice(self.live) if self.live and self.rng.random() < 0.6 else 10**9
            await self._notify(server, "$/cancelRequest", {"id": target}, "cancel")
            if target in self.expect:
                self.expect[target] = [None if c is None else c for c in self.expect[target]]
                self.cancelled.add(target)
        elif roll < 0.84:
            await self._notify(
                server,
                f"fuzz/notification{self.rng.randrange(5)}",
                {"x": 1},
                "unknown-notification",
            )
            await self._notify(server, "$/fuzz", None, "unknown-notification")
        elif roll < 0.88:
            bad = self.rng.choice(
                [
                    {"completion": {"maxTokens": "many"}},
                    {"completion": {"nope": 1}},
                    {"completion": {"maxTokens": self.rng.randrange(1, 64)}},
                    "not an object",
                ]
            )
            section: Any = bad
            if isinstance(bad, dict):
                section = json.loads(json.dumps(self.SETTINGS))
                section["completion"].update(bad["completion"])
            params = {"settings": {"coderLsp": section}}
            await self._notify(server, "workspace/didChangeConfiguration", params, "settings")
        elif roll < 0.92:
            body = self.rng.choice(
                [b"{broken", b"[1, 2]", b'{"jsonrpc": "2.0"}', b'"just a string"']
            )
            code = -32700 if body == b"{broken" else -32600
            self.expect.setdefault(None, []).append(code)
            await server.write_raw(body)
            self.report.messages += 1
            self.report.kinds["malformed"] += 1
        elif roll < 0.96:
            if doc.open:
                await self._notify(
                    server, "textDocument/didClose", {"textDocument": {"uri": doc.uri}}, "didClose"
                )
                doc.open = False
            else:
                doc.version = 1
                await self._open(server, doc)
        else:
            uri = f"file:///fuzz/never-opened-{self.rng.randrange(3)}.py"
            await self._request(
                server, "textDocument/inlineCompletion", self._inline(uri, 0, 0), None, "unopened"
            )

    # -- probes -----------------------------------------------------------------------------

    async def _settle(self, server: RawServer, timeout: float = 30.0) -> None:
        """Wait until every request sent so far has its answers."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if all(len(server.responses.get(i, [])) >= len(c) for i, c in self.expect.items()):
                return
            await asyncio.sleep(0.01)

    async def _probe(self, server: RawServer, stub: StubOpenAI) -> None:
        doc = self.rng.choice([d for d in self.docs if d.open] or self.docs)
        if not doc.open or "\x00" in doc.text:
            return
        await self._settle(server)
        before = len(stub.completion_bodies())
        line, char = end_position(doc.text)
        msg_id = await self._request(
            server,
            "textDocument/inlineCompletion",
            self._inline(doc.uri, line, char),
            None,
            "probe",
            fresh=True,
        )
        answer = await server.response(msg_id)
        bodies = stub.completion_bodies()[before:]
        self.report.probes += 1
        if not bodies:
            log = (await server.call(f"log-{msg_id}", "coderLsp/completionLog", None))["result"]
            why = f"{log[-1]!r:.300}" if log else "?"
            self.report.divergences.append(
                f"{doc.uri}: no prompt for the probe (v{doc.version}: {answer!r:.200}; {why}; "
                f"{doc.text!r:.80})"
            )
            return
        seen = prompt_prefix(str(bodies[-1].get("prompt", "")))
        if seen != doc.text:
            self.report.divergences.append(
                f"{doc.uri} v{doc.version}: server {seen!r:.200} != reference {doc.text!r:.200}"
            )

    # -- the run ----------------------------------------------------------------------------

    async def run(self, server: RawServer, stub: StubOpenAI) -> Report:
        started = time.monotonic()
        self.cancelled: set[Any] = set()
        self.sent_edits: list[tuple[str, bool, dict[str, Any]]] = []
        for n in range(3):
            doc = _Doc(f"file:///fuzz/doc{n}.py", self._text(self.rng.randrange(0, 30)))
            self.docs.append(doc)
            await self._open(server, doc)
        big = _Doc("file:///fuzz/big.py", "x = 1\n" * 400_000)  # 2.4 MB
        await self._open(server, big)
        await self._notify(server, "textDocument/didClose", {"textDocument": {"uri": big.uri}})
        while self.report.messages < self.target:
            roll = self.rng.random()
            if roll < 0.55:
                await self._edit(server)
            elif roll < 0.58:
                await self._full(server, self.rng.choice(self.docs))
            elif roll < 0.985:
                await self._some_request(server)
            else:
                await self._probe(server, stub)
            if self.report.messages % 500 == 0:
                await self._settle(server, 60)
        await self._settle(server, 60)
        self._check(server)
        final = await server.call("final", "coderLsp/engineStats", None)
        self.report.alive = server.alive() and "result" in final
        self.report.seconds = time.monotonic() - started
        return self.report

    def _check(self, server: RawServer) -> None:
        for msg_id, codes in self.expect.items():
            got = server.responses.get(msg_id, [])
            if len(got) < len(codes):
                self.report.missing.append(msg_id)
            elif len(got) > len(codes):
                self.report.extra.append(msg_id)
            if msg_id is None or msg_id in self.cancelled or len(codes) != 1 or codes[0] == ANY:
                continue
            code = (got[0].get("error") or {}).get("code") if got else None
            if codes[0] != code:
                self.report.wrong_codes.append(
                    f"{msg_id}: expected {codes[0]}, got {got[0]!r:.200}"
                )


def _valid(text: str, line: int, character: int) -> bool:
    """Whether a request position is one the server must accept (strict, unlike edits)."""
    lines = _BREAK.split(text)
    if not 0 <= line < len(lines):
        return False
    units = 0
    for ch in lines[line]:
        if units == character:
            return True
        units += _utf16(ch)
    return units == character


def _maybe(fuzzer: Fuzzer, doc: _Doc, line: int, character: int) -> int | None:
    return None if not doc.open or _valid(doc.text, line, character) else -32602


async def fuzz(seed: int, messages: int) -> Report:
    """One fuzzing run on a fresh server with a stub backend."""
    with StubOpenAI(reply=lambda prompt: "pass", record_tokenize=False) as stub:
        server = RawServer("--profile", "tiny-moe")
        await server.start()
        try:
            options = {
                **Fuzzer.SETTINGS,
                "engine": {"backend": "remote", "endpoints": [stub.url], "tokenizer": "endpoint"},
            }
            await server.initialize(options)
            stats = await server.wait_ready(60)
            assert stats["state"] == "ready", stats
            return await Fuzzer(seed, messages).run(server, stub)
        finally:
            await server.stop()
