"""`coder-lsp index DIR`: build or refresh the workspace index and print its counts."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from engine.profiles import cache_root
from lsp_server.config import load_settings, sources_from_workspace
from lsp_server.workspace.service import WorkspaceService


def run(directory: Path) -> int:
    """Index `directory` (cache under the coder-lsp cache, settings from the directory)."""
    if not directory.is_dir():
        print(f"coder-lsp index: {directory} is not a directory", file=sys.stderr)
        return 2
    settings, errors = load_settings(sources_from_workspace(directory))
    for error in errors:
        print(f"coder-lsp: settings: {error}", file=sys.stderr)
    index = WorkspaceService([directory.resolve()], settings, cache_root() / "index").index
    last = 0.0

    def progress(done: int, total: int) -> None:
        nonlocal last
        now = time.monotonic()
        if sys.stderr.isatty() and (now - last > 0.5 or done == total) and total:
            last = now
            print(f"\r[{done * 100 // total:3d}%] {done}/{total} files", end="", file=sys.stderr)
            if done == total:
                print(file=sys.stderr)

    try:
        stats = index.build(progress)
    except KeyboardInterrupt:
        print("coder-lsp index: interrupted", file=sys.stderr)
        return 130
    print(f"{stats.files} files, {stats.symbols} symbols")
    print(f"{stats.parsed} parsed, {stats.reused} reused from the cache, {stats.seconds:.2f} s")
    return 0
