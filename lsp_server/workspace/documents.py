"""Open documents' text and tree-sitter trees, updated incrementally on each LSP change.

Positions given to `DocumentTrees.change` are LSP positions: 0-based lines (broken at `\\n`,
`\\r\\n` and `\\r`) and UTF-16 code unit columns. Tree-sitter wants UTF-8 byte offsets and
(row, byte column) points with rows broken at `\\n` only; this module converts between them.

Each document keeps its text as a `str` and as UTF-8 `bytes`; an edit splices both instead of
re-encoding the whole text, and line starts (string and byte offsets) are cached and only
recomputed from the edited line onwards when they are needed again. Trees handed out are
never mutated afterwards: an edit works on a copy of the previous tree.
"""

from __future__ import annotations

import logging
import re

import msgspec
import tree_sitter

from lsp_server.workspace.languages import ts_language

log = logging.getLogger(__name__)

DEFAULT_MAX_BYTES = 2 * 1024 * 1024
"""Documents larger than this (UTF-8) keep their text but get no tree."""

_LINE_BREAK = re.compile(r"\r\n?|\n")

Position = tuple[int, int]
"""An LSP position: (line, UTF-16 column)."""


def _has_lone_cr(text: str, lo: int, hi: int) -> bool:
    """Whether a `\\r` not followed by `\\n` starts in text[lo:hi]."""
    i = text.find("\r", max(lo, 0), hi)
    while i != -1:
        if i + 1 >= len(text) or text[i + 1] != "\n":
            return True
        i = text.find("\r", i + 1, hi)
    return False


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
    """One open document: text, UTF-8 bytes, lazily extended line tables, tree."""

    __slots__ = (
        "bstarts",
        "cstarts",
        "data",
        "has_nul",
        "language_id",
        "lone_cr",
        "text",
        "tree",
        "version",
    )

    def __init__(self, language_id: str, text: str, version: int = 0) -> None:
        self.language_id = language_id
        self.version = version
        self.tree: tree_sitter.Tree | None = None
        self.set_text(text)

    def set_text(self, text: str) -> None:
        self.text = text
        self.data = text.encode("utf-8", "surrogatepass")
        self.has_nul = "\x00" in text
        self.lone_cr = _has_lone_cr(text, 0, len(text))
        self.cstarts = [0]
        self.bstarts = [0]

    def _extend_to(self, line: int) -> bool:
        """Fill the line tables up to `line`; False if the document has fewer lines."""
        cs, bs, text = self.cstarts, self.bstarts, self.text
        ascii_text = text.isascii()
        while len(cs) <= line:
            c = cs[-1]
            if self.lone_cr:
                m = _LINE_BREAK.search(text, c)
                if m is None:
                    return False
                nxt = m.end()
            else:
                nl = text.find("\n", c)
                if nl == -1:
                    return False
                nxt = nl + 1
            seg = nxt - c if ascii_text else len(text[c:nxt].encode("utf-8", "surrogatepass"))
            cs.append(nxt)
            bs.append(bs[-1] + seg)
        return True

    def _line_end(self, line: int) -> int:
        """The string offset where `line`'s content ends (before its line break)."""
        if self._extend_to(line + 1):
            end = self.cstarts[line + 1]
            text = self.text
            if text[end - 1] == "\n":
                end -= 1
                if end > 0 and text[end - 1] == "\r" and end > self.cstarts[line]:
                    end -= 1
            else:  # a lone "\r"
                end -= 1
            return end
        return len(self.text)

    def locate(self, pos: Position) -> tuple[int, int, int, tuple[int, int]]:
        """Line, string offset, byte offset and tree-sitter point of an LSP position.

        The position is clamped: past the end of its line to the line's end, past the last
        line to the end of the document.
        """
        line, units = pos
        line = max(line, 0)
        if not self._extend_to(line):
            line = len(self.cstarts) - 1
            units = 1 << 62  # past the end of the last line
        c0, b0 = self.cstarts[line], self.bstarts[line]
        end = self._line_end(line)
        seg = self.text[c0:end]
        k = _utf16_to_chars(seg, max(units, 0))
        char = c0 + k
        byte = b0 + (k if seg.isascii() else len(seg[:k].encode("utf-8", "surrogatepass")))
        if self.lone_cr:
            row = self.data.count(b"\n", 0, byte)
            point = (row, byte - (self.data.rfind(b"\n", 0, byte) + 1))
        else:
            point = (line, byte - b0)
        return line, char, byte, point

    def splice(self, start: Position, end: Position, new_text: str) -> tuple[int, ...] | None:
        """Apply one edit; the tree-sitter edit arguments, or None for an empty no-op."""
        s_line, s_char, s_byte, s_point = self.locate(start)
        e_line, e_char, e_byte, e_point = self.locate(end)
        if e_char < s_char:  # a reversed range: use its normal form
            s_line, s_char, s_byte, s_point, e_line, e_char, e_byte, e_point = (
                e_line, e_char, e_byte, e_point, s_line, s_char, s_byte, s_point,
            )  # fmt: skip
        if s_char == e_char and not new_text:
            return None
        text, data = self.text, self.data
        enc = new_text.encode("utf-8", "surrogatepass")
        self.text = text = text[:s_char] + new_text + text[e_char:]
        self.data = data[:s_byte] + enc + data[e_byte:]

        nl = enc.count(b"\n")
        if nl:
            new_end_point = (s_point[0] + nl, len(enc) - enc.rfind(b"\n") - 1)
        else:
            new_end_point = (s_point[0], s_point[1] + len(enc))

        if self.has_nul:
            self.has_nul = "\x00" in text
        else:
            self.has_nul = "\x00" in new_text
        was_lone = self.lone_cr
        if was_lone:
            self.lone_cr = _has_lone_cr(text, 0, len(text))
        else:
            self.lone_cr = _has_lone_cr(text, s_char - 1, s_char + len(new_text) + 1)
        if self.lone_cr != was_lone:
            del self.cstarts[1:], self.bstarts[1:]
        else:
            # Lines before the edit's line are unchanged; the edit's own line may start
            # differently when a "\r" before it meets a "\n" at its start.
            keep = max(s_line, 1)
            del self.cstarts[keep:], self.bstarts[keep:]
        return (
            s_byte,
            e_byte,
            s_byte + len(enc),
            *s_point,
            *e_point,
            *new_end_point,
        )


class DocumentTrees:
    """The open documents, keyed by URI: the server's one model of their text (as the editor
    edits it, lines broken at `\\n`, `\\r\\n` and `\\r`, UTF-16 columns), version and parse
    tree.

    Not thread-safe: call it from one thread (the server's event loop). Trees returned by
    `tree` are snapshots that later edits do not change, so they may be read elsewhere.
    """

    def __init__(self, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.max_bytes = max_bytes
        self._docs: dict[str, _Document] = {}
        self._parsers: dict[str, tree_sitter.Parser] = {}

    def _parser(self, language_id: str) -> tree_sitter.Parser | None:
        parser = self._parsers.get(language_id)
        if parser is None:
            lang = ts_language(language_id)
            if lang is None:
                return None
            parser = self._parsers[language_id] = tree_sitter.Parser(lang)
        return parser

    def _eligible(self, uri: str, doc: _Document) -> tree_sitter.Parser | None:
        """The parser for a document that should have a tree, else None (and why, logged)."""
        parser = self._parser(doc.language_id)
        if parser is None:
            return None
        if len(doc.data) > self.max_bytes:
            log.debug(
                "%s: %d bytes is over the %d limit, no tree", uri, len(doc.data), self.max_bytes
            )
            return None
        if doc.has_nul:
            log.debug("%s: contains NUL bytes, no tree", uri)
            return None
        return parser

    def _parse(
        self, uri: str, parser: tree_sitter.Parser, doc: _Document, old: tree_sitter.Tree | None
    ) -> None:
        try:
            doc.tree = parser.parse(doc.data, old) if old is not None else parser.parse(doc.data)
        except Exception:  # a grammar failing must not break document sync
            log.warning("%s: parse failed", uri, exc_info=True)
            doc.tree = None

    def open(self, uri: str, language_id: str, text: str, version: int = 0) -> None:
        """Start tracking a document (replacing any previous state for `uri`)."""
        doc = self._docs[uri] = _Document(language_id, text, version)
        parser = self._eligible(uri, doc)
        if parser is not None:
            self._parse(uri, parser, doc, None)

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
        parser = self._eligible(uri, doc)
        if parser is None:
            doc.tree = None
            return
        old = doc.tree
        if old is not None:
            old = old.copy()
            sb, ob, nb, sr, sc, orow, ocol, nr, nc = edit
            old.edit(sb, ob, nb, (sr, sc), (orow, ocol), (nr, nc))
        self._parse(uri, parser, doc, old)

    def full(self, uri: str, text: str) -> None:
        """Replace a document's whole text (a full-content change) and parse it afresh."""
        doc = self._docs.get(uri)
        if doc is None:
            log.debug("full change to %s, which is not open", uri)
            return
        doc.set_text(text)
        doc.tree = None
        parser = self._eligible(uri, doc)
        if parser is not None:
            self._parse(uri, parser, doc, None)

    def close(self, uri: str) -> None:
        """Forget a document."""
        self._docs.pop(uri, None)

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

    def tree(self, uri: str) -> tree_sitter.Tree | None:
        """The document's current tree; None if not open, unsupported, too big or binary."""
        doc = self._docs.get(uri)
        return doc.tree if doc is not None else None

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
