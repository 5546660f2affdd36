"""Progress lines on stderr for command-line use."""

from __future__ import annotations

import sys


def stderr_progress(message: str, fraction: float) -> None:
    """Print one progress line to stderr (stdout is kept for results)."""
    print(f"[{fraction * 100:3.0f}%] {message}", file=sys.stderr, flush=True)
