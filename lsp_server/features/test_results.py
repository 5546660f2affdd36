"""Failing tests as diagnostics (source "coder-lsp tests"), kept current from test reports.

Reports named by `tests.reports` (JUnit XML) and `tests.logs` (plain logs) are read at start
and watched on disk; every change republishes the diagnostics of the files it touches, so a
test that passes again clears its diagnostic.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from lsprotocol import types
from pygls.uris import from_fs_path

from lsp_server.fixes.reports import TESTS_SOURCE, FailingTest, ReportStore
from lsp_server.positions import utf16_len
from lsp_server.server import CoderLanguageServer
from lsp_server.workspace.watcher import Watcher

log = logging.getLogger(__name__)


def _line_range(text: str | None, line: int) -> types.Range:
    """The code on 1-based `line` of `text`, without its indentation (start of file if
    the line is gone)."""
    lines = (text or "").splitlines()
    if not 1 <= line <= len(lines):
        zero = types.Position(line=0, character=0)
        return types.Range(start=zero, end=zero)
    content = lines[line - 1]
    indent = len(content) - len(content.lstrip())
    return types.Range(
        start=types.Position(line=line - 1, character=utf16_len(content[:indent])),
        end=types.Position(line=line - 1, character=utf16_len(content)),
    )


def _diagnostic(problem: FailingTest, text: str | None) -> types.Diagnostic:
    name = problem.test.rsplit("::", 1)[-1] or problem.test
    return types.Diagnostic(
        range=_line_range(text, problem.line),
        message=f"{name} failed: {problem.message}",
        severity=types.DiagnosticSeverity.Error,
        source=TESTS_SOURCE,
        code=problem.test,
        data={"test": problem.test, "details": problem.details, "report": problem.report},
    )


def publish(ls: CoderLanguageServer, paths: set[str]) -> None:
    """Send the current diagnostics of `paths` (an empty list clears them)."""
    store = ls.reports
    if store is None:
        return
    for path in sorted(paths):
        uri = from_fs_path(path) or Path(path).as_uri()
        doc = ls.documents.get(uri)
        text: str | None = doc.source if doc is not None else None
        if text is None:
            try:
                text = Path(path).read_text(encoding="utf-8", errors="replace")
            except OSError:
                text = None
        diagnostics = [_diagnostic(p, text) for p in store.problems_in(path)]
        ls.text_document_publish_diagnostics(
            types.PublishDiagnosticsParams(uri=uri, diagnostics=diagnostics)
        )


def start(ls: CoderLanguageServer) -> None:
    """Read the reports on disk in the background, then watch them."""
    settings = ls.settings
    if ls.root is None or not settings.tests.diagnostics:
        return
    exclude = [*settings.workspace.exclude, *settings.privacy.exclude]
    store = ReportStore([ls.root], settings.tests, exclude)
    ls.reports = store
    loop = asyncio.get_running_loop()

    def deliver(changed: set[Path], deleted: set[Path]) -> None:
        touched = store.update(changed, deleted)
        if touched and ls.reports is store:
            loop.call_soon_threadsafe(publish, ls, touched)

    def begin() -> None:
        deliver(set(store.scan()), set())
        if settings.workspace.watch:
            watcher = Watcher([ls.root] if ls.root else [], on_batch=deliver, wanted=store.wanted)
            watcher.start()
            if ls.reports is store:
                ls.report_watcher = watcher
            else:  # stopped meanwhile
                watcher.stop()

    async def run() -> None:
        try:
            await asyncio.to_thread(begin)
        except Exception:
            log.error("reading test reports failed", exc_info=True)

    ls.report_task = loop.create_task(run())


def _detach(ls: CoderLanguageServer) -> tuple[Watcher | None, set[str]]:
    watcher, ls.report_watcher = ls.report_watcher, None
    store, ls.reports = ls.reports, None
    return watcher, store.paths() if store is not None else set()


def _clear(ls: CoderLanguageServer, paths: set[str]) -> None:
    for path in paths:
        uri = from_fs_path(path) or Path(path).as_uri()
        ls.text_document_publish_diagnostics(
            types.PublishDiagnosticsParams(uri=uri, diagnostics=[])
        )


def stop(ls: CoderLanguageServer) -> None:
    """Stop watching the reports (at shutdown)."""
    watcher, _ = _detach(ls)
    if watcher is not None:
        watcher.stop()


async def restart(ls: CoderLanguageServer) -> None:
    """Apply changed `tests` settings: clear what was published, read and watch again."""
    watcher, paths = _detach(ls)
    if watcher is not None:
        await asyncio.to_thread(watcher.stop)
    _clear(ls, paths)
    start(ls)
