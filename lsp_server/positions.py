"""LSP positions (line, UTF-16 code unit) to string offsets, strictly validated."""

from __future__ import annotations

import re


class InvalidPosition(ValueError):
    """A position that does not point into the document."""


def utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


_LINE_END = re.compile(r"\r\n|\r|\n")


def _line_span(text: str, line: int) -> tuple[int, int]:
    """Start and end offset of `line`, without its line ending (one pass up to the line)."""
    if line < 0:
        raise InvalidPosition(f"line {line} is negative")
    start = 0
    if line and "\r" not in text:
        for _ in range(line):  # the common case: str.find is much faster than a regex
            nl = text.find("\n", start)
            if nl < 0:
                raise InvalidPosition(f"line {line} is past the end of the document")
            start = nl + 1
    elif line:
        for n, m in enumerate(_LINE_END.finditer(text), start=1):
            if n == line:
                start = m.end()
                break
        else:
            raise InvalidPosition(f"line {line} is past the end of the document")
    end = _LINE_END.search(text, start)
    return start, end.start() if end else len(text)


def offset_at(text: str, line: int, character: int) -> int:
    """The string offset of an LSP position (UTF-16 `character`), or InvalidPosition.

    A character past the end of its line, or one that falls between the two halves of a
    surrogate pair, is rejected rather than clamped: completing at a place the editor did not
    mean would insert text in the wrong spot.
    """
    if character < 0:
        raise InvalidPosition(f"character {character} is negative")
    start, end = _line_span(text, line)
    return start + column_offset(text[start:end], line, character)


def column_offset(content: str, line: int, character: int) -> int:
    """The string offset in a line's `content` (without its line break) of UTF-16 column
    `character`, strictly: InvalidPosition past the line's end or inside a surrogate pair."""
    if content.isascii():
        if character > len(content):
            raise InvalidPosition(
                f"character {character} is past the end of line {line} "
                f"({len(content)} UTF-16 code units)"
            )
        return character
    units = offset = 0
    while units < character:
        if offset >= len(content):
            raise InvalidPosition(
                f"character {character} is past the end of line {line} "
                f"({utf16_len(content)} UTF-16 code units)"
            )
        units += 2 if ord(content[offset]) > 0xFFFF else 1
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
    line, start = 0, 0
    for m in _LINE_END.finditer(text, 0, offset):
        if m.end() > offset:
            break
        line, start = line + 1, m.end()
    return line, utf16_len(text[start:offset])
