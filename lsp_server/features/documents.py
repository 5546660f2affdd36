"""Document sync beyond pygls' own: parse trees, the index's view of open files, recent files."""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from pathlib import Path

from lsprotocol import types
from pygls.uris import to_fs_path

from lsp_server.completion.stages import TRACE
from lsp_server.features import test_results
from lsp_server.privacy.redact import redactor_for
from lsp_server.server import CoderLanguageServer
from lsp_server.workspace.documents import DocumentTrees
from lsp_server.workspace.service import WorkspaceService

log = logging.getLogger(__name__)


def path_of(uri: str) -> Path | None:
    fs = to_fs_path(uri) if uri.startswith("file:") else None
    return Path(fs) if fs else None


INDEX_DEBOUNCE_S = 2.0
"""Re-index an edited document once typing pauses for this long, not on every keystroke."""


def schedule_index_update(
    ls: CoderLanguageServer, uri: str, path: Path, delay_s: float = INDEX_DEBOUNCE_S
) -> None:
    """Hand the open document's text (authoritative over disk) to the index once typing
    pauses: when its tree is up to date, the definitions are extracted in a worker thread
    (the event loop keeps serving; the GIL is handed over every few milliseconds)."""
    pending = ls.index_updates.pop(uri, None)
    if pending is not None:
        pending.cancel()

    async def update() -> None:
        ws = ls.workspace_service
        if ws is None:
            return
        previous = ls.index_work.get(uri)
        if previous is not None:  # one extraction at a time per document, in order
            await asyncio.wait([previous])
        tree = await ws.trees.current_tree(uri)
        text = ws.trees.text(uri)
        if text is None:
            return
        work = functools.partial(ws.index.set_open, path, text, tree=tree)
        done = ls.index_work[uri] = asyncio.get_running_loop().run_in_executor(None, work)
        done.add_done_callback(lambda f: f.cancelled() or f.exception())
        done.add_done_callback(lambda f: ls.index_work.get(uri) is f and ls.index_work.pop(uri))

    def start() -> None:
        task = ls.index_updates[uri] = asyncio.get_running_loop().create_task(update())
        task.add_done_callback(lambda t: t.cancelled() or t.exception())

    # A timer per keystroke, cancelled by the next one, costs less than a task.
    ls.index_updates[uri] = asyncio.get_running_loop().call_later(delay_s, start)


def hand_open_documents(ls: CoderLanguageServer) -> None:
    """Give a new workspace model what the editor has open: the recent documents and the
    index's view of them (their text is authoritative over disk)."""
    ws = ls.workspace_service
    if ws is None:
        return
    for uri in ls.documents.uris():
        language_id = ls.documents.language_id(uri)
        if language_id is None:
            continue
        remember_recent(ws, ls.documents, uri, language_id)
        if (path := path_of(uri)) is not None:
            schedule_index_update(ls, uri, path, 0.0)


def remember_recent(
    ws: WorkspaceService, documents: DocumentTrees, uri: str, language_id: str
) -> None:
    """The open document among the recent ones (its text made only when cut: no copy per
    keystroke), unless it is binary or too large to be cut into windows."""
    later = documents.text_later(uri)
    if later is not None and documents.length(uri) <= ws.recent.max_chars:
        if documents.binary(uri):
            ws.recent.remove(uri)
        else:
            ws.recent.touch(uri, later, language_id)
    else:
        ws.recent.remove(uri)


def prepare_redaction(ls: CoderLanguageServer, text: str) -> None:
    """Find the secrets of a document just opened in a worker thread, so its first completion
    does not pay for scanning it (later keystrokes rescan only the chunk they change)."""
    privacy = ls.settings.privacy
    redactor = redactor_for(privacy.redact, privacy.patterns, privacy.allow)
    task = asyncio.get_running_loop().run_in_executor(None, redactor.prepare, text)
    task.add_done_callback(lambda f: f.cancelled() or f.exception())


def register(server: CoderLanguageServer) -> None:
    @server.feature(types.TEXT_DOCUMENT_DID_OPEN)
    def did_open(ls: CoderLanguageServer, params: types.DidOpenTextDocumentParams) -> None:
        doc = params.text_document
        ls.documents.open(doc.uri, doc.language_id, doc.text, doc.version)
        prepare_redaction(ls, doc.text)
        path = path_of(doc.uri)
        if path is not None and ls.reports is not None and ls.reports.problems_in(str(path)):
            # Some clients (eglot) drop diagnostics of files they have not opened: again.
            test_results.publish(ls, {str(path)})
        ws = ls.workspace_service
        if ws is None:
            return
        ws.recent.touch(doc.uri, doc.text, doc.language_id)
        if path is not None:
            schedule_index_update(ls, doc.uri, path, 0.0)

    @server.feature(types.TEXT_DOCUMENT_DID_CHANGE)
    def did_change(ls: CoderLanguageServer, params: types.DidChangeTextDocumentParams) -> None:
        uri = params.text_document.uri
        trace = TRACE.get()
        try:
            apply_changes(ls, uri, params)
        finally:
            if uri in ls.documents:  # what it cost, from its frame on: the next completion's
                started = trace.received if trace is not None else time.perf_counter()
                spent = (time.perf_counter() - started) * 1000
                ls.change_ms[uri] = ls.change_ms.get(uri, 0.0) + spent

    def apply_changes(
        ls: CoderLanguageServer, uri: str, params: types.DidChangeTextDocumentParams
    ) -> None:
        documents = ls.documents
        for change in params.content_changes:
            if isinstance(change, types.TextDocumentContentChangePartial):
                start, end = change.range.start, change.range.end
                documents.change(
                    uri, (start.line, start.character), (end.line, end.character), change.text
                )
            else:
                documents.full(uri, change.text)
        documents.set_version(uri, params.text_document.version)
        ws = ls.workspace_service
        language_id = documents.language_id(uri)
        if ws is None or language_id is None:
            return
        remember_recent(ws, documents, uri, language_id)
        if (path := path_of(uri)) is not None:
            schedule_index_update(ls, uri, path)

    @server.feature(types.TEXT_DOCUMENT_DID_CLOSE)
    def did_close(ls: CoderLanguageServer, params: types.DidCloseTextDocumentParams) -> None:
        uri = params.text_document.uri
        ls.documents.close(uri)
        ls.change_ms.pop(uri, None)
        ws = ls.workspace_service
        if ws is None:
            return
        if (pending := ls.index_updates.pop(uri, None)) is not None:
            pending.cancel()
        if (path := path_of(uri)) is not None:
            running = ls.index_work.get(uri)
            if running is None:
                ws.index.set_closed(path)
            else:  # an extraction already in a worker thread: close after it
                running.add_done_callback(lambda _: ws.index.set_closed(path))

    @server.feature(types.WORKSPACE_DID_CHANGE_WATCHED_FILES)
    def did_change_watched_files(
        ls: CoderLanguageServer, params: types.DidChangeWatchedFilesParams
    ) -> None:
        ws = ls.workspace_service
        if ws is None:
            return
        changed: set[Path] = set()
        deleted: set[Path] = set()
        for event in params.changes:
            path = path_of(event.uri)
            if path is None:
                continue
            (deleted if event.type == types.FileChangeType.Deleted else changed).add(path)
        ws.submit_disk_changes(changed, deleted)
