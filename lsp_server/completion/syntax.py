"""Syntax errors by tree-sitter: how many ERROR and MISSING nodes a text parses to.

Used by the completion post-processing to tell whether inserting a completion makes the
document worse. Only counts are compared, so a window of the document is enough and a
document that is already broken (it has a hole at the cursor) is fine.
"""

from __future__ import annotations

import functools

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
    same request asks again for every candidate completion.
    """
    parser = _parser(language_id)
    if parser is None:
        return None
    return count_errors(parser.parse(text.encode("utf-8", "surrogatepass")).root_node)


@functools.cache
def _parser(language_id: str) -> tree_sitter.Parser | None:
    language = ts_language(language_id)
    return tree_sitter.Parser(language) if language is not None else None
