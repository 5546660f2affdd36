"""Command output: results on stdout, notes and progress on stderr.

Only the commands use these; the language server never writes to stdout (it carries the
protocol).
"""

from __future__ import annotations

import sys
from typing import TextIO


def _write(stream: TextIO, parts: tuple[object, ...], end: str) -> None:
    stream.write(" ".join(str(p) for p in parts) + end)
    stream.flush()


def out(*parts: object, end: str = "\n") -> None:
    """A result line on stdout."""
    _write(sys.stdout, parts, end)


def err(*parts: object, end: str = "\n") -> None:
    """A note, warning or progress line on stderr."""
    _write(sys.stderr, parts, end)


def stderr_progress(message: str, fraction: float) -> None:
    """A progress line on stderr, for long steps such as building a model."""
    err(f"[{fraction * 100:3.0f}%] {message}")
