"""`coder-lsp complete FILE:LINE:COL`: print the text that would be inserted."""

from __future__ import annotations

import sys
from pathlib import Path

from engine import EngineStatus
from lsp_server.cli.output import err, stderr_progress
from lsp_server.cli.workspace import (
    engine_url,
    host_for,
    indexed_workspace,
    read_location,
    settings_for,
    use_engine,
)
from lsp_server.completion.gate import Mode, decide
from lsp_server.completion.pipeline import complete
from lsp_server.config import Settings
from lsp_server.languages import language_id
from lsp_server.privacy import allow_function


async def run(
    path: Path,
    line: int,
    column: int,
    profile: str | None,
    workspace: Path | None,
    config: Path | None,
    engine: str | None = None,
) -> int:
    location = read_location(path, line, column, "complete")
    if location is None:
        return 2
    text, offset = location
    root, settings = settings_for(path, workspace, config)
    settings = use_engine(settings, engine_url(engine))
    refusal = refused(path, text, offset, settings, root)
    if refusal is not None:  # before the engine loads: seconds, not a minute
        err(f"coder-lsp complete: {path}: {refusal}")
        return 1
    host = host_for(profile, settings, "complete")
    if host is None:
        return 2
    service = indexed_workspace(root, settings, "complete")
    state = await host.start(stderr_progress)
    try:
        if state.status is not EngineStatus.READY:
            err(f"coder-lsp complete: engine failed: {state.reason}")
            return 1
        # Asked for on purpose, as an editor's invoked request: no automatic-trigger gating.
        result = await complete(
            host,
            text,
            offset,
            language_id(path),
            path=str(path.resolve()),
            workspace=service,
            invoked=True,
        )
    finally:
        await host.shutdown()
    if not result.text:
        err(f"coder-lsp complete: no completion ({result.reason})")
        return 1
    sys.stdout.write(result.text + ("\n" if not result.text.endswith("\n") else ""))
    return 0


def refused(path: Path, text: str, offset: int, settings: Settings, root: Path) -> str | None:
    """Why nothing would be completed here, found without the engine: a binary file, a file
    never sent to a model, or a place the gate refuses even when asked."""
    if "\x00" in text:
        return "a binary file: nothing is completed in it"
    if not allow_function(settings.privacy.exclude, str(root))(str(path.resolve())):
        return "the file is never sent to a model (a credentials file or privacy.exclude)"
    if settings.completion.postprocess:
        decision = decide(text[:offset], text[offset:], language_id(path), invoked=True)
        if decision.mode is Mode.NONE:
            return f"nothing to complete here: {decision.reason}"
    return None
