"""Walk workspace folders: `.gitignore` rules, exclude globs, size and binary checks.

Rules follow git: a `.gitignore` applies to its own directory and everything below it, a
deeper file overrides a shallower one, the last matching line wins within a file (so `!`
re-includes), and nothing inside an ignored directory can be re-included. `.git` itself is
always skipped. Exclude globs use the same (gitignore) syntax and are matched against the
path relative to the workspace root, e.g. `**/node_modules/**` or `secrets/**`.
"""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import NamedTuple

import pathspec

from lsp_server.workspace.languages import language_for_path

log = logging.getLogger(__name__)

DEFAULT_MAX_FILE_BYTES = 1_000_000
SNIFF_BYTES = 8192
GITIGNORE = ".gitignore"

LanguageOf = Callable[[str], str | None]
"""Maps a path to its LSP language id, or None when the language is not supported."""

_Chain = tuple[tuple[str, pathspec.GitIgnoreSpec], ...]
"""The `.gitignore` specs that apply in a directory, shallowest first, each with the
directory it lives in (relative to the root, "" for the root itself)."""


class FileStat(NamedTuple):
    """A file the walk accepted."""

    path: Path
    size: int
    mtime_ns: int


def is_binary(head: bytes) -> bool:
    """Whether the first bytes of a file look binary (a NUL byte, as git decides)."""
    return b"\0" in head[:SNIFF_BYTES]


def read_gitignore(path: str) -> pathspec.GitIgnoreSpec | None:
    """The spec of one `.gitignore` file, or None when it is missing, unreadable or empty."""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    try:
        spec = pathspec.GitIgnoreSpec.from_lines(lines)
    except (ValueError, TypeError) as exc:  # a malformed pattern: git ignores the file too
        log.debug("ignoring %s: %s", path, exc)
        return None
    return spec if spec.patterns else None


class IgnoreRules:
    """The `.gitignore` files and exclude globs of one workspace root.

    `ignored()` answers for single paths (the watcher's case); `walk()` carries the chain of
    specs down the tree instead of asking per path.
    """

    def __init__(self, root: Path, exclude: Sequence[str] = ()) -> None:
        self.root = Path(os.path.abspath(root))
        self._root_str = str(self.root)
        self.real_root = os.path.realpath(self.root)
        self.exclude = pathspec.GitIgnoreSpec.from_lines(list(exclude))
        self._has_exclude = bool(self.exclude.patterns)
        self._specs: dict[str, pathspec.GitIgnoreSpec | None] = {}

    def relative(self, path: Path | str) -> str | None:
        """`path` relative to the root with `/` separators; None when outside, "" for the root."""
        p = os.path.abspath(path)
        if p == self._root_str:
            return ""
        prefix = self._root_str.rstrip(os.sep) + os.sep
        if not p.startswith(prefix):
            return None
        rel = p[len(prefix) :]
        return rel.replace(os.sep, "/") if os.sep != "/" else rel

    def spec_of(self, rel_dir: str) -> pathspec.GitIgnoreSpec | None:
        """The `.gitignore` of a directory (relative to the root), loaded once."""
        if rel_dir not in self._specs:
            base = os.path.join(self._root_str, rel_dir) if rel_dir else self._root_str
            self._specs[rel_dir] = read_gitignore(os.path.join(base, GITIGNORE))
        return self._specs[rel_dir]

    def invalidate(self, rel_dir: str | None = None) -> None:
        """Forget a directory's loaded `.gitignore` (all of them when `rel_dir` is None)."""
        if rel_dir is None:
            self._specs.clear()
        else:
            self._specs.pop(rel_dir, None)

    def matches(self, chain: _Chain, rel: str, is_dir: bool) -> bool:
        """Whether `rel` (relative to the root) is ignored by `chain` or the excludes."""
        key = rel + "/" if is_dir else rel
        for base, spec in reversed(chain):
            sub = key[len(base) + 1 :] if base else key
            result = spec.check_file(sub).include
            if result is not None:
                if result:
                    return True
                break
        return self._has_exclude and self.exclude.match_file(key)

    def ignored(self, path: Path | str, is_dir: bool = False) -> bool:
        """Whether a path is ignored, checking every directory above it too.

        Paths outside the root, links that lead outside it, and anything inside `.git`, count
        as ignored.
        """
        rel = self.relative(path)
        if rel is None or not inside(os.path.realpath(path), self.real_root):
            return True
        if rel == "":
            return False
        parts = rel.split("/")
        if ".git" in parts:
            return True
        chain: _Chain = ()
        for i, _ in enumerate(parts):
            here = "/".join(parts[:i])
            spec = self.spec_of(here)
            if spec is not None:
                chain = (*chain, (here, spec))
            last = i == len(parts) - 1
            if self.matches(chain, "/".join(parts[: i + 1]), is_dir or not last):
                return True
        return False


class WorkspaceRules:
    """The `IgnoreRules` of several roots; a path is judged by the deepest root holding it."""

    def __init__(self, roots: Sequence[Path], exclude: Sequence[str] = ()) -> None:
        rules = [IgnoreRules(root, exclude) for root in roots]
        self._rules = sorted(rules, key=lambda r: len(str(r.root)), reverse=True)

    def rules_for(self, path: Path | str) -> IgnoreRules | None:
        """The rules of the deepest root that contains `path`, or None when none does."""
        for rules in self._rules:
            if rules.relative(path) is not None:
                return rules
        return None

    def ignored(self, path: Path | str, is_dir: bool = False) -> bool:
        """Whether `path` is ignored or excluded; paths outside every root are not."""
        rules = self.rules_for(path)
        return rules is not None and rules.ignored(path, is_dir)

    def invalidate(self, gitignore: Path | str) -> None:
        """Forget a changed `.gitignore` file (given by its own path)."""
        directory = os.path.dirname(os.path.abspath(gitignore))
        for rules in self._rules:
            rel = rules.relative(directory)
            if rel is not None:
                rules.invalidate(rel)


def walk(
    roots: Sequence[Path],
    *,
    exclude: Sequence[str] = (),
    max_file_bytes: int = DEFAULT_MAX_FILE_BYTES,
    language_of: LanguageOf = language_for_path,
) -> Iterator[FileStat]:
    """Yield the indexable files under `roots`: supported language, not ignored, not binary,
    at most `max_file_bytes`.

    Symlinks are followed within the root only: one that leads outside it is skipped (a
    repository must not make its readers' other files into context). A directory (or file)
    already visited through another path is not visited again, so loops end. Files and
    directories that vanish or cannot be read while walking are skipped.
    """
    seen: set[tuple[int, int]] = set()
    by_suffix: dict[str, str | None] = {}

    def cached_language(name: str) -> str | None:
        # Languages go by file extension: ask once per extension.
        suffix = os.path.splitext(name)[1].lower()
        if not suffix:
            return language_of(name)
        if suffix not in by_suffix:
            by_suffix[suffix] = language_of(name)
        return by_suffix[suffix]

    for root in roots:
        yield from _walk_root(IgnoreRules(root, exclude), seen, max_file_bytes, cached_language)


def inside(path: str, root: str) -> bool:
    """Whether `path` is `root` or below it (both real paths)."""
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def _walk_root(
    rules: IgnoreRules,
    seen: set[tuple[int, int]],
    max_file_bytes: int,
    language_of: LanguageOf,
) -> Iterator[FileStat]:
    root = str(rules.root)
    try:
        st = os.stat(root)
    except OSError as exc:
        log.warning("cannot walk %s: %s", root, exc)
        return
    if not stat.S_ISDIR(st.st_mode) or (st.st_dev, st.st_ino) in seen:
        return
    seen.add((st.st_dev, st.st_ino))
    real_root = rules.real_root
    stack: list[tuple[str, str, _Chain]] = [(root, "", ())]
    while stack:
        directory, rel_dir, chain = stack.pop()
        try:
            with os.scandir(directory) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError as exc:
            log.debug("skipping directory %s: %s", directory, exc)
            continue
        if any(e.name == GITIGNORE for e in entries):
            spec = rules.spec_of(rel_dir)
            if spec is not None:
                chain = (*chain, (rel_dir, spec))
        prefix = rel_dir + "/" if rel_dir else ""
        subdirs: list[tuple[str, str, _Chain]] = []
        for entry in entries:
            name = entry.name
            if name == ".git":
                continue
            rel = prefix + name
            try:
                is_dir = entry.is_dir()
                if entry.is_symlink() and not inside(os.path.realpath(entry.path), real_root):
                    log.debug("skipping %s: a link to outside the workspace", entry.path)
                    continue
            except OSError:
                continue
            if is_dir:
                if rules.matches(chain, rel, True):
                    continue
                try:
                    dst = entry.stat()
                except OSError:
                    continue
                key = (dst.st_dev, dst.st_ino)
                if key in seen:
                    log.debug("skipping %s: directory already visited", entry.path)
                    continue
                seen.add(key)
                subdirs.append((entry.path, rel, chain))
                continue
            found = _accept_file(entry, rel, chain, rules, seen, max_file_bytes, language_of)
            if found is not None:
                yield found
        stack.extend(reversed(subdirs))


def _accept_file(
    entry: os.DirEntry[str],
    rel: str,
    chain: _Chain,
    rules: IgnoreRules,
    seen: set[tuple[int, int]],
    max_file_bytes: int,
    language_of: LanguageOf,
) -> FileStat | None:
    if language_of(entry.name) is None or rules.matches(chain, rel, False):
        return None
    try:
        st = entry.stat()  # follows symlinks; a broken one raises
    except OSError:
        return None
    if not stat.S_ISREG(st.st_mode):
        return None
    key = (st.st_dev, st.st_ino)
    if key in seen:
        return None
    if st.st_size > max_file_bytes:
        log.debug("skipping %s: %d bytes is over the limit", entry.path, st.st_size)
        return None
    try:
        with open(entry.path, "rb") as f:
            head = f.read(SNIFF_BYTES)
    except OSError:
        return None
    if is_binary(head):
        log.debug("skipping %s: binary", entry.path)
        return None
    seen.add(key)
    return FileStat(Path(entry.path), st.st_size, st.st_mtime_ns)
