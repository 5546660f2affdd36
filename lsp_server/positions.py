"""LSP positions (line, UTF-16 code unit) to string offsets, strictly validated."""

from __future__ import annotations


class InvalidPosition(ValueError):
    """A position that does not point into the document."""


def _utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def _line_span(text: str, line: int) -> tuple[int, int]:
    """Start and end offset of `line`, without its line ending."""
    if line < 0:
        raise InvalidPosition(f"line {line} is negative")
    start = 0
    for _ in range(line):
        nl = _next_line_start(text, start)
        if nl is None:
            raise InvalidPosition(f"line {line} is past the end of the document")
        start = nl
    end = start
    while end < len(text) and text[end] not in "\r\n":
        end += 1
    return start, end


def _next_line_start(text: str, start: int) -> int | None:
    n_pos = text.find("\n", start)
    r_pos = text.find("\r", start)
    candidates = [p for p in (n_pos, r_pos) if p != -1]
    if not candidates:
        return None
    p = min(candidates)
    if text[p] == "\r" and p + 1 < len(text) and text[p + 1] == "\n":
        return p + 2
    return p + 1


def offset_at(text: str, line: int, character: int) -> int:
    """The string offset of an LSP position (UTF-16 `character`), or InvalidPosition.

    A character past the end of its line, or one that falls between the two halves of a
    surrogate pair, is rejected rather than clamped: completing at a place the editor did not
    mean would insert text in the wrong spot.
    """
    if character < 0:
        raise InvalidPosition(f"character {character} is negative")
    start, end = _line_span(text, line)
    units = 0
    offset = start
    while units < character:
        if offset >= end:
            raise InvalidPosition(
                f"character {character} is past the end of line {line} "
                f"({_utf16_len(text[start:end])} UTF-16 code units)"
            )
        units += 2 if ord(text[offset]) > 0xFFFF else 1
        offset += 1
    if units != character:
        raise InvalidPosition(
            f"character {character} of line {line} splits a UTF-16 surrogate pair"
        )
    return offset


def position_at(text: str, offset: int) -> tuple[int, int]:
    """The LSP (line, UTF-16 character) of a string offset."""
    if not 0 <= offset <= len(text):
        raise InvalidPosition(f"offset {offset} is outside the document")
    line = 0
    start = 0
    while True:
        nxt = _next_line_start(text, start)
        if nxt is None or nxt > offset:
            break
        line += 1
        start = nxt
    return line, _utf16_len(text[start:offset])
