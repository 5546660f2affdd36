"""Symbol records shared by parsing, the index, LSP features and context retrieval.

Positions are 0-based lines and UTF-16 columns (LSP's units), so features can hand them to
the editor as they are. Byte offsets into the file's UTF-8 text let context retrieval read a
definition's body without re-parsing.
"""

from __future__ import annotations

import msgspec


class Symbol(msgspec.Struct, frozen=True, array_like=True, gc=False, omit_defaults=True):
    """One definition: function, class, method, or top-level constant."""

    name: str
    kind: int
    """An `lsprotocol.types.SymbolKind` value."""
    path: str
    """Absolute file path."""
    start_line: int
    start_col: int
    end_line: int
    end_col: int
    name_line: int
    name_col: int
    """Where the name itself starts (LSP selectionRange start); it ends `len(name)` later."""
    start_byte: int
    end_byte: int
    language: str
    container: str = ""
    """Enclosing class or namespace, "" at top level."""
    signature: str = ""
    """The definition's header: e.g. `def load(path: str) -> Config:` (no body)."""
    doc: str = ""
    """Docstring or the comment just above the definition."""
