"""Command output: results on stdout, notes and progress on stderr.

Only the commands use these; the language server never writes to stdout (it carries the
protocol).
"""

from __future__ import annotations

import sys


def out(*parts: object, end: str = "\n") -> None:
    """A result line on stdout."""
    print(*parts, end=end, file=sys.stdout, flush=True)


def err(*parts: object, end: str = "\n") -> None:
    """A note, warning or progress line on stderr."""
    print(*parts, end=end, file=sys.stderr, flush=True)


def stderr_progress(message: str, fraction: float) -> None:
    """A progress line on stderr, for long steps such as building a model."""
    err(f"[{fraction * 100:3.0f}%] {message}")
