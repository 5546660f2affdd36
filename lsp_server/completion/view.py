"""What a completion reads of a big document: its head and a window around the cursor.

Every step of a completion (cache keys, gate, context, prompt, post-processing) works on this
view, so its cost is bounded by the window, not by the document: a 100,000-line file costs what
a 3,000-line one does. The head keeps the file's imports in view; the window is far wider than
any prompt shows (16 characters per prompt token on each side), so the model never sees the
seam between them.
"""

from __future__ import annotations

import msgspec

HEAD_CHARS = 32_768
"""The start of the file kept in view (imports, module docstring)."""
WINDOW_CHARS = 65_536
"""At least this many characters before and after the cursor are kept in view."""


class View(msgspec.Struct, frozen=True):
    """A document's text as a completion sees it."""

    text: str
    offset: int
    """The cursor, in `text`."""
    line_shift: int = 0
    """Add to a line of `text` past the head to get its line in the document."""


def view(text: str, offset: int, line: int | None = None, *, prompt_tokens: int = 0) -> View:
    """The head and the window around `offset` of `text` (all of it when it is small enough).

    `line` is the cursor's line in the document (counted here when not given: O(document)).
    """
    window = max(WINDOW_CHARS, 16 * prompt_tokens)
    if len(text) <= HEAD_CHARS + 2 * window:
        return View(text, offset)
    start = max(0, offset - window)
    start = text.rfind("\n", 0, start) + 1 if start > 0 else 0
    end = text.find("\n", min(len(text), offset + window))
    end = len(text) if end < 0 else end + 1
    head_end = text.rfind("\n", 0, HEAD_CHARS) + 1
    if start <= head_end:
        return View(text[:end], offset)
    head = text[:head_end]
    if line is None:
        line = text.count("\n", 0, offset)
    first_line = line - text.count("\n", start, offset)
    return View(head + text[start:end], len(head) + offset - start, first_line - head.count("\n"))
