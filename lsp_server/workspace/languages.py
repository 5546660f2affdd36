"""Tree-sitter grammars for LSP language ids, loaded on first use and cached."""

from __future__ import annotations

import functools
import importlib
import logging
from pathlib import Path

import tree_sitter

from lsp_server.languages import language_id

log = logging.getLogger(__name__)

# LSP language id -> (grammar module, function returning the language capsule).
_GRAMMARS: dict[str, tuple[str, str]] = {
    "python": ("tree_sitter_python", "language"),
    "javascript": ("tree_sitter_javascript", "language"),
    "javascriptreact": ("tree_sitter_javascript", "language"),
    "typescript": ("tree_sitter_typescript", "language_typescript"),
    "typescriptreact": ("tree_sitter_typescript", "language_tsx"),
    "java": ("tree_sitter_java", "language"),
    "c": ("tree_sitter_c", "language"),
    "cpp": ("tree_sitter_cpp", "language"),
    "go": ("tree_sitter_go", "language"),
    "rust": ("tree_sitter_rust", "language"),
}

SUPPORTED: frozenset[str] = frozenset(_GRAMMARS)
"""Language ids that have a grammar."""


def language_for_path(path: str | Path) -> str | None:
    """The language id of a file if a grammar handles it, else None."""
    lang = language_id(path)
    return lang if lang in _GRAMMARS else None


@functools.cache
def _load(module_name: str, func_name: str) -> tree_sitter.Language | None:
    try:
        module = importlib.import_module(module_name)
        return tree_sitter.Language(getattr(module, func_name)())
    except (ImportError, AttributeError, ValueError) as exc:
        log.warning("tree-sitter grammar %s.%s unavailable: %s", module_name, func_name, exc)
        return None


def ts_language(lang_id: str) -> tree_sitter.Language | None:
    """The tree-sitter Language for an LSP language id, or None if there is no grammar."""
    spec = _GRAMMARS.get(lang_id)
    return _load(*spec) if spec is not None else None
