"""`coder-lsp complete FILE:LINE:COL`: print the text that would be inserted."""

from __future__ import annotations

import sys
from pathlib import Path

from engine import EngineStatus
from lsp_server.cli.output import err, stderr_progress
from lsp_server.cli.workspace import host_for, indexed_workspace, read_location, settings_for
from lsp_server.completion.pipeline import complete
from lsp_server.languages import language_id


async def run(
    path: Path,
    line: int,
    column: int,
    profile: str | None,
    workspace: Path | None,
    config: Path | None,
) -> int:
    location = read_location(path, line, column, "complete")
    if location is None:
        return 2
    text, offset = location
    root, settings = settings_for(path, workspace, config)
    host = host_for(profile, settings, "complete")
    if host is None:
        return 2
    service = indexed_workspace(root, settings, "complete")
    state = await host.start(stderr_progress)
    try:
        if state.status is not EngineStatus.READY:
            err(f"coder-lsp complete: engine failed: {state.reason}")
            return 1
        result = await complete(
            host, text, offset, language_id(path), path=str(path.resolve()), workspace=service
        )
    finally:
        await host.shutdown()
    if not result.text:
        err(f"coder-lsp complete: no completion ({result.reason})")
    sys.stdout.write(result.text + ("\n" if result.text and not result.text.endswith("\n") else ""))
    return 0
