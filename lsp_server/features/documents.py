"""Document sync beyond pygls' own: parse trees, the index's view of open files, recent files."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from lsprotocol import types
from pygls.uris import to_fs_path

from lsp_server.privacy.redact import redactor_for
from lsp_server.server import CoderLanguageServer

log = logging.getLogger(__name__)


def path_of(uri: str) -> Path | None:
    fs = to_fs_path(uri) if uri.startswith("file:") else None
    return Path(fs) if fs else None


INDEX_DEBOUNCE_S = 0.3
"""Re-index an edited document once typing pauses, not on every keystroke."""


def schedule_index_update(ls: CoderLanguageServer, uri: str, path: Path) -> None:
    """Hand the open document's text (authoritative over disk) to the index, debounced."""
    pending = ls.index_updates.pop(uri, None)
    if pending is not None:
        pending.cancel()

    def update() -> None:
        ls.index_updates.pop(uri, None)
        ws = ls.workspace_service
        text = ws.trees.text(uri) if ws else None
        if ws is not None and text is not None:
            ws.index.set_open(path, text, tree=ws.trees.tree(uri))

    loop = asyncio.get_running_loop()
    ls.index_updates[uri] = loop.call_later(INDEX_DEBOUNCE_S, update)


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
        ws = ls.workspace_service
        if ws is None:
            return
        ws.recent.touch(doc.uri, doc.text, doc.language_id)
        if (path := path_of(doc.uri)) is not None:
            ws.index.set_open(path, doc.text, tree=ws.trees.tree(doc.uri))

    @server.feature(types.TEXT_DOCUMENT_DID_CHANGE)
    def did_change(ls: CoderLanguageServer, params: types.DidChangeTextDocumentParams) -> None:
        uri = params.text_document.uri
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
        doc = documents.get(uri)
        if ws is None or doc is None:
            return
        ws.recent.touch(uri, doc.source, doc.language_id)
        if (path := path_of(uri)) is not None:
            schedule_index_update(ls, uri, path)

    @server.feature(types.TEXT_DOCUMENT_DID_CLOSE)
    def did_close(ls: CoderLanguageServer, params: types.DidCloseTextDocumentParams) -> None:
        uri = params.text_document.uri
        ls.documents.close(uri)
        ws = ls.workspace_service
        if ws is None:
            return
        if (pending := ls.index_updates.pop(uri, None)) is not None:
            pending.cancel()
        if (path := path_of(uri)) is not None:
            ws.index.set_closed(path)

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
