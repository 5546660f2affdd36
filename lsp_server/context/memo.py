"""Context reuse while a word is typed: the repository context of a word's first letter
serves its next ones.

Gathering context (identifiers around the cursor, definition lookups, similar windows, their
redaction) costs a millisecond or two; typing a name letter by letter asks for it again at
every keystroke with a text that differs only in that name. The text before the word and
after the cursor are compared exactly, together with everything else the context depends on
(the index's and the recent documents' generations, the budgets, the settings' scope): any
other change gathers again.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable
from typing import Generic, TypeVar

T = TypeVar("T")

MAX_DOCUMENTS = 32
"""One entry per document, for this many documents."""


def word_start(text: str, offset: int) -> int:
    """Where the identifier being typed at `offset` starts (`offset` itself when the cursor is
    inside a word rather than at its end, or after no word)."""
    if offset < len(text) and (text[offset].isalnum() or text[offset] in "_$"):
        return offset
    start = offset
    while start > 0 and (text[start - 1].isalnum() or text[start - 1] in "_$"):
        start -= 1
    return start


class _Entry(Generic[T]):
    __slots__ = ("after", "before", "scope", "value")

    def __init__(self, scope: Hashable, before: str, after: str, value: T) -> None:
        self.scope = scope
        self.before = before
        self.after = after
        self.value = value


class WordMemo(Generic[T]):
    """The last value computed for each document, reused while only the word at the cursor
    grows (thread-safe, bounded)."""

    def __init__(self, max_documents: int = MAX_DOCUMENTS) -> None:
        self.max_documents = max_documents
        self._entries: OrderedDict[str, _Entry[T]] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, document: str, scope: Hashable, text: str, offset: int) -> T | None:
        """The value stored for `document` when `scope` is equal and `text` differs from the
        stored one only in the word ending at `offset`."""
        with self._lock:
            entry = self._entries.get(document)
        if entry is not None and entry.scope == scope:
            start = word_start(text, offset)
            if (
                len(entry.before) == start
                and len(entry.after) == len(text) - offset
                and text.endswith(entry.after)
                and text.startswith(entry.before)
            ):
                self.hits += 1
                return entry.value
        self.misses += 1
        return None

    def put(self, document: str, scope: Hashable, text: str, offset: int, value: T) -> None:
        start = word_start(text, offset)
        entry = _Entry(scope, text[:start], text[offset:], value)
        with self._lock:
            self._entries.pop(document, None)
            self._entries[document] = entry
            while len(self._entries) > self.max_documents:
                self._entries.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


__all__ = ["WordMemo", "word_start"]
