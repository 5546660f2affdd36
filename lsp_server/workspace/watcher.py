"""Watch the workspace for changes made outside the editor, debounced and coalesced.

A watchdog observer reports created, modified, deleted and moved files under the roots; the
editor's `workspace/didChangeWatchedFiles` comes in through `submit()`. Both go into one
pending batch (the latest event per path wins) that is delivered to `on_batch(changed,
deleted)` from a background thread once no event has arrived for `quiet_s` seconds (or once
the oldest pending event is `max_wait_s` old, so a file written continuously still shows up).
When every pending change is known to be complete (the writer closed the file, renamed it into
place, or the editor reported it) the quiet period shrinks to `settle_s`: nothing is left to
wait for but a burst of further events.

`deleted` may hold directories: the consumer drops every file under them, and applies
`deleted` before `changed`.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from watchdog.events import (
    DirCreatedEvent,
    DirDeletedEvent,
    DirMovedEvent,
    FileClosedEvent,
    FileCreatedEvent,
    FileDeletedEvent,
    FileModifiedEvent,
    FileMovedEvent,
    FileSystemEvent,
    FileSystemEventHandler,
)
from watchdog.observers import Observer

from lsp_server.workspace.languages import language_for_path
from lsp_server.workspace.walk import GITIGNORE, WorkspaceRules

if TYPE_CHECKING:
    from watchdog.observers.api import BaseObserver

    from lsp_server.workspace.index import WorkspaceIndex

log = logging.getLogger(__name__)

OnBatch = Callable[[set[Path], set[Path]], None]
_Event = tuple[Path, bool, bool]
"""(path, deleted, complete): `complete` is False while the file may still be being written."""

_EVENTS: list[type[FileSystemEvent]] = [
    FileCreatedEvent,
    FileModifiedEvent,
    FileClosedEvent,
    FileDeletedEvent,
    FileMovedEvent,
    DirCreatedEvent,
    DirDeletedEvent,
    DirMovedEvent,
]


class Watcher:
    """Disk and editor file events for the roots, delivered in debounced batches."""

    def __init__(
        self,
        roots: Sequence[Path],
        index: WorkspaceIndex | None = None,
        *,
        on_batch: OnBatch | None = None,
        exclude: Sequence[str] | None = None,
        wanted: Callable[[str], bool] | None = None,
        quiet_s: float = 0.05,
        settle_s: float = 0.01,
        max_wait_s: float = 1.0,
    ) -> None:
        """With an `index`, its ignore rules are shared (and `exclude` defaults to its
        excludes) and batches default to `index.update_files`. `wanted` replaces the default
        choice of files (indexable source files outside ignored paths) with a predicate on
        the absolute path; ignore rules then apply only through it."""
        self.roots = [Path(os.path.abspath(r)) for r in roots]
        if index is not None and exclude is None:
            self.rules = index.rules
        else:
            self.rules = WorkspaceRules(self.roots, exclude or ())
        if on_batch is None:
            if index is None:
                raise ValueError("Watcher needs on_batch or an index")
            on_batch = index.update_files
        self.on_batch = on_batch
        self._custom = wanted
        self.quiet_s = quiet_s
        self.settle_s = min(settle_s, quiet_s)
        self.max_wait_s = max_wait_s
        self._pending: dict[Path, bool] = {}  # path -> deleted
        self._writing: set[Path] = set()  # pending changes that may still be being written
        self._first = 0.0
        self._last = 0.0
        self._cond = threading.Condition()
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._observer: BaseObserver | None = None

    # --- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        """Start watching the disk (if the OS allows) and delivering batches.

        Takes time proportional to the number of directories: call it off the event loop.
        """
        self._ensure_thread()
        if self._observer is not None:
            return
        observer = Observer()
        handler = _Handler(self)
        try:
            for root in self.roots:
                if root.is_dir():
                    observer.schedule(handler, str(root), recursive=True, event_filter=_EVENTS)
            observer.start()  # adds the OS watches for every directory, in this thread
        except OSError as exc:  # e.g. the inotify watch limit
            log.warning("not watching the disk for changes: %s", exc)
            return
        self._observer = observer

    def stop(self) -> None:
        """Stop watching and delivering; pending events are dropped."""
        observer, self._observer = self._observer, None
        if observer is not None:
            observer.stop()
        with self._cond:
            self._stopping = True
            self._pending.clear()
            self._writing.clear()
            self._cond.notify_all()
        if observer is not None:
            observer.join(timeout=5)
        thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=5)

    @property
    def watching(self) -> bool:
        """Whether the disk is being observed."""
        return self._observer is not None

    # --- input -----------------------------------------------------------------------------

    def submit(self, changed: Iterable[Path], deleted: Iterable[Path] = ()) -> None:
        """Queue changes reported by someone else (e.g. the editor) through the same debounce.

        Paths may be files or (deleted) directories; ignored and unsupported files are dropped.
        """
        events: list[_Event] = []
        for path in deleted:
            p = Path(os.path.abspath(path))
            if self._custom is not None or not self.rules.ignored(p):
                events.append((p, True, True))
        for path in changed:
            p = Path(os.path.abspath(path))
            if p.name == GITIGNORE:
                self.rules.invalidate(p)
            elif p.is_dir():
                events.extend((f, False, True) for f in self._files_under(p))
            elif self._wanted(p):
                events.append((p, False, True))
        self._ensure_thread()
        self._queue(events)

    def _wanted(self, path: Path | str) -> bool:
        if self._custom is not None:
            return self._custom(str(path))
        return language_for_path(path) is not None and not self.rules.ignored(path)

    def _relevant(self, path: str) -> bool:
        """Whether a deleted file may have been delivered before."""
        return (
            self._custom(path) if self._custom is not None else language_for_path(path) is not None
        )

    def _pruned(self, directory: str) -> bool:
        if self._custom is not None:
            return os.path.basename(directory) in (".git", "node_modules", ".venv", "__pycache__")
        return self.rules.ignored(directory, is_dir=True)

    def _files_under(self, directory: Path) -> list[Path]:
        """Indexable files in a directory that appeared (created or moved in)."""
        found: list[Path] = []
        if self._pruned(str(directory)):
            return found
        for here, dirs, files in os.walk(directory, onerror=lambda _: None):
            dirs[:] = [d for d in dirs if d != ".git" and not self._pruned(os.path.join(here, d))]
            found.extend(Path(here, f) for f in files if self._wanted(os.path.join(here, f)))
        return found

    def _on_event(self, event: FileSystemEvent) -> None:
        src = os.fsdecode(event.src_path)
        dest = os.fsdecode(event.dest_path) if event.dest_path else ""
        events: list[_Event] = []
        if event.is_directory:
            if isinstance(event, DirDeletedEvent | DirMovedEvent):
                events.append((Path(src), True, True))
            if isinstance(event, DirCreatedEvent):
                events.extend((f, False, True) for f in self._files_under(Path(src)))
            elif isinstance(event, DirMovedEvent) and dest:
                events.extend((f, False, True) for f in self._files_under(Path(dest)))
        else:
            for path in (src, dest):
                if os.path.basename(path) == GITIGNORE:
                    self.rules.invalidate(path)
            if isinstance(event, FileDeletedEvent | FileMovedEvent):
                if self._relevant(src):
                    events.append((Path(src), True, True))
                if dest and self._wanted(dest):
                    events.append((Path(dest), False, True))
            elif self._wanted(src):
                # Created or modified: more writes may follow. Closed after writing: done.
                events.append((Path(src), False, isinstance(event, FileClosedEvent)))
        self._queue(events)

    # --- debounce --------------------------------------------------------------------------

    def _queue(self, events: list[_Event]) -> None:
        if not events:
            return
        with self._cond:
            if self._stopping:
                return
            now = time.monotonic()
            if not self._pending:
                self._first = now
            self._last = now
            for path, deleted, complete in events:
                self._pending.pop(path, None)  # re-insert: the latest event wins
                self._pending[path] = deleted
                if complete:
                    self._writing.discard(path)
                else:
                    self._writing.add(path)
            self._cond.notify_all()

    def _ensure_thread(self) -> None:
        with self._cond:
            if self._thread is not None or self._stopping:
                return
            self._thread = threading.Thread(target=self._deliver, name="watcher", daemon=True)
            self._thread.start()

    def _deliver(self) -> None:
        while True:
            with self._cond:
                while True:
                    if self._stopping:
                        return
                    if not self._pending:
                        self._cond.wait()
                        continue
                    now = time.monotonic()
                    quiet = self.quiet_s if self._writing else self.settle_s
                    due = min(self._last + quiet, self._first + self.max_wait_s)
                    if now >= due:
                        break
                    self._cond.wait(due - now)
                batch, self._pending = self._pending, {}
                self._writing.clear()
            changed = {p for p, d in batch.items() if not d}
            deleted = {p for p, d in batch.items() if d}
            try:
                self.on_batch(changed, deleted)
            except Exception:
                log.exception("applying %d file changes failed", len(batch))


class _Handler(FileSystemEventHandler):
    def __init__(self, watcher: Watcher) -> None:
        self._watcher = watcher

    def on_any_event(self, event: FileSystemEvent) -> None:
        try:
            self._watcher._on_event(event)
        except Exception:  # never let the observer thread die
            log.exception("handling %s failed", event)
