"""LSP positions (UTF-16) to offsets: exact where valid, an error where not."""

from __future__ import annotations

import pytest

from lsp_server.positions import InvalidPosition, offset_at, position_at

EMOJI = "\U0001f600"  # two UTF-16 code units


@pytest.mark.parametrize(
    ("text", "line", "character", "offset"),
    [
        pytest.param("abc", 0, 0, 0, id="start"),
        pytest.param("abc", 0, 3, 3, id="end-of-line"),
        pytest.param("ab\ncd", 1, 1, 4, id="second-line"),
        pytest.param("ab\r\ncd", 1, 2, 6, id="crlf"),
        pytest.param("ab\rcd", 1, 0, 3, id="lone-cr"),
        pytest.param(f"{EMOJI}x", 0, 2, 1, id="after-surrogate-pair"),
        pytest.param(f"{EMOJI}x", 0, 3, 2, id="after-pair-and-char"),
        pytest.param("é\n", 0, 1, 1, id="bmp-char-one-unit"),
        pytest.param("x\n", 1, 0, 2, id="empty-last-line"),
    ],
)
def test_valid_positions(text: str, line: int, character: int, offset: int) -> None:
    assert offset_at(text, line, character) == offset
    assert position_at(text, offset) == (line, character)


@pytest.mark.parametrize(
    ("text", "line", "character", "message"),
    [
        pytest.param("abc", 1, 0, "past the end of the document", id="line-past-end"),
        pytest.param("abc", 0, 4, "past the end of line 0", id="character-past-line"),
        pytest.param("ab\ncd", 0, 3, "past the end of line 0", id="character-into-next-line"),
        pytest.param(f"{EMOJI}x", 0, 1, "surrogate pair", id="inside-surrogate-pair"),
        pytest.param("abc", -1, 0, "negative", id="negative-line"),
        pytest.param("abc", 0, -1, "negative", id="negative-character"),
    ],
)
def test_invalid_positions(text: str, line: int, character: int, message: str) -> None:
    with pytest.raises(InvalidPosition, match=message):
        offset_at(text, line, character)
