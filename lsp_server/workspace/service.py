"""The server's view of the workspace: open documents' trees, the index, the watcher."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from pathlib import Path

from lsp_server.config import Settings
from lsp_server.context.gather import ContextMemo
from lsp_server.context.similar import RecentDocuments
from lsp_server.workspace.documents import DocumentTrees
from lsp_server.workspace.index import IndexStats, WorkspaceIndex
from lsp_server.workspace.watcher import Watcher

log = logging.getLogger(__name__)

Progress = Callable[[int, int], None]


class WorkspaceService:
    """Everything the features need about files, kept current from the editor and the disk."""

    def __init__(
        self,
        roots: list[Path],
        settings: Settings,
        cache_dir: Path,
        trees: DocumentTrees | None = None,
    ) -> None:
        ws = settings.workspace
        self.roots = roots
        self.trees = trees if trees is not None else DocumentTrees()
        self.recent = RecentDocuments(background=True)
        self.context_memo: ContextMemo = ContextMemo()
        """Repository context reused while a word is typed (`prompt_with_context`)."""
        exclude = [*ws.exclude, *settings.privacy.exclude]
        self.index = WorkspaceIndex(
            roots, exclude=exclude, cache_dir=cache_dir, max_file_bytes=ws.max_file_kb * 1024
        )
        self.watcher: Watcher | None = None
        self._watch = ws.watch and bool(roots)
        self._enabled = ws.index and bool(roots)
        self._cancel = threading.Event()
        self.stats: IndexStats | None = None

    async def start(self, progress: Progress | None = None) -> IndexStats | None:
        """Index in a worker thread, then watch the disk; the event loop keeps serving."""
        if not self._enabled:
            return None
        if self._watch:
            # Watch first, so changes made while indexing are not missed.
            self.watcher = Watcher(self.roots, self.index, on_batch=self.index.update_files)
            await asyncio.to_thread(self.watcher.start)
        self.stats = await asyncio.to_thread(self.index.build, progress, self._cancel)
        log.info(
            "indexed %d files, %d symbols in %.1f s (%d parsed, %d reused)",
            self.stats.files,
            self.stats.symbols,
            self.stats.seconds,
            self.stats.parsed,
            self.stats.reused,
        )
        return self.stats

    def submit_disk_changes(self, changed: set[Path], deleted: set[Path]) -> None:
        """Queue changes reported by the editor through the same debounce as the watcher."""
        if self.watcher is not None:
            self.watcher.submit(changed, deleted)
        elif self._enabled:
            self.index.update_files(changed, deleted)

    def stop(self) -> None:
        self._cancel.set()
        self.recent.stop()
        if self.watcher is not None:
            self.watcher.stop()
            self.watcher = None
