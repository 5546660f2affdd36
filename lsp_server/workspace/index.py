"""The workspace symbol index: definitions of every indexable file, searchable by name.

`build()` walks the roots, reuses cached entries whose size and mtime still match, parses the
rest (in worker processes when there are many), publishes the result and saves the cache
(msgspec MessagePack, one file per root). Afterwards `update_file()`, `remove_file()`,
`set_open()` and `set_closed()` keep it current; open documents win over the disk.

Readers never block: every change builds a new immutable `_State` and swaps it in, so
`search()` and friends may run on the event loop while `build()` runs in a worker thread.
Writers are serialised by one lock.
"""

from __future__ import annotations

import bisect
import concurrent.futures
import contextlib
import hashlib
import heapq
import logging
import multiprocessing
import os
import re
import stat
import tempfile
import threading
import time
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

import msgspec
import tree_sitter

from lsp_server.workspace import extract as _extract_module
from lsp_server.workspace import symbols as _symbols_module
from lsp_server.workspace.extract import extract_symbols
from lsp_server.workspace.languages import language_for_path
from lsp_server.workspace.symbols import Symbol
from lsp_server.workspace.walk import (
    DEFAULT_MAX_FILE_BYTES,
    SNIFF_BYTES,
    WorkspaceRules,
    is_binary,
    walk,
)

log = logging.getLogger(__name__)

CACHE_FORMAT = 1
"""Bumped when the cache layout changes; older files are ignored and rebuilt."""

PARALLEL_MIN_FILES = 64
"""Fewer files than this to parse are parsed in the calling thread."""

SEARCH_BUDGET_S = 0.04
"""Fuzzy matching stops after this long (only pathological queries get near it)."""

Progress = Callable[[int, int], None]


class IndexStats(msgspec.Struct, frozen=True):
    """What one `build()` did."""

    files: int
    symbols: int
    parsed: int
    """Files parsed in this build (new or changed since the cache)."""
    reused: int
    """Files whose cached symbols were still valid."""
    seconds: float
    cancelled: bool = False


class FileEntry(msgspec.Struct, frozen=True, array_like=True, gc=False):
    """One indexed file. `size`/`mtime_ns` are -1 for an open document's text."""

    size: int
    mtime_ns: int
    language: str
    symbols: tuple[Symbol, ...]


class _CacheFile(msgspec.Struct, array_like=True, gc=False):
    format: int
    extractor: str
    root: str
    files: dict[str, FileEntry]


def _extractor_id() -> str:
    """Changes whenever the extraction code or the Symbol record changes."""
    digest = hashlib.sha256()
    for module in (_extract_module, _symbols_module):
        with contextlib.suppress(OSError, TypeError):
            digest.update(Path(module.__file__ or "").read_bytes())
    return digest.hexdigest()[:16]


_ENTRY_ENCODER = msgspec.msgpack.Encoder()
_ENTRY_DECODER = msgspec.msgpack.Decoder(FileEntry)


def _extract(
    data: bytes, language: str, path: str, tree: tree_sitter.Tree | None = None
) -> list[Symbol]:
    try:
        return extract_symbols(data, language, path, tree)
    except Exception:  # a grammar or extractor bug must not stop indexing
        log.warning("symbol extraction failed for %s", path, exc_info=True)
        return []


def read_entry(path: str, language: str, max_bytes: int) -> FileEntry | None:
    """Parse one file from disk; None when it is gone, unreadable, too large or binary."""
    try:
        with open(path, "rb") as f:
            st = os.fstat(f.fileno())
            if not stat.S_ISREG(st.st_mode) or st.st_size > max_bytes:
                return None
            data = f.read(max_bytes + 1)
    except OSError:
        return None
    if len(data) > max_bytes or is_binary(data[:SNIFF_BYTES]):
        return None
    symbols = _extract(data, language, path)
    return FileEntry(st.st_size, st.st_mtime_ns, language, tuple(symbols))


def _parse_job(job: tuple[str, str, int]) -> tuple[str, bytes | None]:
    """Worker-process entry point: one file, its entry as MessagePack (cheap to send back)."""
    path, language, max_bytes = job
    entry = read_entry(path, language, max_bytes)
    return path, None if entry is None else _ENTRY_ENCODER.encode(entry)


def _sort_key(s: Symbol) -> tuple[int, bool, str, str, int]:
    return (len(s.name), s.container != "", s.name, s.path, s.start_line)


# --- name matching ------------------------------------------------------------------------

_WORD = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|[0-9]+|[^\W\d_A-Za-z]+")
_NOT_IDENT = re.compile(r"[^\w]+")
_ONE = re.compile("1")


def word_form(name: str) -> str:
    """The name's words, lowercase, joined by spaces: `getHTTPServer` -> `get http server`."""
    if name.islower() and name.replace("_", "").isalpha():  # snake_case: the common case
        return " ".join(w for w in name.split("_") if w)
    return " ".join(w.lower() for w in _WORD.findall(name))


def _subsequence_re(q: str) -> re.Pattern[str]:
    """Matches strings containing `q`'s characters in order (no backtracking)."""
    parts = "".join(f"[^{re.escape(c)}]*+{re.escape(c)}" for c in q)
    return re.compile(parts)


def _word_re(q: str) -> re.Pattern[str]:
    """Matches word forms where each character of `q` continues the previous match or starts
    a later word: `gcd` and `getcd` match `get current dir`."""
    pattern = r"(?:.*? )?" + re.escape(q[0])
    for c in q[1:]:
        e = re.escape(c)
        pattern += f"(?:{e}|.*? {e})"
    return re.compile(pattern)


class _NameTable:
    """Immutable search structures over a set of names.

    `lines` are the distinct lowercase names ordered by length, then alphabetically; lines of
    length `n` are `lines[starts[n]:starts[n + 1]]`, so a prefix is a bisection per length.
    Bit `i` of `bits[c]` says whether `lines[i]` contains character `c`, and of `initials[c]`
    whether one of its words starts with `c`: a query's candidates are a few ANDs away.
    """

    __slots__ = ("bits", "by_lower", "forms", "initials", "lines", "names", "starts")

    def __init__(self, names: Collection[str]) -> None:
        self.names = frozenset(names)
        groups: dict[str, list[str]] = {}
        for name in self.names:
            groups.setdefault(name.lower(), []).append(name)
        self.by_lower = {k: tuple(v) for k, v in groups.items()}
        self.lines = sorted(sorted(self.by_lower), key=len)  # stable: by length, then name
        self.starts: list[int] = []
        self.forms: list[tuple[tuple[str, tuple[str, ...]], ...]] = []
        width = len(self.lines) // 8 + 1
        arrays: dict[str, bytearray] = {}
        initial_arrays: dict[str, bytearray] = {}
        for i, line in enumerate(self.lines):
            while len(self.starts) <= len(line):
                self.starts.append(i)
            byte, bit = i >> 3, 1 << (i & 7)
            for c in set(line):
                arr = arrays.get(c)
                if arr is None:
                    arr = arrays[c] = bytearray(width)
                arr[byte] |= bit
            names_here = self.by_lower[line]
            forms: tuple[tuple[str, tuple[str, ...]], ...]
            if len(names_here) == 1:
                forms = ((word_form(names_here[0]), names_here),)
            else:
                by_form: dict[str, list[str]] = {}
                for n in names_here:
                    by_form.setdefault(word_form(n), []).append(n)
                forms = tuple((f, tuple(ns)) for f, ns in by_form.items())
            self.forms.append(forms)
            for c in {w[0] for form, _ in forms for w in form.split()}:
                arr = initial_arrays.get(c)
                if arr is None:
                    arr = initial_arrays[c] = bytearray(width)
                arr[byte] |= bit
        self.starts.append(len(self.lines))
        self.bits = {c: int.from_bytes(a, "little") for c, a in arrays.items()}
        self.initials = {c: int.from_bytes(a, "little") for c, a in initial_arrays.items()}

    def prefix(self, lower: str) -> Iterator[str]:
        """Names whose lowercase form starts with `lower`, shortest first."""
        lines, starts = self.lines, self.starts
        for n in range(len(lower), len(starts) - 1):
            hi = starts[n + 1]
            i = bisect.bisect_left(lines, lower, starts[n], hi)
            while i < hi and lines[i].startswith(lower):
                yield from self.by_lower[lines[i]]
                i += 1

    def candidates(self, chars: str, initial: str = "") -> Iterator[int]:
        """Indices of the lines containing every character of `chars` (and a word starting
        with `initial`, if given), shortest first."""
        if not self.lines:
            return
        acc = self.initials.get(initial, 0) if initial else (1 << len(self.lines)) - 1
        for c in set(chars):
            if not acc:
                return
            acc &= self.bits.get(c, 0)
        if not acc:
            return
        digits = bin(acc)[:1:-1]
        for m in _ONE.finditer(digits):
            yield m.start()


class _State:
    """One immutable version of the index.

    Symbols by name are `base` (grouped when `table` was built) overridden by `overlay` (the
    names touched since; `()` when gone), so a change copies the small overlay, not every name.
    """

    __slots__ = ("base", "extra", "files", "overlay", "table")

    def __init__(
        self,
        files: dict[str, FileEntry],
        base: dict[str, tuple[Symbol, ...]],
        overlay: dict[str, tuple[Symbol, ...]],
        table: _NameTable,
        extra: frozenset[str],
    ) -> None:
        self.files = files
        self.base = base
        self.overlay = overlay
        self.table = table
        self.extra = extra
        """Names with symbols that `table` does not know (added since it was built)."""

    def named(self, name: str) -> tuple[Symbol, ...]:
        found = self.overlay.get(name)
        return self.base.get(name, ()) if found is None else found


def _group_by_name(files: Mapping[str, FileEntry]) -> dict[str, tuple[Symbol, ...]]:
    groups: dict[str, list[Symbol]] = {}
    for entry in files.values():
        for s in entry.symbols:
            lst = groups.get(s.name)
            if lst is None:
                groups[s.name] = [s]
            else:
                lst.append(s)
    return {k: tuple(v) for k, v in groups.items()}


def _state_of(files: dict[str, FileEntry]) -> _State:
    by_name = _group_by_name(files)
    return _State(files, by_name, {}, _NameTable(by_name), frozenset())


_EMPTY_TABLE = _NameTable(())


class WorkspaceIndex:
    """Definitions in the workspace's files, kept current, searchable from any thread."""

    def __init__(
        self,
        roots: Sequence[Path],
        *,
        exclude: Sequence[str] = (),
        cache_dir: Path | None = None,
        max_file_bytes: int = DEFAULT_MAX_FILE_BYTES,
        workers: int | None = None,
    ) -> None:
        """`workers`: processes that parse when many files changed (None: one per CPU, at
        most 8; 0: parse in the calling thread, holding its GIL)."""
        self.roots = [Path(os.path.abspath(r)) for r in roots]
        self.exclude = tuple(exclude)
        self.cache_dir = cache_dir
        self.max_file_bytes = max_file_bytes
        self.workers = min(os.cpu_count() or 1, 8) if workers is None else workers
        self.rules = WorkspaceRules(self.roots, self.exclude)
        self._current = _State({}, {}, {}, _EMPTY_TABLE, frozenset())
        self.generation = 0
        """Counts changes of the indexed definitions (what caches of lookups key on)."""
        self._write_lock = threading.Lock()
        self._build_lock = threading.Lock()
        self._open: dict[str, str] = {}
        self._touched: set[str] | None = None
        self._rebuilding = False
        self._extractor = _extractor_id()
        self.cache_error: str | None = None  # why the cache is off, once it failed

    # --- reading ---------------------------------------------------------------------------

    @property
    def _state(self) -> _State:
        return self._current

    @_state.setter
    def _state(self, state: _State) -> None:
        self._current = state
        self.generation += 1

    def files(self) -> list[Path]:
        """Indexed files, sorted."""
        return [Path(p) for p in sorted(self._state.files)]

    def symbols_in(self, path: Path | str) -> list[Symbol]:
        """The definitions of one file, in file order."""
        entry = self._state.files.get(os.path.abspath(path))
        return list(entry.symbols) if entry is not None else []

    def definitions(self, name: str) -> list[Symbol]:
        """Every definition named exactly `name`, top-level first."""
        return sorted(self._state.named(name), key=_sort_key)

    @property
    def symbol_count(self) -> int:
        return sum(len(e.symbols) for e in self._state.files.values())

    def search(self, query: str, limit: int = 100) -> list[Symbol]:
        """Definitions matching `query`, best first.

        Ranks: exact name, then case-insensitive prefix, then word-boundary subsequence
        (`gcd` or `getcd` for `get_current_dir`/`getCurrentDir`), then any subsequence;
        within a rank shorter names, then top-level definitions, come first.
        """
        st = self._state
        q = query.strip()
        if limit <= 0:
            return []
        out: list[Symbol] = []
        taken: set[str] = set()

        def take(names: Iterable[str]) -> None:
            # `names` come shortest first: stop at the first length past the limit.
            found: list[Symbol] = []
            need = limit - len(out)
            cut = -1
            for name in names:
                if cut >= 0 and len(name) > cut:
                    break
                if name not in taken:
                    taken.add(name)
                    found.extend(st.named(name))
                    if cut < 0 and len(found) >= need:
                        cut = len(name)
            found.sort(key=_sort_key)
            out.extend(found)

        if not q:  # everything, shortest first
            table = st.table
            known = (n for line in table.lines for n in table.by_lower[line])
            take(heapq.merge(known, sorted(st.extra, key=len), key=len))
            return out[:limit]
        if st.named(q):
            take((q,))
        if len(out) >= limit:
            return out[:limit]
        lower = q.lower()
        late = sorted((n for n in st.extra if n.lower().startswith(lower)), key=len)
        take(heapq.merge(st.table.prefix(lower), late, key=len))
        if len(out) >= limit:
            return out[:limit]
        chars = _NOT_IDENT.sub("", lower)
        wchars = chars.replace("_", "")
        if not wchars:
            return out[:limit]
        words, subs = self._fuzzy(st, chars, wchars, limit - len(out), taken)
        take(words)
        take(subs)
        return out[:limit]

    @staticmethod
    def _fuzzy(
        st: _State, chars: str, wchars: str, need: int, taken: set[str]
    ) -> tuple[list[str], list[str]]:
        """Word-boundary and plain subsequence matches, each shortest first.

        Lines are visited shortest first, so once `need` symbols have matched, longer lines
        cannot outrank them and a pass stops. Word-boundary matches outrank any subsequence
        match, so the second pass only runs while the first found fewer than `need`.
        `_` in the query must match literally in a plain subsequence but is only a word
        separator at word boundaries (`get_cur` finds `getCurrentDir`).
        """
        sub_re = _subsequence_re(chars)
        loose_re = _subsequence_re(wchars) if wchars != chars else sub_re
        word_re = _word_re(wchars)
        table, named = st.table, st.named
        deadline = time.perf_counter() + SEARCH_BUDGET_S
        extra = sorted(n for n in st.extra if n not in taken)

        words: list[str] = []
        found: set[str] = set()
        count, cut = 0, -1
        for n, i in enumerate(table.candidates(wchars, initial=wchars[0])):
            line = table.lines[i]
            if cut >= 0 and len(line) > cut:
                break
            if n & 255 == 255 and time.perf_counter() > deadline:
                log.debug("symbol search for %r stopped at its time budget", chars)
                break
            if loose_re.match(line) is None:
                continue
            for form, names in table.forms[i]:
                if word_re.match(form) is not None:
                    for name in names:
                        if name not in taken:
                            words.append(name)
                            found.add(name)
                            count += len(named(name))
            if cut < 0 and count >= need:
                cut = len(line)
        for name in extra:
            if word_re.match(word_form(name)):
                words.append(name)
                found.add(name)
                count += len(named(name))

        subs: list[str] = []
        if count < need:
            sub_count, cut = 0, -1
            for n, i in enumerate(table.candidates(chars)):
                line = table.lines[i]
                if cut >= 0 and len(line) > cut:
                    break
                if n & 255 == 255 and time.perf_counter() > deadline:
                    log.debug("symbol search for %r stopped at its time budget", chars)
                    break
                if sub_re.match(line) is None:
                    continue
                for name in table.by_lower[line]:
                    if name not in taken and name not in found:
                        subs.append(name)
                        sub_count += len(named(name))
                if cut < 0 and sub_count >= need - count:
                    cut = len(line)
            subs.extend(n for n in extra if n not in found and sub_re.match(n.lower()))
        words.sort(key=len)
        subs.sort(key=len)
        return words, subs

    # --- building --------------------------------------------------------------------------

    def build(
        self, progress: Progress | None = None, cancel: threading.Event | None = None
    ) -> IndexStats:
        """Walk, reuse what the cache still vouches for, parse the rest, publish, save.

        Synchronous; meant for a worker thread. Searches keep working meanwhile (on the
        previous state, or on the cached entries once they are loaded). A cancelled build
        caches what it parsed; it publishes it only when the index was empty.
        """
        with self._build_lock:
            return self._build(progress, cancel)

    def _build(self, progress: Progress | None, cancel: threading.Event | None) -> IndexStats:
        start = time.perf_counter()
        cancelled = cancel.is_set if cancel is not None else lambda: False
        with self._write_lock:
            self._touched = set()
        known = {p: e for p, e in self._state.files.items() if e.size >= 0}
        cached = self._load_cache()
        cache_size = len(cached)
        from_cache = 0
        entries: dict[str, FileEntry] = {}
        todo: list[tuple[str, str, int]] = []
        for fs in walk(self.roots, exclude=self.exclude, max_file_bytes=self.max_file_bytes):
            if cancelled():
                break
            path = str(fs.path)
            old = cached.get(path)
            if old is not None and old.size == fs.size and old.mtime_ns == fs.mtime_ns:
                entries[path] = old
                from_cache += 1
                continue
            old = known.get(path)
            if old is not None and old.size == fs.size and old.mtime_ns == fs.mtime_ns:
                entries[path] = old
                continue
            language = language_for_path(path)
            if language is not None:
                todo.append((path, language, self.max_file_bytes))
        reused = len(entries)
        total = reused + len(todo)
        if progress is not None:
            progress(reused, total)
        if todo and not self._state.files and entries:
            self._publish(dict(entries), final=False)
        parsed = 0
        step = max(1, total // 100)
        for path, entry in self._parse_all(todo, cancelled):
            parsed += 1
            if entry is not None:
                entries[path] = entry
            if progress is not None and parsed % step == 0:
                progress(reused + parsed, total)
        if progress is not None:
            progress(reused + parsed, total)
        was_cancelled = cancelled()
        if was_cancelled and self._state.files:
            # A partial result would hide files the current index has: keep that one.
            with self._write_lock:
                self._touched = None
            state = self._state
        else:
            state = self._publish(entries, final=True)
        if was_cancelled:
            self._save({**cached, **entries})  # the next build resumes from here
        elif parsed or not from_cache == len(entries) == cache_size:
            self._save(state.files)
        stats = IndexStats(
            files=len(state.files),
            symbols=sum(len(e.symbols) for e in state.files.values()),
            parsed=parsed,
            reused=reused,
            seconds=time.perf_counter() - start,
            cancelled=was_cancelled,
        )
        log.debug("index build: %s", stats)
        return stats

    def _parse_all(
        self, todo: list[tuple[str, str, int]], cancelled: Callable[[], bool]
    ) -> Iterator[tuple[str, FileEntry | None]]:
        """Parse `todo`, in worker processes when it is large; stop early when cancelled."""
        done = 0
        if len(todo) >= PARALLEL_MIN_FILES and self.workers > 0:
            try:
                for path, payload in self._parse_parallel(todo, cancelled):
                    done += 1
                    yield path, None if payload is None else _ENTRY_DECODER.decode(payload)
            except (BrokenProcessPool, OSError, RuntimeError) as exc:
                log.warning("parallel indexing failed (%s); continuing in one thread", exc)
            else:
                return
        for path, language, max_bytes in todo[done:]:
            if cancelled():
                return
            yield path, read_entry(path, language, max_bytes)

    def _parse_parallel(
        self, todo: list[tuple[str, str, int]], cancelled: Callable[[], bool]
    ) -> Iterator[tuple[str, bytes | None]]:
        # Results come back in submission order, so a failure resumes exactly where it was.
        ctx = multiprocessing.get_context("spawn")  # fork is unsafe in a threaded server
        workers = min(self.workers, max(1, len(todo) // 16))
        chunk = max(1, min(32, len(todo) // (workers * 8)))
        pool = concurrent.futures.ProcessPoolExecutor(workers, mp_context=ctx)
        try:
            for result in pool.map(_parse_job, todo, chunksize=chunk):
                if cancelled():
                    return
                yield result
        finally:
            pool.shutdown(wait=True, cancel_futures=True)

    def _publish(self, entries: dict[str, FileEntry], *, final: bool) -> _State:
        """Swap in `entries`, keeping what changed live meanwhile (open documents win)."""
        with self._write_lock:
            live = self._state.files
            before = self._touched or set()
            for path in before | self._open.keys():
                entry = live.get(path)
                if entry is not None:
                    entries[path] = entry
                elif path in before:
                    entries.pop(path, None)
            self._touched = set()
        state = _state_of(entries)  # the costly part, outside the lock
        with self._write_lock:
            during = self._touched or set()
            if during:
                now = self._state.files
                state = self._with_changes(state, {p: now.get(p) for p in during})
            self._touched = None if final else before | during
            self._state = state
        return state

    # --- live updates ----------------------------------------------------------------------

    def update_file(self, path: Path | str, text: str | None = None) -> None:
        """Re-index one file from disk, or from `text` (which marks it open, see `set_open`).

        Disk updates of open files are ignored; files that are gone, unsupported, ignored,
        too large or binary leave the index.
        """
        if text is not None:
            self.set_open(path, text)
            return
        p = os.path.abspath(path)
        if p in self._open:
            return
        language = language_for_path(p)
        entry = None
        if language is not None and not self.rules.ignored(p):
            entry = read_entry(p, language, self.max_file_bytes)
        self._apply({p: entry}, from_disk=True)

    def update_files(
        self, changed: Iterable[Path | str], deleted: Iterable[Path | str] = ()
    ) -> None:
        """Apply a batch of disk changes in one swap: `deleted` first (files or directories),
        then `changed` (re-read from disk)."""
        updates: dict[str, FileEntry | None] = {}
        files = self._state.files
        for d in deleted:
            for p in self._under(files, os.path.abspath(d)):
                updates[p] = None
        for c in changed:
            p = os.path.abspath(c)
            language = language_for_path(p)
            entry = None
            if language is not None and not self.rules.ignored(p):
                entry = read_entry(p, language, self.max_file_bytes)
            updates[p] = entry
        self._apply(updates, from_disk=True)

    def remove_file(self, path: Path | str) -> None:
        """Drop a file, or every file under a directory; open documents stay."""
        p = os.path.abspath(path)
        self._apply(dict.fromkeys(self._under(self._state.files, p)), from_disk=True)

    @staticmethod
    def _under(files: Mapping[str, FileEntry], p: str) -> list[str]:
        if p in files:
            return [p]
        prefix = p.rstrip(os.sep) + os.sep
        return [f for f in files if f.startswith(prefix)]

    def set_open(
        self, path: Path | str, text: str, *, tree: tree_sitter.Tree | None = None
    ) -> None:
        """The editor has this file open with `text`: index that, ignore the disk until closed.

        `tree` is the document's current tree-sitter tree, if the caller has one.
        """
        p = os.path.abspath(path)
        with self._write_lock:
            unchanged = self._open.get(p) == text and p in self._state.files
            self._open[p] = text
        if unchanged:
            return
        language = language_for_path(p)
        entry = None
        if language is not None and not self.rules.ignored(p):
            data = text.encode("utf-8", "surrogatepass")
            if len(data) <= self.max_file_bytes and not is_binary(data[:SNIFF_BYTES]):
                symbols = _extract(data, language, p, tree)
                entry = FileEntry(-1, -1, language, tuple(symbols))
        with self._write_lock:
            if self._open.get(p) is text:
                self._apply_locked({p: entry})

    def set_closed(self, path: Path | str) -> None:
        """The editor closed the file: the disk is authoritative again."""
        p = os.path.abspath(path)
        with self._write_lock:
            was_open = self._open.pop(p, None) is not None
        if was_open:
            self.update_file(p)

    def _apply(self, updates: dict[str, FileEntry | None], *, from_disk: bool) -> None:
        with self._write_lock:
            if from_disk:
                updates = {p: e for p, e in updates.items() if p not in self._open}
            self._apply_locked(updates)

    def _apply_locked(self, updates: dict[str, FileEntry | None]) -> None:
        if not updates:
            return
        if self._touched is not None:
            self._touched.update(updates)
        self._state = st = self._with_changes(self._state, updates)
        if not self._rebuilding and len(st.overlay) > max(256, len(st.table.names) // 20):
            self._rebuilding = True
            threading.Thread(target=self._fold, name="index-fold", daemon=True).start()

    @staticmethod
    def _with_changes(st: _State, updates: Mapping[str, FileEntry | None]) -> _State:
        """A new state with `updates` applied (None removes a file)."""
        files = dict(st.files)
        overlay = dict(st.overlay)
        extra = set(st.extra)
        for path, entry in updates.items():
            old = files.pop(path, None)
            if old is not None:
                for name in {s.name for s in old.symbols}:
                    kept = tuple(s for s in st.named(name) if s.path != path)
                    overlay[name] = kept
                    if not kept:
                        extra.discard(name)
            if entry is None:
                continue
            files[path] = entry
            for s in entry.symbols:
                found = overlay.get(s.name)
                overlay[s.name] = (*(st.base.get(s.name, ()) if found is None else found), s)
                if s.name not in st.table.names:
                    extra.add(s.name)
        return _State(files, st.base, overlay, st.table, frozenset(extra))

    def _fold(self) -> None:
        """Fold the overlay into a fresh base and search table, off the caller's thread."""
        try:
            snap = self._state
            merged = dict(snap.base)
            for name, symbols in snap.overlay.items():
                if symbols:
                    merged[name] = symbols
                else:
                    merged.pop(name, None)
            table = _NameTable(merged)
            with self._write_lock:
                st = self._state
                if st.base is not snap.base:
                    return  # a build published a whole new state meanwhile
                # Keep what changed since the snapshot.
                overlay = {k: v for k, v in st.overlay.items() if snap.overlay.get(k) is not v}
                extra = frozenset(k for k, v in overlay.items() if v and k not in table.names)
                self._state = _State(st.files, merged, overlay, table, extra)
        finally:
            self._rebuilding = False

    # --- the cache -------------------------------------------------------------------------

    def _cache_path(self, root: Path) -> Path | None:
        if self.cache_dir is None:
            return None
        digest = hashlib.sha256(str(root).encode()).hexdigest()[:24]
        return self.cache_dir / f"{digest}.msgpack"

    def _load_cache(self) -> dict[str, FileEntry]:
        decoder = msgspec.msgpack.Decoder(_CacheFile)
        files: dict[str, FileEntry] = {}
        for root in self.roots:
            path = self._cache_path(root)
            if path is None:
                continue
            try:
                data = path.read_bytes()
            except FileNotFoundError:
                continue
            except OSError as exc:
                log.warning("cannot read the index cache %s: %s", path, exc)
                self.cache_error = f"cannot read {path}: {exc.strerror or exc}"
                continue
            try:
                cache = decoder.decode(data)
            except (msgspec.DecodeError, ValueError) as exc:
                log.info("ignoring the index cache %s: %s", path, exc)
                continue
            if (cache.format, cache.extractor, cache.root) != (
                CACHE_FORMAT,
                self._extractor,
                str(root),
            ):
                log.info("ignoring the index cache %s: made by another version", path)
                continue
            files.update(cache.files)
        return files

    def save(self) -> None:
        """Write the cache now (`build()` does this itself)."""
        self._save(self._state.files)

    def _save(self, files: Mapping[str, FileEntry]) -> None:
        if self.cache_dir is None:
            return
        per_root: dict[Path, dict[str, FileEntry]] = {root: {} for root in self.roots}
        for path, entry in files.items():
            if entry.size < 0:
                continue  # an open document's unsaved text
            rules = self.rules.rules_for(path)
            if rules is not None:
                per_root.setdefault(rules.root, {})[path] = entry
        encoder = msgspec.msgpack.Encoder()
        for root, entries in per_root.items():
            target = self._cache_path(root)
            if target is None:
                continue
            data = encoder.encode(_CacheFile(CACHE_FORMAT, self._extractor, str(root), entries))
            try:
                _write_atomic(target, data)
            except OSError as exc:
                log.warning("index cache off: cannot write %s: %s", target, exc)
                self.cache_error = f"cannot write {target}: {exc.strerror or exc}"
                self.cache_dir = None  # degrade to no cache rather than fail every save
                return


def _write_atomic(target: Path, data: bytes) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=target.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
