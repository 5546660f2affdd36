"""Completions kept for reuse: an LRU keyed by the text around the cursor, read forward.

Typing the characters of a shown suggestion moves the cursor forward through it while the
text after the cursor stays the same. :meth:`CompletionCache.get` recognises that: an entry
made at prefix ``P`` answers a request at ``P + typed`` with what is left of each item after
``typed``, so long as ``typed`` is what the item began with. Text that contradicts the typing
is never returned.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["CacheStats", "CompletionCache", "Lookup", "remainders", "typed_since"]

PREFIX_CHARS = 1024
"""Characters before the cursor that must match (the key's prefix part)."""

SUFFIX_CHARS = 512
"""Characters after the cursor that must match (the key's suffix part)."""


@dataclass(slots=True)
class CacheStats:
    """Counts since start, for status displays and benchmarks."""

    exact: int = 0
    forward: int = 0
    misses: int = 0


@dataclass(frozen=True, slots=True)
class Lookup:
    """A cache answer: the items to show, what was typed through, the items as first shown."""

    items: tuple[str, ...]
    typed: str
    origin: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class _Entry:
    prefix_len: int
    prefix_tail: str
    items: tuple[str, ...]


def remainders(items: tuple[str, ...], typed: str) -> tuple[str, ...]:
    """What is left of each item after ``typed``; items that disagree with it are dropped."""
    return tuple(i[len(typed) :] for i in items if i.startswith(typed) and len(i) > len(typed))


def typed_since(
    prefix: str, origin_len: int, origin_tail: str, suffix_matches: bool = True
) -> str | None:
    """What was typed after a cursor that stood at ``origin_len``, or None if the text moved.

    ``origin_tail`` is the text that ended at the old cursor; it must still be there.
    """
    if not suffix_matches or len(prefix) < origin_len:
        return None
    start = origin_len - len(origin_tail)
    if prefix[start:origin_len] != origin_tail:
        return None
    return prefix[origin_len:]


class CompletionCache:
    """An LRU of finalized completions with typing-through lookups.

    ``tag`` separates entries that must not answer each other (language, gate mode, whether
    the request was invoked).
    """

    def __init__(self, capacity: int = 256) -> None:
        self.capacity = capacity
        self.stats = CacheStats()
        # (tag, suffix head) -> entries by (prefix length, prefix tail); the outer order is
        # the LRU order over suffix heads, the inner dict holds the positions typed through.
        self._entries: OrderedDict[tuple[str, str], OrderedDict[tuple[int, str], _Entry]] = (
            OrderedDict()
        )
        self._size = 0

    def __len__(self) -> int:
        return self._size

    def clear(self) -> None:
        self._entries.clear()
        self._size = 0

    def put(self, prefix: str, suffix: str, items: Sequence[str], *, tag: str = "") -> None:
        """Remember the non-empty ``items`` shown at the cursor between prefix and suffix."""
        kept = tuple(item for item in items if item)
        if not kept:
            return
        head = (tag, suffix[:SUFFIX_CHARS])
        tail = prefix[-PREFIX_CHARS:]
        group = self._entries.setdefault(head, OrderedDict())
        key = (len(prefix), tail)
        if key not in group:
            self._size += 1
        group[key] = _Entry(len(prefix), tail, kept)
        group.move_to_end(key)
        self._entries.move_to_end(head)
        self._evict()

    def get(self, prefix: str, suffix: str, *, tag: str = "") -> Lookup | None:
        """Items for this cursor: an exact entry, or the rest of one typed through."""
        head = (tag, suffix[:SUFFIX_CHARS])
        group = self._entries.get(head)
        found = self._find(group, prefix) if group else None
        if found is None:
            self.stats.misses += 1
            return None
        self._entries.move_to_end(head)
        if found.typed:
            self.stats.forward += 1
        else:
            self.stats.exact += 1
        return found

    def _find(self, group: OrderedDict[tuple[int, str], _Entry], prefix: str) -> Lookup | None:
        # Most recent first: the latest suggestion is what the editor shows.
        for entry in reversed(group.values()):
            typed = typed_since(prefix, entry.prefix_len, entry.prefix_tail)
            if typed is None:
                continue
            rest = remainders(entry.items, typed)
            if rest:
                return Lookup(rest, typed, entry.items)
        return None

    def _evict(self) -> None:
        while self._size > self.capacity and self._entries:
            head, group = next(iter(self._entries.items()))
            group.popitem(last=False)
            self._size -= 1
            if not group:
                del self._entries[head]
