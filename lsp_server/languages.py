"""Language ids (as LSP clients name them) from file names."""

from __future__ import annotations

from pathlib import Path

EXTENSIONS = {
    ".py": "python",
    ".pyi": "python",
    ".js": "javascript",
    ".jsx": "javascriptreact",
    ".mjs": "javascript",
    ".cjs": "javascript",
    ".ts": "typescript",
    ".mts": "typescript",
    ".cts": "typescript",
    ".tsx": "typescriptreact",
    ".java": "java",
    ".c": "c",
    ".h": "c",
    ".cc": "cpp",
    ".cpp": "cpp",
    ".cxx": "cpp",
    ".hpp": "cpp",
    ".hh": "cpp",
    ".hxx": "cpp",
    ".go": "go",
    ".rs": "rust",
    ".lua": "lua",
    ".rb": "ruby",
    ".sh": "shellscript",
}


def language_id(path: str | Path) -> str:
    """The LSP language id for a file, or "plaintext"."""
    return EXTENSIONS.get(Path(path).suffix.lower(), "plaintext")
