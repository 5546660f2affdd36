"""`coder-lsp demo`: a scripted editor session against the real server, printed as it goes.

The demo starts `coder-lsp serve --stdio` as a subprocess, talks LSP to it through pygls'
client like an editor would, types a few edits into a sample file and asks for inline
completions after each, printing the ghost text and its latency.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from importlib.resources import files
from pathlib import Path
from typing import Any

from lsprotocol import types
from pygls.lsp.client import LanguageClient

from lsp_server.cli.output import err, out

# What the "user" types at the end of the sample file before asking for a completion.
STEPS = [
    "\n\ndef save_tasks(path: str, tasks: list[Task]) -> None:\n"
    '    """Write tasks to a JSON file."""\n    ',
    "\n\n\ndef pending(tasks: list[Task]) -> list[Task]:\n    return ",
    "\n\n\ndef count_done(tasks: list[Task]) -> int:\n    ",
    "\n\n\nif __name__ == ",
]


def _end_position(text: str) -> types.Position:
    lines = text.split("\n")
    return types.Position(line=len(lines) - 1, character=len(lines[-1].encode("utf-16-le")) // 2)


async def run(profile: str | None, file: Path | None, timeout: float = 900.0) -> int:
    path = file or Path(str(files("lsp_server").joinpath("demo/sample.py")))
    text = path.read_text(encoding="utf-8")
    cmd = [sys.executable, "-m", "lsp_server", "serve", "--stdio"]
    if profile:
        cmd += ["--profile", profile]
    client = LanguageClient("coder-lsp-demo", "1")
    status: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()

    @client.feature("coderLsp/status")
    def on_status(params: Any) -> None:
        state = getattr(params, "state", None) or (
            params.get("state") if isinstance(params, dict) else None
        )
        if state in ("ready", "failed") and not status.done():
            status.set_result({"state": state, "reason": getattr(params, "reason", "")})

    @client.feature(types.WINDOW_WORK_DONE_PROGRESS_CREATE)
    def on_progress_create(params: types.WorkDoneProgressCreateParams) -> None:
        return None

    @client.feature(types.PROGRESS)
    def on_progress(params: types.ProgressParams) -> None:
        value = params.value
        message = getattr(value, "message", None) or getattr(value, "title", None)
        if isinstance(value, dict):
            message = value.get("message") or value.get("title")
        if message:
            out(f"  [server] {message}")

    @client.feature(types.WINDOW_LOG_MESSAGE)
    def on_log(params: types.LogMessageParams) -> None:
        return None

    @client.feature(types.WINDOW_SHOW_MESSAGE)
    def on_message(params: types.ShowMessageParams) -> None:
        out(f"  [server says] {params.message}")

    logging.getLogger("pygls").setLevel(logging.WARNING)
    started = time.perf_counter()
    out(f"$ {' '.join(cmd)}")
    await client.start_io(*cmd)
    caps = types.ClientCapabilities(
        window=types.WindowClientCapabilities(work_done_progress=True),
        text_document=types.TextDocumentClientCapabilities(
            inline_completion=types.InlineCompletionClientCapabilities()
        ),
    )
    result = await client.initialize_async(
        types.InitializeParams(
            capabilities=caps, root_uri=path.parent.resolve().as_uri(), process_id=None
        )
    )
    out(
        f"initialize answered in {(time.perf_counter() - started) * 1000:.0f} ms "
        f"(inlineCompletionProvider: {result.capabilities.inline_completion_provider is not None})"
    )
    client.initialized(types.InitializedParams())
    try:
        loaded = await asyncio.wait_for(status, timeout)
    except TimeoutError:
        err("the engine did not load in time")
        loaded = {"state": "timeout"}
    out(f"engine {loaded['state']} after {time.perf_counter() - started:.1f} s")
    code = 0
    if loaded["state"] == "ready":
        code = await _session(client, path, text)
    else:
        code = 1
    await client.shutdown_async(None)
    client.exit(None)
    await client.stop()
    return code


async def _session(client: LanguageClient, path: Path, text: str) -> int:
    uri = path.resolve().as_uri()
    client.text_document_did_open(
        types.DidOpenTextDocumentParams(
            text_document=types.TextDocumentItem(
                uri=uri, language_id="python", version=1, text=text
            )
        )
    )
    latencies: list[float] = []
    shown = 0
    for version, typed in enumerate(STEPS, start=2):
        end = _end_position(text)
        client.text_document_did_change(
            types.DidChangeTextDocumentParams(
                text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=version),
                content_changes=[
                    types.TextDocumentContentChangePartial(
                        range=types.Range(start=end, end=end), text=typed
                    )
                ],
            )
        )
        text += typed
        pos = _end_position(text)
        t0 = time.perf_counter()
        answer = await client.text_document_inline_completion_async(
            types.InlineCompletionParams(
                text_document=types.TextDocumentIdentifier(uri=uri),
                position=pos,
                context=types.InlineCompletionContext(
                    trigger_kind=types.InlineCompletionTriggerKind.Automatic
                ),
            )
        )
        ms = (time.perf_counter() - t0) * 1000
        latencies.append(ms)
        items = answer.items if isinstance(answer, types.InlineCompletionList) else answer or []
        ghost = items[0].insert_text if items else ""
        ghost_text = ghost if isinstance(ghost, str) else ghost.value
        shown += bool(ghost_text)
        out(f"\n--- completion at line {pos.line + 1}, column {pos.character + 1} ({ms:.0f} ms)")
        context = text.split("\n")[-3:]
        for line in context[:-1]:
            out(f"    {line}")
        shown_text = (ghost_text or "(no suggestion)").replace("\n", "\n    ")
        if sys.stdout.isatty():
            out(f"    {context[-1]}\x1b[2m{shown_text}\x1b[0m")
        else:
            out(f"    {context[-1]}⟦{shown_text}⟧")
    latencies.sort()
    out(
        f"\n{shown}/{len(STEPS)} positions got a suggestion; "
        f"median latency {latencies[len(latencies) // 2]:.0f} ms"
    )
    return 0 if shown else 1
