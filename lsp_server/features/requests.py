"""What completion-like requests share: the document snapshot, position checks, superseding."""

from __future__ import annotations

import asyncio
import logging

from lsprotocol import types
from pygls.exceptions import JsonRpcInvalidParams

from engine import EngineError
from lsp_server.completion.pipeline import Completion, complete
from lsp_server.features.documents import path_of
from lsp_server.positions import InvalidPosition, offset_at
from lsp_server.server import CoderLanguageServer

log = logging.getLogger(__name__)


async def run_completion(
    ls: CoderLanguageServer, uri: str, position: types.Position, *, invoked: bool = False
) -> Completion | None:
    """Complete at `position` of the open document `uri`.

    A newer request for the same document that cannot reuse this one's generation aborts it
    inside the engine; this request then answers empty. An invalid position is a JSON-RPC
    InvalidParams error. None means nothing to complete (unknown document, superseded, engine
    error).
    """
    doc = ls.documents.get(uri)
    if doc is None:
        log.debug("completion asked for %s, which is not open", uri)
        return None
    text, language_id, version = doc.source, doc.language_id, doc.version
    try:
        offset = offset_at(text, position.line, position.character)
    except InvalidPosition as exc:
        raise JsonRpcInvalidParams(f"invalid position: {exc}") from None

    if ls.host is None:
        return None
    path = path_of(uri)
    # The tree is used only while it is the tree of exactly this text.
    tree = ls.documents.tree(uri) if ls.documents.text(uri) is text else None
    work = asyncio.ensure_future(
        complete(
            ls.host,
            text,
            offset,
            language_id,
            path=str(path) if path else "",
            workspace=ls.workspace_service,
            invoked=invoked,
            reuse=ls.reuse,
            key=uri,
            tree=tree,
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
            }
        )
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
