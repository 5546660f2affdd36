"""Recently opened and edited documents, and the windows of them most like the code at the
cursor (Jaccard similarity over identifier sets, as Copilot's neighbouring tabs and Cody's
Jaccard retriever do).

Each document is cut into windows once per version, lazily (the document being typed in is
never cut, since it is never searched), with an inverted index from identifier to windows, so
a query costs one probe per identifier of the query. In the background mode (the server) no
query cuts anything: an edited document keeps its last windows until a worker thread has cut
the new version, once typing pauses in every document, and a new one is searched once it has
been cut.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable

import msgspec
from pygls.uris import to_fs_path

from lsp_server.context.identifiers import IDENTIFIER, keywords, language_group

log = logging.getLogger(__name__)

SETTLE_S = 0.5
KNOWN_LINES = 200_000
"""At most this many lines' identifiers are remembered between cuts."""
"""The background mode cuts an edited document again once it has not changed for this long."""


class SimilarWindow(msgspec.Struct, frozen=True):
    """A window of lines of a recent document and its similarity to the query."""

    uri: str
    path: str
    """File system path (the URI itself when it is not a file)."""
    start_line: int
    end_line: int
    """0-based, exclusive."""
    text: str
    score: float


class _Windows:
    """A document version cut into overlapping windows, with identifier postings."""

    def __init__(
        self,
        text: str,
        language_id: str,
        window_lines: int,
        stride: int,
        min_length: int,
        known: dict[str, frozenset[str]] | None = None,
    ) -> None:
        skip = keywords(language_id)
        self.lines = text.split("\n")
        known = {} if known is None else known  # lines seen before (another version)
        line_ids: list[frozenset[str]] = []
        for line in self.lines:
            found = known.get(line)
            if found is None:
                found = known[line] = frozenset(
                    w for w in IDENTIFIER.findall(line) if len(w) >= min_length and w not in skip
                )
            line_ids.append(found)
        n = len(self.lines)
        starts = list(range(0, max(1, n - window_lines + stride), stride))
        if n > window_lines and starts[-1] + window_lines < n:
            starts.append(n - window_lines)
        self.spans: list[tuple[int, int]] = []
        self.sizes: list[int] = []
        self.postings: dict[str, list[int]] = {}
        for start in starts:
            end = min(n, start + window_lines)
            ids: set[str] = set()
            for s in line_ids[start:end]:
                ids |= s
            if not ids:
                continue
            index = len(self.spans)
            self.spans.append((start, end))
            self.sizes.append(len(ids))
            for name in ids:
                self.postings.setdefault(name, []).append(index)

    def scores(self, query: set[str]) -> list[tuple[float, int]]:
        """(Jaccard score, window index) for every window sharing an identifier with `query`."""
        counts: dict[int, int] = {}
        for name in query:
            for index in self.postings.get(name, ()):
                counts[index] = counts.get(index, 0) + 1
        q = len(query)
        return [(c / (q + self.sizes[i] - c), i) for i, c in counts.items()]


Text = str | Callable[[], str]
"""A document's text, or a function that makes it."""


def _resolve(text: Text) -> str:
    return text if isinstance(text, str) else text()


class _Document:
    __slots__ = ("language_id", "path", "stale", "text", "touched", "uri", "windows")

    def __init__(self, uri: str, path: str, text: Text, language_id: str, touched: float) -> None:
        self.uri = uri
        self.path = path
        self.text = text
        self.language_id = language_id
        self.touched = touched
        self.windows: _Windows | None = None
        self.stale = True
        """The windows (if any) are of an older text."""


def path_of_uri(uri: str) -> str:
    """The file system path of a ``file:`` URI, else the URI itself."""
    if uri.startswith("file:"):
        path = to_fs_path(uri)
        if path:
            return path
    return uri


class RecentDocuments:
    """The last `max_docs` documents opened or edited (documents over `max_chars` are not
    kept), searchable for the windows most similar to some code."""

    def __init__(
        self,
        max_docs: int = 20,
        max_chars: int = 500_000,
        window_lines: int = 20,
        stride: int = 10,
        min_length: int = 2,
        clock: Callable[[], float] = time.monotonic,
        *,
        background: bool = False,
        settle_s: float = SETTLE_S,
    ) -> None:
        self.background = background
        self.settle_s = settle_s
        self._wake = threading.Event()
        self._worker: threading.Thread | None = None
        self._stopped = False
        self._sleeping = True
        self._known: dict[str, dict[str, frozenset[str]]] = {}
        """Per language, each line's identifiers (the worker's: a new version of a document
        is cut mostly from lines it has seen)."""
        self.max_docs = max_docs
        self.max_chars = max_chars
        self.window_lines = window_lines
        self.stride = stride
        self.min_length = min_length
        self._clock = clock
        self._docs: OrderedDict[str, _Document] = OrderedDict()
        self._lock = threading.Lock()
        self._last_touch = float("-inf")
        """When any document was last opened or edited (the worker waits for a pause)."""
        self.generation = 0
        """Counts changes of what queries search: documents added or dropped, windows cut."""

    def touch(self, uri: str, text: Text, language_id: str) -> None:
        """Record that `uri` was opened or edited and now reads `text` (cheap: no indexing).

        `text` may be a function that makes it, called when the document is cut (in the
        worker thread, in the background mode): an edit then costs no copy of the document.
        Its caller has checked that it is at most `max_chars` long and has no NUL.
        """
        with self._lock:
            if isinstance(text, str) and (len(text) > self.max_chars or "\x00" in text):
                if self._docs.pop(uri, None) is not None:
                    self.generation += 1
                return
            doc = self._docs.pop(uri, None)
            now = self._clock()
            if doc is None:
                doc = _Document(uri, path_of_uri(uri), text, language_id, now)
                self.generation += 1
            elif (
                doc.text is not text
                and (not isinstance(text, str) or not isinstance(doc.text, str) or doc.text != text)
            ) or doc.language_id != language_id:
                if doc.language_id != language_id:
                    self.generation += 1
                doc.text, doc.language_id, doc.stale = text, language_id, True
                if not self.background:
                    doc.windows = None
                    self.generation += 1
            doc.touched = self._last_touch = now
            self._docs[uri] = doc
            while len(self._docs) > self.max_docs:
                self._docs.popitem(last=False)
                self.generation += 1
        if self.background:
            self._start_worker()

    def _start_worker(self) -> None:
        if self._sleeping:  # the worker waits for work; otherwise it looks again soon
            self._wake.set()
        if (self._worker is None or not self._worker.is_alive()) and not self._stopped:
            self._worker = threading.Thread(target=self._cut_settled, name="recent", daemon=True)
            self._worker.start()

    def _cut_settled(self) -> None:
        """Worker thread: cut new documents at once, and edited ones once typing has paused
        for `settle_s` in every document (cutting competes with requests for the GIL, and a
        window of another document a few keystrokes old serves as well)."""
        self._sleeping = False
        while not self._stopped:
            self._wake.wait(self.settle_s)
            self._wake.clear()
            waiting = False
            while not self._stopped:
                now = self._clock()
                quiet = now - self._last_touch >= self.settle_s  # typing paused everywhere
                with self._lock:
                    due = [
                        (d, d.text, d.language_id)
                        for d in reversed(self._docs.values())
                        if d.stale and (d.windows is None or quiet)
                    ]
                    waiting = any(d.stale for d in self._docs.values())
                if not due:
                    break
                doc, text, language_id = due[0]
                known = self._known.setdefault(language_id, {})
                if len(known) > KNOWN_LINES:
                    known.clear()
                try:
                    windows: _Windows | None = _Windows(
                        _resolve(text),
                        language_id,
                        self.window_lines,
                        self.stride,
                        self.min_length,
                        known,
                    )
                except Exception:  # one document must not stop the others being cut
                    log.warning("could not cut %s into windows", doc.uri, exc_info=True)
                    windows = None
                with self._lock:
                    if doc.text is text:  # not edited meanwhile
                        doc.windows, doc.stale = windows, False
                        self.generation += 1
            if not waiting:
                self._sleeping = True  # a touch from now on wakes it
                with self._lock:
                    waiting = any(d.stale for d in self._docs.values())
                if not waiting:
                    self._wake.wait()
                self._sleeping = False

    def stop(self) -> None:
        """End the worker thread (the background mode)."""
        self._stopped = True
        self._wake.set()

    def remove(self, uri: str) -> None:
        """Forget `uri` (deleted, or excluded by privacy settings)."""
        with self._lock:
            if self._docs.pop(uri, None) is not None:
                self.generation += 1

    def uris(self) -> list[str]:
        """The remembered documents, most recently touched first."""
        with self._lock:
            return list(reversed(self._docs))

    def __len__(self) -> int:
        return len(self._docs)

    def query_ids(self, text: str, language_id: str) -> set[str]:
        """The identifier set of `text` as windows are indexed (keywords and short names out)."""
        skip = keywords(language_id)
        return {w for w in IDENTIFIER.findall(text) if len(w) >= self.min_length and w not in skip}

    def similar(
        self,
        query: str,
        language_id: str,
        *,
        exclude: str | None = None,
        limit: int = 3,
        threshold: float = 0.2,
        deadline: float | None = None,
    ) -> list[SimilarWindow]:
        """The `limit` windows most similar to `query` (code around the cursor), best first.

        Only documents of `language_id`'s language group are searched (all, if it has none);
        `exclude` (a URI or a path: the current document) is skipped. Windows scoring under
        `threshold`, and windows overlapping a better one of the same document, are left out.
        Documents are searched most recent first until `deadline` (`time.perf_counter()`).
        """
        ids = self.query_ids(query, language_id)
        if not ids or limit <= 0:
            return []
        group = language_group(language_id)
        with self._lock:
            docs = [(d, d.text, d.language_id, d.windows) for d in reversed(self._docs.values())]
        candidates: list[tuple[float, int, int, _Document, _Windows]] = []
        for rank, (doc, text, doc_language, windows) in enumerate(docs):
            if exclude is not None and exclude in (doc.uri, doc.path):
                continue
            if group and language_group(doc_language) not in (group, ""):
                continue
            if deadline is not None and time.perf_counter() > deadline:
                break
            if windows is None:
                if self.background:
                    continue  # the worker cuts it
                windows = _Windows(
                    _resolve(text), doc_language, self.window_lines, self.stride, self.min_length
                )
                with self._lock:
                    if doc.text is text:  # not edited meanwhile
                        doc.windows, doc.stale = windows, False
                        self.generation += 1
            for score, index in windows.scores(ids):
                if score >= threshold:
                    candidates.append((score, rank, index, doc, windows))
        candidates.sort(key=lambda c: (-c[0], c[1], c[2]))
        chosen: list[SimilarWindow] = []
        taken: dict[str, list[tuple[int, int]]] = {}
        for score, _rank, index, doc, windows in candidates:
            start, end = windows.spans[index]
            spans = taken.setdefault(doc.uri, [])
            if any(start < e and s < end for s, e in spans):
                continue
            spans.append((start, end))
            text = "\n".join(windows.lines[start:end])
            chosen.append(SimilarWindow(doc.uri, doc.path, start, end, text, score))
            if len(chosen) >= limit:
                break
        return chosen


__all__ = ["RecentDocuments", "SimilarWindow", "path_of_uri"]
