"""The code a failing test exercises: where a fix for a failed assertion most likely belongs.

When a test fails on its own assertion (`assert add(2, 3) == 5`), the bug is usually in the
function it calls, not in the test. The functions called on the failing line are looked up in
the workspace index; the first one defined outside test files is the fix's target, and the
test itself becomes context for the model.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence

from lsp_server.context.gather import DefinitionLookup
from lsp_server.context.identifiers import keywords, scrub
from lsp_server.workspace.symbols import Symbol

_CALL = re.compile(r"(?<![\w$])([A-Za-z_$][\w$]*)\s*\(")
_FUNCTION_KINDS = frozenset({5, 6, 9, 12})  # class, method, constructor, function
_TEST_DIRS = frozenset({"test", "tests", "testing", "__tests__", "spec"})
_TEST_FILE = re.compile(
    r"^test_|_test\.\w+$|_tests\.\w+$|Tests?\.java$|\.(test|spec)\.\w+$|^conftest\.py$"
)
_ASSERT_HELPERS = frozenset(
    {
        "assert",
        "assertEqual",
        "assertEquals",
        "assertTrue",
        "assertFalse",
        "assertThat",
        "assertRaises",
        "expect",
        "require",
        "isinstance",
        "len",
        "raises",
        "approx",
        "Equal",
        "Errorf",
        "Fatalf",
    }
)


def is_test_file(path: str, root: str | None = None) -> bool:
    """Whether `path` is named like a test file or lives in a test folder below `root` (only
    folders inside the workspace count: its own location may be anywhere)."""
    if root and os.path.isabs(path) and path.startswith(root.rstrip(os.sep) + os.sep):
        path = os.path.relpath(path, root)
    elif os.path.isabs(path):
        path = os.path.basename(path)
    *folders, base = path.replace("\\", "/").split("/")
    return bool(_TEST_FILE.search(base)) or any(f in _TEST_DIRS for f in folders)


def called_names(line: str, language_id: str) -> list[str]:
    """Names called on a line of code, left to right, without keywords and assertion helpers."""
    skip = keywords(language_id) | _ASSERT_HELPERS
    names: list[str] = []
    for name in _CALL.findall(scrub(line, language_id)):
        if (
            name not in skip
            and not name.startswith(("assert", "test", "Test"))
            and name not in names
        ):
            names.append(name)
    return names


def code_under_test(
    index: DefinitionLookup,
    test_path: str,
    line: str,
    language_id: str,
    root: str | None = None,
) -> Symbol | None:
    """The definition, outside test files, of the first function called on `line` of the
    test file `test_path` that has exactly one such definition (or one in the test's own
    directory tree nearest to it)."""
    if not is_test_file(test_path, root):
        return None
    for name in called_names(line, language_id):
        found = [
            s
            for s in index.definitions(name)
            if s.kind in _FUNCTION_KINDS and not is_test_file(s.path, root) and s.path != test_path
        ]
        chosen = _nearest(found, test_path)
        if chosen is not None:
            return chosen
    return None


def _nearest(symbols: Sequence[Symbol], path: str) -> Symbol | None:
    if len(symbols) <= 1:
        return symbols[0] if symbols else None
    parts = path.split("/")

    def shared(s: Symbol) -> int:
        n = 0
        for a, b in zip(parts, s.path.split("/"), strict=False):
            if a != b:
                break
            n += 1
        return n

    ranked = sorted(symbols, key=shared, reverse=True)
    return ranked[0] if shared(ranked[0]) > shared(ranked[1]) else None


__all__ = ["called_names", "code_under_test", "is_test_file"]
