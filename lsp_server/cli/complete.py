"""`coder-lsp complete FILE:LINE:COL`: print the text that would be inserted."""

from __future__ import annotations

import sys
from pathlib import Path

from engine import EngineStatus
from engine.profiles import auto_profile
from lsp_server.cli.progress import stderr_progress
from lsp_server.cli.workspace import indexed_workspace, settings_for
from lsp_server.completion.pipeline import complete
from lsp_server.config import resolve_profile
from lsp_server.engine_host import EngineHost
from lsp_server.languages import language_id


def offset_of(text: str, line: int, column: int) -> int:
    """Offset of a 1-based line and column (columns count characters)."""
    lines = text.split("\n")
    if not 1 <= line <= len(lines):
        raise ValueError(f"line {line} is outside the file (1..{len(lines)})")
    if not 1 <= column <= len(lines[line - 1].rstrip("\r")) + 1:
        raise ValueError(f"column {column} is outside line {line}")
    return sum(len(s) + 1 for s in lines[: line - 1]) + column - 1


async def run(
    path: Path,
    line: int,
    column: int,
    profile: str | None,
    workspace: Path | None,
    config: Path | None,
) -> int:
    try:
        text = path.read_text(encoding="utf-8")
        offset = offset_of(text, line, column)
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        print(f"coder-lsp complete: {exc}", file=sys.stderr)
        return 2
    root, settings = settings_for(path, workspace, config)
    name = resolve_profile(profile, settings) or auto_profile()
    try:
        host = EngineHost.for_profile(name, settings)
    except ValueError as exc:
        print(f"coder-lsp complete: {exc}", file=sys.stderr)
        return 2
    service = indexed_workspace(root, settings, "complete")
    state = await host.start(stderr_progress)
    try:
        if state.status is not EngineStatus.READY:
            print(f"coder-lsp complete: engine failed: {state.reason}", file=sys.stderr)
            return 1
        result = await complete(
            host, text, offset, language_id(path), path=str(path.resolve()), workspace=service
        )
    finally:
        await host.shutdown()
    if not result.text:
        print(f"coder-lsp complete: no completion ({result.reason})", file=sys.stderr)
    sys.stdout.write(result.text + ("\n" if result.text and not result.text.endswith("\n") else ""))
    return 0
