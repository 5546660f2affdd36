"""Open documents' text and tree-sitter trees, updated incrementally on each LSP change.

Positions given to `DocumentTrees.change` are LSP positions: 0-based lines (broken at `\\n`,
`\\r\\n` and `\\r`) and UTF-16 code unit columns. Tree-sitter wants UTF-8 byte offsets and
(row, byte column) points with rows broken at `\\n` only; this module converts between them.

Each document keeps its text in pieces of about 32 K characters cut after line breaks (with
their UTF-8 bytes while it may have a tree): an edit copies the piece it falls in, not the
document, so a keystroke costs the same in a 100-line file and a 100,000-line one. Line
starts are found per piece, lazily; the whole text is joined only when someone asks for it.
Trees handed out are never mutated afterwards: an edit works on a copy of the previous tree.
"""

from __future__ import annotations

import asyncio
import bisect
import functools
import itertools
import logging
import operator
import re
import time
from collections.abc import Callable

import msgspec
import tree_sitter

from lsp_server.completion.view import HEAD_CHARS, WINDOW_CHARS, View
from lsp_server.positions import InvalidPosition, column_offset
from lsp_server.workspace.languages import ts_language

log = logging.getLogger(__name__)

DEFAULT_MAX_BYTES = 2 * 1024 * 1024
"""Documents larger than this (UTF-8) keep their text but get no tree."""
PARSE_SLICE_MS = 4.0
"""The longest the background parser holds the event loop at a time."""
PARSE_IDLE_MS = 50.0
"""The background parser starts once edits have paused this long (typing makes every
intermediate tree obsolete at once)."""
PIECE_CHARS = 32_768
"""Documents are kept in pieces of about this many characters (an edit copies one)."""

_LINE_BREAK = re.compile(r"\r\n?|\n")

Position = tuple[int, int]
"""An LSP position: (line, UTF-16 column)."""


def _utf16_to_chars(line: str, units: int) -> int:
    """The string offset in `line` of a UTF-16 column, clamped to the line's length.

    A column inside a surrogate pair is rounded down to the start of the character.
    """
    if line.isascii():
        return min(units, len(line))
    count = 0
    for i, ch in enumerate(line):
        count += 2 if ord(ch) > 0xFFFF else 1
        if count > units:
            return i
    return len(line)


class OpenDocument(msgspec.Struct, frozen=True):
    """A snapshot of an open document: what a request works on."""

    uri: str
    source: str
    language_id: str
    version: int


class _Document:
    """One open document: its text in pieces of about `piece_chars` characters cut after a
    `\\n` (an edit copies one piece, not the document), each piece's UTF-8 bytes while the
    document may have a tree, lazily made line tables, and the tree."""

    __slots__ = (
        "_bsum",
        "_csum",
        "_lsum",
        "_nsum",
        "_sums_from",
        "_text",
        "base",
        "blens",
        "bpieces",
        "breaks",
        "has_nul",
        "language_id",
        "nls",
        "parse_old",
        "parser",
        "pending",
        "piece_chars",
        "pieces",
        "snapshot",
        "starts",
        "tree",
        "version",
    )

    def __init__(
        self, language_id: str, text: str, version: int = 0, piece_chars: int = PIECE_CHARS
    ) -> None:
        self.language_id = language_id
        self.version = version
        self.piece_chars = piece_chars
        self.tree: tree_sitter.Tree | None = None
        self.base: tree_sitter.Tree | None = None
        """The last tree, edited as the text was since: the next parse's old tree."""
        self.parser: tree_sitter.Parser | None = None
        self.snapshot: _Snapshot | None = None
        """The bytes a parse under way reads (halted by its deadline, the next step resumes
        it); edits meanwhile wait in `pending` and are applied to its tree when it ends."""
        self.parse_old: tree_sitter.Tree | None = None
        """The old tree that parse was started with."""
        self.pending: list[tuple[int, ...]] = []
        self.bpieces: list[bytes] | None = None
        """Each piece as UTF-8, kept only while the document may have a tree."""
        self.set_text(text)

    # -- the pieces -------------------------------------------------------------------------

    def set_text(self, text: str) -> None:
        self.pieces = _cut(text, self.piece_chars)
        self.breaks = [_breaks(p) for p in self.pieces]
        self.nls = [p.count("\n") for p in self.pieces]
        self.blens = [_utf8_len(p) for p in self.pieces]
        self.starts: list[list[int] | None] = [None] * len(self.pieces)
        if self.bpieces is not None:
            self.bpieces = [p.encode("utf-8", "surrogatepass") for p in self.pieces]
        self.has_nul = "\x00" in text
        self._text: str | None = text
        self._sums_from = 0
        self._csum: list[int] = []
        self._bsum: list[int] = []
        self._lsum: list[int] = []
        self._nsum: list[int] = []

    def keep_bytes(self, keep: bool) -> None:
        """Keep each piece's UTF-8 bytes up to date (a document that may have a tree), or not."""
        if keep and self.bpieces is None:
            self.bpieces = [p.encode("utf-8", "surrogatepass") for p in self.pieces]
        elif not keep:
            self.bpieces = None

    @property
    def text(self) -> str:
        """The whole text (joined once per change, when asked for)."""
        if self._text is None:
            self._text = self.pieces[0] if len(self.pieces) == 1 else "".join(self.pieces)
        return self._text

    @property
    def data(self) -> bytes:
        if self.bpieces is not None:
            return self.bpieces[0] if len(self.bpieces) == 1 else b"".join(self.bpieces)
        return self.text.encode("utf-8", "surrogatepass")

    @property
    def nchars(self) -> int:
        self._sums()
        return self._csum[-1]

    @property
    def nbytes(self) -> int:
        self._sums()
        return self._bsum[-1]

    def _sums(self) -> None:
        """Bring the running sums (chars, bytes, LSP lines, `\\n`s before each piece) up to
        date from the first edited piece on."""
        k = self._sums_from
        n = len(self.pieces)
        if k > n:
            return
        if k == 0:
            self._csum, self._bsum, self._lsum, self._nsum = [0], [0], [0], [0]
        else:
            del self._csum[k + 1 :], self._bsum[k + 1 :], self._lsum[k + 1 :], self._nsum[k + 1 :]
        c, b, ln, nl = self._csum[-1], self._bsum[-1], self._lsum[-1], self._nsum[-1]
        for i in range(k, n):
            c += len(self.pieces[i])
            b += self.blens[i]
            ln += self.breaks[i]
            nl += self.nls[i]
            self._csum.append(c)
            self._bsum.append(b)
            self._lsum.append(ln)
            self._nsum.append(nl)
        self._sums_from = n + 1

    def _starts(self, k: int) -> list[int]:
        """Where each LSP line of piece `k` starts in it (the first at 0)."""
        starts = self.starts[k]
        if starts is None:
            piece = self.pieces[k]
            if "\r" in piece:
                starts = [0, *(m.end() for m in _LINE_BREAK.finditer(piece))]
            else:  # line i starts after the i lines before it and their i newlines
                lengths = itertools.accumulate(map(len, piece.split("\n")), initial=0)
                starts = list(map(operator.add, lengths, range(piece.count("\n") + 1)))
            self.starts[k] = starts
        return starts

    def slice(self, start: int, end: int) -> str:
        """text[start:end], joined from the pieces it spans."""
        self._sums()
        csum = self._csum
        start, end = max(0, start), min(end, csum[-1])
        if start >= end:
            return ""
        k = bisect.bisect_right(csum, start) - 1
        parts: list[str] = []
        while k < len(self.pieces) and csum[k] < end:
            piece = self.pieces[k]
            parts.append(piece[max(0, start - csum[k]) : end - csum[k]])
            k += 1
        return "".join(parts)

    # -- positions ----------------------------------------------------------------------------

    def _line(self, line: int) -> tuple[int, int, int] | None:
        """Piece, and start and end in it (before the line break), of an LSP line; None past
        the last line."""
        self._sums()
        lsum = self._lsum
        if line < 0 or line > lsum[-1]:
            return None
        k = min(bisect.bisect_right(lsum, line) - 1, len(self.pieces) - 1)
        i = line - lsum[k]
        starts = self._starts(k)
        piece = self.pieces[k]
        s = starts[i]
        if i + 1 < len(starts):
            e = starts[i + 1] - 1
            if piece[e] == "\n" and e > s and piece[e - 1] == "\r":
                e -= 1
        else:
            e = len(piece)
        return k, s, e

    def _where(self, k: int, local: int) -> tuple[int, int, tuple[int, int]]:
        """String offset, byte offset and tree-sitter point (rows at `\\n` only) of offset
        `local` in piece `k`."""
        piece = self.pieces[k]
        head = piece[:local]
        nbytes = local if head.isascii() else _utf8_len(head)
        nl = head.rfind("\n")
        if nl < 0:
            column = nbytes + (self._last_row_bytes(k) if k else 0)
        else:
            row_start = head[nl + 1 :]
            column = len(row_start) if row_start.isascii() else _utf8_len(row_start)
        row = self._nsum[k] + head.count("\n")
        return self._csum[k] + local, self._bsum[k] + nbytes, (row, column)

    def _last_row_bytes(self, k: int) -> int:
        """Bytes after the last `\\n` before piece `k` (0: pieces start after one, except
        after a piece that has none)."""
        total = 0
        while k > 0:
            k -= 1
            piece = self.pieces[k]
            nl = piece.rfind("\n")
            if nl >= 0:
                return total + _utf8_len(piece[nl + 1 :])
            total += self.blens[k]
        return total

    def locate(self, pos: Position) -> tuple[int, int, int, int, tuple[int, int]]:
        """Piece, offset in it, string offset, byte offset and tree-sitter point of an LSP
        position, clamped: past the end of its line to the line's end, past the last line to
        the end of the document."""
        line, units = max(pos[0], 0), max(pos[1], 0)
        found = self._line(line)
        if found is None:
            k = len(self.pieces) - 1
            local = len(self.pieces[k])
        else:
            k, s, e = found
            local = s + _utf16_to_chars(self.pieces[k][s:e], units)
        return k, local, *self._where(k, local)

    def strict(self, line: int, units: int) -> tuple[int, int]:
        """String and UTF-8 byte offset of an LSP position, or InvalidPosition: no clamping
        (completing where the editor did not mean would insert text in the wrong place)."""
        if line < 0:
            raise InvalidPosition(f"line {line} is negative")
        if units < 0:
            raise InvalidPosition(f"character {units} is negative")
        found = self._line(line)
        if found is None:
            raise InvalidPosition(f"line {line} is past the end of the document")
        k, s, e = found
        local = s + column_offset(self.pieces[k][s:e], line, units)
        char, byte, _ = self._where(k, local)
        return char, byte

    # -- edits --------------------------------------------------------------------------------

    def splice(self, start: Position, end: Position, new_text: str) -> tuple[int, ...] | None:
        """Apply one edit; the tree-sitter edit arguments, or None for an empty no-op."""
        s_k, s_local, s_char, s_byte, s_point = self.locate(start)
        e_k, e_local, e_char, e_byte, e_point = self.locate(end)
        if e_char < s_char:  # a reversed range: use its normal form
            s_k, s_local, s_char, s_byte, s_point, e_k, e_local, e_char, e_byte, e_point = (
                e_k, e_local, e_char, e_byte, e_point, s_k, s_local, s_char, s_byte, s_point,
            )  # fmt: skip
        if s_char == e_char and not new_text:
            return None
        joined = self.pieces[s_k][:s_local] + new_text + self.pieces[e_k][e_local:]
        recount = self.has_nul or "\x00" in new_text
        self._replace(s_k, e_k + 1, _cut(joined, self.piece_chars) if joined else [])
        if recount:
            self.has_nul = any("\x00" in p for p in self.pieces)

        enc = new_text.encode("utf-8", "surrogatepass")
        nl = enc.count(b"\n")
        if nl:
            new_end_point = (s_point[0] + nl, len(enc) - enc.rfind(b"\n") - 1)
        else:
            new_end_point = (s_point[0], s_point[1] + len(enc))
        return (s_byte, e_byte, s_byte + len(enc), *s_point, *e_point, *new_end_point)

    def _replace(self, lo: int, hi: int, pieces: list[str]) -> None:
        """Put `pieces` in place of pieces lo..hi (at least one piece stays, maybe empty)."""
        if not pieces and lo == 0 and hi == len(self.pieces):
            pieces = [""]
        self.pieces[lo:hi] = pieces
        self.breaks[lo:hi] = [_breaks(p) for p in pieces]
        self.nls[lo:hi] = [p.count("\n") for p in pieces]
        self.blens[lo:hi] = [_utf8_len(p) for p in pieces]
        self.starts[lo:hi] = [None] * len(pieces)
        if self.bpieces is not None:
            self.bpieces[lo:hi] = [p.encode("utf-8", "surrogatepass") for p in pieces]
        self._text = None
        self._sums_from = min(self._sums_from, lo)

    def freeze(self) -> _Snapshot:
        """The current bytes, for a parse that edits made meanwhile do not disturb."""
        assert self.bpieces is not None
        self._sums()
        return _Snapshot(tuple(self.bpieces), tuple(self._bsum))


class _Snapshot:
    """A document's UTF-8 bytes at one moment, read in pieces (tree-sitter's input)."""

    __slots__ = ("pieces", "sums")

    def __init__(self, pieces: tuple[bytes, ...], sums: tuple[int, ...]) -> None:
        self.pieces = pieces
        self.sums = sums

    def read(self, offset: int, _point: tuple[int, int] | None = None) -> bytes:
        """Bytes from `offset` to the end of its piece."""
        k = bisect.bisect_right(self.sums, offset) - 1
        if k >= len(self.pieces):
            return b""
        return self.pieces[k][offset - self.sums[k] :]


def _cut(text: str, size: int) -> list[str]:
    """`text` in pieces of about `size` characters, each but the last ending with `\\n` (a
    line longer than `size` stays whole)."""
    if len(text) <= 2 * size:
        return [text]
    out: list[str] = []
    start = 0
    while len(text) - start > 2 * size:
        nl = text.find("\n", start + size)
        if nl < 0:
            break
        out.append(text[start : nl + 1])
        start = nl + 1
    if start < len(text):
        out.append(text[start:])
    return out


def _breaks(piece: str) -> int:
    """LSP line breaks in `piece` (`\\r\\n`, `\\r` and `\\n`)."""
    n = piece.count("\n")
    if "\r" in piece:
        n += piece.count("\r") - piece.count("\r\n")
    return n


def _utf8_len(text: str) -> int:
    return len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))


class DocumentTrees:
    """The open documents, keyed by URI: the server's one model of their text (as the editor
    edits it, lines broken at `\\n`, `\\r\\n` and `\\r`, UTF-16 columns), version and parse
    tree.

    Not thread-safe: call it from one thread (the server's event loop). Trees returned by
    `tree` are snapshots that later edits do not change, so they may be read elsewhere.

    With `background`, an edit costs only the splice: the tree is edited, and reparsed once
    edits pause for `idle_ms` (or at once for whoever awaits `current_tree`), on the event
    loop in slices of at most `slice_ms` (tree-sitter holds the GIL while it parses, so a
    thread would stall the loop just the same); `tree` is None until the reparse is done.
    Without it (commands, tests), each change is parsed at once.
    """

    def __init__(
        self,
        max_bytes: int = DEFAULT_MAX_BYTES,
        *,
        background: bool = False,
        slice_ms: float = PARSE_SLICE_MS,
        idle_ms: float = PARSE_IDLE_MS,
        piece_chars: int = PIECE_CHARS,
    ) -> None:
        self.max_bytes = max_bytes
        self.piece_chars = piece_chars
        self.background = background
        self.slice_s = slice_ms / 1000
        self.idle_s = idle_ms / 1000
        self._last_edit = 0.0
        self._docs: dict[str, _Document] = {}
        self._dirty: dict[str, None] = {}
        """Documents whose tree is behind their text, oldest edit first."""
        self._pump: asyncio.Task[None] | None = None
        self._idle = asyncio.Event() if background else None

    def _eligible(self, uri: str, doc: _Document) -> bool:
        """Whether the document should have a tree (if not, why is logged). Only one that
        should keeps its UTF-8 bytes up to date (a big document's edits splice one string)."""
        if ts_language(doc.language_id) is None:
            doc.keep_bytes(False)
            return False
        if doc.nbytes > self.max_bytes:
            if doc.bpieces is not None:
                log.debug(
                    "%s: %d bytes is over the %d limit, no tree", uri, doc.nbytes, self.max_bytes
                )
            doc.keep_bytes(False)
            return False
        doc.keep_bytes(True)
        if doc.has_nul:
            log.debug("%s: contains NUL bytes, no tree", uri)
            return False
        return True

    def _stale(self, uri: str, doc: _Document) -> None:
        """The text changed: reparse it now, or mark it for the background parser."""
        doc.tree = None
        if not self._eligible(uri, doc):
            doc.base = doc.snapshot = doc.parse_old = None
            doc.pending = []
            self._dirty.pop(uri, None)
            return
        if not self.background:
            while not self._step(uri, doc, None):
                pass
            return
        self._dirty[uri] = None
        self._last_edit = time.perf_counter()
        if self._pump is None or self._pump.done():
            assert self._idle is not None
            self._idle.clear()
            self._pump = asyncio.get_running_loop().create_task(self._run())

    def _step(self, uri: str, doc: _Document, deadline: float | None) -> bool:
        """Parse the document until `deadline` (`time.perf_counter`; None: to the end); True
        once its tree is up to date, False when the slice ran out first (the next step goes
        on where this one stopped)."""
        parser = doc.parser
        lang = ts_language(doc.language_id) if parser is None else None
        if doc.bpieces is None or (parser is None and lang is None):
            self._dirty.pop(uri, None)
            return True
        if parser is None:
            parser = doc.parser = tree_sitter.Parser(lang)
        if doc.snapshot is None:  # a new parse, of the text as it is now
            parser.reset()
            doc.snapshot, doc.parse_old, doc.pending = doc.freeze(), doc.base, []
        read, old = doc.snapshot.read, doc.parse_old
        try:
            if deadline is None:
                tree = parser.parse(read, old) if old else parser.parse(read)
            else:
                calls = 0

                def halt(*_: object) -> bool:
                    nonlocal calls  # tree-sitter asks often: look at the clock 1 time in 8
                    calls += 1
                    return calls & 7 == 0 and time.perf_counter() > deadline

                if old is not None:
                    tree = parser.parse(read, old, progress_callback=halt)
                else:
                    tree = parser.parse(read, progress_callback=halt)
        except ValueError:
            if deadline is not None and time.perf_counter() > deadline:
                return False  # halted by the deadline: resumable
            log.warning("%s: parse failed", uri, exc_info=True)
            tree = None
        except Exception:  # a grammar failing must not break document sync
            log.warning("%s: parse failed", uri, exc_info=True)
            tree = None
        pending, doc.snapshot, doc.parse_old, doc.pending = doc.pending, None, None, []
        if pending and tree is not None:
            # The text changed while it was parsed: its tree, edited the same way, is the
            # old tree of an incremental parse of the text as it is now.
            for sb, ob, nb, sr, sc, orow, ocol, nr, nc in pending:
                tree.edit(sb, ob, nb, (sr, sc), (orow, ocol), (nr, nc))
            doc.base = tree
            return False
        doc.tree, doc.base = tree, None
        self._dirty.pop(uri, None)
        return True

    async def _run(self) -> None:
        """Reparse edited documents once edits pause, a slice at a time, letting the loop run
        in between."""
        assert self._idle is not None
        try:
            while self._dirty:
                wait = self._last_edit + self.idle_s - time.perf_counter()
                if wait > 0:
                    await asyncio.sleep(wait)
                    continue
                uri = next(iter(self._dirty))
                doc = self._docs.get(uri)
                if doc is None:
                    self._dirty.pop(uri, None)
                    continue
                self._step(uri, doc, time.perf_counter() + self.slice_s)
                await asyncio.sleep(0)
        finally:
            self._idle.set()

    def tree_now(self, uri: str, budget_ms: float) -> tree_sitter.Tree | None:
        """The document's current tree, parsing for at most `budget_ms` to bring it up to
        date (a small edit's reparse); None if that is not enough (the background parser
        goes on with it)."""
        doc = self._docs.get(uri)
        if doc is None:
            return None
        deadline = time.perf_counter() + budget_ms / 1000
        while uri in self._dirty and time.perf_counter() < deadline:
            self._step(uri, doc, deadline)
        return None if uri in self._dirty else doc.tree

    def stop(self) -> None:
        """Stop the background parser."""
        if self._pump is not None:
            self._pump.cancel()
            self._pump = None
        if self._idle is not None:
            self._idle.set()

    async def current_tree(self, uri: str) -> tree_sitter.Tree | None:
        """The document's tree once it is up to date (parsed in slices meanwhile)."""
        while (doc := self._docs.get(uri)) is not None and uri in self._dirty:
            self._step(uri, doc, time.perf_counter() + self.slice_s)
            await asyncio.sleep(0)
        return doc.tree if doc is not None else None

    async def settled(self) -> None:
        """Wait until every open document's tree is up to date."""
        while self._dirty and self._idle is not None:
            if self._pump is None or self._pump.done():
                for uri in list(self._dirty):  # no parser running: finish them here
                    await self.current_tree(uri)
                continue
            await self._idle.wait()
            await asyncio.sleep(0)

    def open(self, uri: str, language_id: str, text: str, version: int = 0) -> None:
        """Start tracking a document (replacing any previous state for `uri`)."""
        doc = self._docs[uri] = _Document(language_id, text, version, self.piece_chars)
        self._stale(uri, doc)

    def change(self, uri: str, start: Position, end: Position, new_text: str) -> None:
        """Apply one incremental LSP change: replace the range start..end with `new_text`.

        Positions are (line, UTF-16 column); out-of-range positions are clamped to the end
        of their line or of the document, as editors expect.
        """
        doc = self._docs.get(uri)
        if doc is None:
            log.debug("change to %s, which is not open", uri)
            return
        edit = doc.splice(start, end, new_text)
        if edit is None:
            return
        if doc.snapshot is not None:  # a parse is under way: its tree gets this edit later
            doc.pending.append(edit)
        else:
            old = doc.base if doc.base is not None else doc.tree
            if old is not None:
                old = old.copy()  # trees handed out never change
                sb, ob, nb, sr, sc, orow, ocol, nr, nc = edit
                old.edit(sb, ob, nb, (sr, sc), (orow, ocol), (nr, nc))
            doc.base = old
        self._stale(uri, doc)

    def full(self, uri: str, text: str) -> None:
        """Replace a document's whole text (a full-content change) and parse it afresh."""
        doc = self._docs.get(uri)
        if doc is None:
            log.debug("full change to %s, which is not open", uri)
            return
        doc.set_text(text)
        doc.base = doc.snapshot = doc.parse_old = None  # a parse under way is of another text
        doc.pending = []
        self._stale(uri, doc)

    def close(self, uri: str) -> None:
        """Forget a document."""
        self._docs.pop(uri, None)
        self._dirty.pop(uri, None)

    def set_version(self, uri: str, version: int) -> None:
        """The version the editor gave the document's latest change."""
        doc = self._docs.get(uri)
        if doc is not None:
            doc.version = version

    def get(self, uri: str) -> OpenDocument | None:
        """A snapshot of an open document; None if it is not open."""
        doc = self._docs.get(uri)
        if doc is None:
            return None
        return OpenDocument(uri, doc.text, doc.language_id, doc.version)

    def offset_at(self, uri: str, line: int, character: int) -> tuple[int, int]:
        """String and UTF-8 byte offset of an LSP position in an open document, found through
        its line table (O(line length)); InvalidPosition for a position not in it, KeyError
        for a document that is not open."""
        return self._docs[uri].strict(line, character)

    def view(self, uri: str, line: int, character: int, prompt_tokens: int = 0) -> tuple[View, int]:
        """What a completion at an LSP position reads (`completion.view.view`: the head and a
        window around the cursor, or all of a small document) and the cursor's UTF-8 offset in
        the document; made from the pieces it spans, in time bounded by the window.
        InvalidPosition or KeyError as `offset_at`."""
        doc = self._docs[uri]
        offset, byte = doc.strict(line, character)
        window = max(WINDOW_CHARS, 16 * prompt_tokens)
        size = doc.nchars
        if size <= HEAD_CHARS + 2 * window:
            return View(doc.text, offset), byte
        start, end = max(0, offset - window), min(size, offset + window)
        text = doc.slice(start, end)
        cut = text.find("\n", 0, offset - start) + 1 if start > 0 else 0
        if end < size:
            keep = text.rfind("\n") + 1
            text = text[: keep if keep > offset - start else len(text)]
        text = text[cut:]
        start += cut
        head = doc.slice(0, HEAD_CHARS)
        head = head[: head.rfind("\n") + 1]
        if start <= len(head):
            return View(doc.slice(0, start) + text, offset), byte
        first_line = line - _breaks(text[: offset - start])
        return View(head + text, len(head) + offset - start, first_line - _breaks(head)), byte

    def text_later(self, uri: str) -> Callable[[], str] | None:
        """A function that makes the document's current text, safe to call later and from
        another thread (it joins a snapshot of the pieces); None if not open."""
        doc = self._docs.get(uri)
        if doc is None:
            return None
        if doc._text is not None:
            text = doc._text
            return lambda: text
        return functools.partial("".join, tuple(doc.pieces))

    def length(self, uri: str) -> int:
        """The document's length in characters (0 if not open)."""
        doc = self._docs.get(uri)
        return doc.nchars if doc is not None else 0

    def binary(self, uri: str) -> bool:
        """Whether the document has NUL characters."""
        doc = self._docs.get(uri)
        return doc is not None and doc.has_nul

    def version(self, uri: str) -> int | None:
        doc = self._docs.get(uri)
        return doc.version if doc is not None else None

    def tree(self, uri: str) -> tree_sitter.Tree | None:
        """The document's current tree; None if not open, unsupported, too big, binary, or
        (in the background mode) not reparsed since its last change yet."""
        doc = self._docs.get(uri)
        return doc.tree if doc is not None and uri not in self._dirty else None

    def text(self, uri: str) -> str | None:
        """The document's current text, or None if it is not open."""
        doc = self._docs.get(uri)
        return doc.text if doc is not None else None

    def data(self, uri: str) -> bytes | None:
        """The document's current text as UTF-8 (what the tree was parsed from)."""
        doc = self._docs.get(uri)
        return doc.data if doc is not None else None

    def language_id(self, uri: str) -> str | None:
        """The language id the document was opened with."""
        doc = self._docs.get(uri)
        return doc.language_id if doc is not None else None

    def __contains__(self, uri: object) -> bool:
        return uri in self._docs

    def uris(self) -> list[str]:
        """The URIs of the open documents."""
        return list(self._docs)
