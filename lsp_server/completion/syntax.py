"""Syntax errors by tree-sitter: how many ERROR and MISSING nodes a text parses to.

Used by the completion post-processing to tell whether inserting a completion makes the
document worse. Only counts are compared, so a window of the document is enough and a
document that is already broken (it has a hole at the cursor) is fine.
"""

from __future__ import annotations

import functools
import threading

import tree_sitter

from lsp_server.workspace.languages import ts_language

__all__ = ["count_errors", "error_count"]


def count_errors(node: tree_sitter.Node) -> int:
    """ERROR and MISSING nodes in the tree under ``node``, itself included.

    Only subtrees that report ``has_error`` are walked, so a clean tree costs one check.
    """
    count = 0
    pending = [node]
    while pending:
        current = pending.pop()
        if not current.has_error:
            continue
        if current.is_error or current.is_missing:
            count += 1
        pending.extend(current.children)
    return count


@functools.lru_cache(maxsize=256)
def error_count(language_id: str, text: str) -> int | None:
    """ERROR and MISSING nodes in ``text`` parsed as ``language_id``; None without a grammar.

    Cached: the same document without the completion is counted once per request, and the
    same request asks again for every candidate completion. Parsed incrementally from the
    previous text of the language (the same window with a completion inserted, or a
    keystroke later), which costs a fraction of a parse from scratch.
    """
    reparser = _reparser(language_id)
    if reparser is None:
        return None
    return count_errors(reparser.parse(text.encode("utf-8", "surrogatepass")).root_node)


class _Reparser:
    """A parser that edits its previous tree to parse the next text incrementally (the one
    span where the two texts differ is found by comparing them)."""

    def __init__(self, parser: tree_sitter.Parser) -> None:
        self.parser = parser
        self.data = b""
        self.tree: tree_sitter.Tree | None = None

    def parse(self, data: bytes) -> tree_sitter.Tree:
        old, tree = self.data, self.tree
        if tree is None:
            tree = self.parser.parse(data)
        else:
            start = _common_prefix(old, data)
            common = _common_suffix(old, data, min(len(old), len(data)) - start)
            old_end, new_end = len(old) - common, len(data) - common
            edited = tree.copy()
            edited.edit(
                start, old_end, new_end, _point(old, start), _point(old, old_end),
                _point(data, new_end),
            )  # fmt: skip
            tree = self.parser.parse(data, edited)
        self.data, self.tree = data, tree
        return tree


def _common_prefix(a: bytes, b: bytes) -> int:
    """Length of the longest common prefix (binary search on C-speed slice compares)."""
    lo, hi = 0, min(len(a), len(b))
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if a[lo:mid] == b[lo:mid]:
            lo = mid
        else:
            hi = mid - 1
    return lo


def _common_suffix(a: bytes, b: bytes, limit: int) -> int:
    """Length of the longest common suffix, at most `limit`."""
    lo, hi = 0, limit
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if a[len(a) - mid : len(a) - lo] == b[len(b) - mid : len(b) - lo]:
            lo = mid
        else:
            hi = mid - 1
    return lo


def _point(data: bytes, offset: int) -> tuple[int, int]:
    return data.count(b"\n", 0, offset), offset - (data.rfind(b"\n", 0, offset) + 1)


_local = threading.local()


def _reparser(language_id: str) -> _Reparser | None:
    """This thread's reparser for the language (trees are not shared between threads)."""
    cache: dict[str, _Reparser | None] = _local.__dict__.setdefault("reparsers", {})
    if language_id not in cache:
        language = ts_language(language_id)
        cache[language_id] = _Reparser(tree_sitter.Parser(language)) if language else None
    return cache[language_id]
