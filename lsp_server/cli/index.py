"""`coder-lsp index DIR`: build or refresh the workspace index and print its counts."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from engine.profiles import cache_root
from lsp_server.cli.output import err, out
from lsp_server.cli.workspace import load_for
from lsp_server.workspace.service import WorkspaceService


def run(directory: Path) -> int:
    """Index `directory` (cache under the coder-lsp cache, settings from the directory)."""
    if not directory.is_dir():
        err(f"coder-lsp index: {directory} is not a directory")
        return 2
    settings = load_for(directory.resolve(), None)
    index = WorkspaceService([directory.resolve()], settings, cache_root() / "index").index
    last = 0.0

    def progress(done: int, total: int) -> None:
        nonlocal last
        now = time.monotonic()
        if sys.stderr.isatty() and (now - last > 0.5 or done == total) and total:
            last = now
            err(f"\r[{done * 100 // total:3d}%] {done}/{total} files", end="")
            if done == total:
                err()

    try:
        stats = index.build(progress)
    except KeyboardInterrupt:
        err("coder-lsp index: interrupted")
        return 130
    out(f"{stats.files} files, {stats.symbols} symbols")
    out(f"{stats.parsed} parsed, {stats.reused} reused from the cache, {stats.seconds:.2f} s")
    return 0
