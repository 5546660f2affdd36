"""What completion-like requests share: the document snapshot, position checks, superseding."""

from __future__ import annotations

import asyncio
import logging

from lsprotocol import types
from pygls.exceptions import JsonRpcInvalidParams

from engine import EngineError
from lsp_server.completion.pipeline import Completion, complete
from lsp_server.completion.stages import TRACE, Stages
from lsp_server.features.documents import path_of
from lsp_server.positions import InvalidPosition
from lsp_server.server import CoderLanguageServer

log = logging.getLogger(__name__)

TREE_BUDGET_MS = 3.0
"""The most a completion spends bringing its document's tree up to date."""


async def run_completion(
    ls: CoderLanguageServer, uri: str, position: types.Position, *, invoked: bool = False
) -> Completion | None:
    """Complete at `position` of the open document `uri`.

    A newer request for the same document that cannot reuse this one's generation aborts it
    inside the engine; this request then answers empty. An invalid position is a JSON-RPC
    InvalidParams error. None means nothing to complete (unknown document, superseded, engine
    error).
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
        seen, offset_bytes = documents.view(uri, position.line, position.character, prompt_tokens)
    except InvalidPosition as exc:
        raise JsonRpcInvalidParams(f"invalid position: {exc}") from None
    stages.add("document", ls.change_ms.pop(uri, 0.0))

    if ls.host is None:
        return None
    if documents.binary(uri):
        return Completion("", "binary document")
    path = path_of(uri)
    # The document's tree, if a short reparse brings it up to date (a small edit's does; the
    # gate parses a window around the cursor otherwise). Only an automatic request's gate
    # reads it.
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
