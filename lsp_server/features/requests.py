"""What completion-like requests share: the document snapshot, position checks, superseding."""

from __future__ import annotations

import asyncio
import logging

from lsprotocol import types
from pygls.exceptions import JsonRpcInvalidParams

from engine import EngineError
from lsp_server.completion.pipeline import Completion, complete
from lsp_server.completion.stages import TRACE, Stages
from lsp_server.completion.view import View
from lsp_server.features.documents import path_of
from lsp_server.positions import InvalidPosition, column_offset
from lsp_server.server import CoderLanguageServer

log = logging.getLogger(__name__)

TREE_BUDGET_MS = 3.0
"""The most a completion spends bringing its document's tree up to date."""


def with_selected(
    seen: View, position: types.Position, selected: types.SelectedCompletionInfo
) -> View:
    """`seen` with the selected menu item in place: its range (on the cursor's line) replaced
    by its text, and the cursor at the item's end."""
    start, end = selected.range.start, selected.range.end
    if start.line != position.line or end.line != position.line or start.character > end.character:
        raise InvalidPosition("the selected item's range must be on the cursor's line")
    line_start = seen.text.rfind("\n", 0, seen.offset) + 1
    line_end = seen.text.find("\n", seen.offset)
    content = seen.text[line_start : len(seen.text) if line_end < 0 else line_end]
    a = line_start + column_offset(content, start.line, start.character)
    b = line_start + column_offset(content, end.line, end.character)
    text = seen.text[:a] + selected.text + seen.text[b:]
    return View(text, a + len(selected.text), seen.line_shift)


async def run_completion(
    ls: CoderLanguageServer,
    uri: str,
    position: types.Position,
    *,
    invoked: bool = False,
    selected: types.SelectedCompletionInfo | None = None,
) -> Completion | None:
    """Complete at `position` of the open document `uri`.

    A newer request for the same document that cannot reuse this one's generation aborts it
    inside the engine; this request then answers empty. An invalid position is a JSON-RPC
    InvalidParams error. None means nothing to complete (unknown document, superseded, engine
    error).

    `selected` (LSP 3.18's `selectedCompletionInfo`, a menu item the editor shows) is read as
    if it were in the document: its range replaced by its text, the cursor after it.
    """
    trace = TRACE.get()
    stages = Stages(trace.received if trace is not None else None)
    stages.mark("request")
    documents = ls.documents
    language_id, version = documents.language_id(uri), documents.version(uri)
    if language_id is None or version is None:
        log.debug("completion asked for %s, which is not open", uri)
        return None
    prompt_tokens = ls.host.settings.completion.prompt_tokens if ls.host else 0
    try:
        # Bounded by the window whatever the document's size: no whole-text copy.
        seen, at_byte = documents.view(uri, position.line, position.character, prompt_tokens)
    except InvalidPosition as exc:
        raise JsonRpcInvalidParams(f"invalid position: {exc}") from None
    stages.add("document", ls.change_ms.pop(uri, 0.0))
    offset_bytes: int | None = at_byte
    if selected is not None:
        try:
            seen = with_selected(seen, position, selected)
        except InvalidPosition as exc:
            raise JsonRpcInvalidParams(f"invalid selectedCompletionInfo: {exc}") from None
        offset_bytes = None  # the document's tree does not hold the selected text

    if ls.host is None:
        return None
    if documents.binary(uri):
        return Completion("", "binary document")
    path = path_of(uri)
    # The document's tree, if a short reparse brings it up to date (a small edit's does; the
    # gate parses a window around the cursor otherwise). Only an automatic request's gate
    # reads it.
    tree = None
    if offset_bytes is not None:
        tree = documents.tree(uri) if invoked else documents.tree_now(uri, TREE_BUDGET_MS)
    stages.mark("tree")
    work = asyncio.ensure_future(
        complete(
            ls.host,
            seen.text,
            seen.offset,
            language_id,
            path=str(path) if path else "",
            workspace=ls.workspace_service,
            invoked=invoked,
            reuse=ls.reuse,
            key=uri,
            tree=tree,
            offset_bytes=offset_bytes,
            stages=stages,
            line=position.line,
            line_shift=seen.line_shift,
        )
    )
    ls.inflight[id(work)] = work
    try:
        result = await work
        ls.record_completion(
            {
                "uri": uri,
                "version": version,
                "line": position.line,
                "character": position.character,
                "invoked": invoked,
                "source": result.source,
                "reason": result.reason,
                "items": list(result.items),
                "typed": result.typed,
                "origin": list(result.origin),
                "scores": list(result.scores),
                "latencyMs": round(result.latency_ms, 2),
                "requestId": result.request_id,
                "stages": stages.ms,
            }
        )
        if trace is not None:
            trace.stages = stages  # the answer's cost is marked when it is written
        return result
    except asyncio.CancelledError:
        current = asyncio.current_task()
        if work.cancelled() and not (current and current.cancelling()):
            log.debug("completion for %s superseded by a newer request", uri)
            return None
        work.cancel()
        raise
    except EngineError as exc:
        log.warning("completion failed: %s", exc)
        return None
    finally:
        ls.inflight.pop(id(work), None)
