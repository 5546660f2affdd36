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
    ls: CoderLanguageServer, uri: str, position: types.Position
) -> Completion | None:
    """Complete at `position` of the open document `uri`.

    A newer request for the same document cancels this one inside the engine; this request
    then answers empty. An invalid position is a JSON-RPC InvalidParams error. None means
    nothing to complete (unknown document, superseded, engine error).
    """
    doc = ls.workspace.text_documents.get(uri)
    if doc is None:
        log.debug("completion asked for %s, which is not open", uri)
        return None
    text, language_id = doc.source, doc.language_id or ""
    try:
        offset = offset_at(text, position.line, position.character)
    except InvalidPosition as exc:
        raise JsonRpcInvalidParams(f"invalid position: {exc}") from None

    previous = ls.inflight.get(uri)
    if previous is not None and not previous.done():
        previous.cancel()
    if ls.host is None:
        return None
    path = path_of(uri)
    work = asyncio.ensure_future(
        complete(
            ls.host,
            text,
            offset,
            language_id,
            path=str(path) if path else "",
            workspace=ls.workspace_service,
        )
    )
    ls.inflight[uri] = work
    try:
        return await work
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
        if ls.inflight.get(uri) is work:
            del ls.inflight[uri]
