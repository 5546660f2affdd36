"""Failing tests as problems at source lines, read from the reports a test run leaves behind.

Each report file (JUnit XML, or a plain log) is parsed on its own; its failures are placed at
the deepest frame inside the workspace. A report that is rewritten replaces everything it said
before, so a test that passes again, or a report that is deleted, clears its problems. The
store answers which files' problems changed, for the server to publish.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path

import msgspec
import pathspec

from lsp_server.config import ReportSettings
from lsp_server.fixes.failures import (
    FrameResolver,
    ReportError,
    TestRun,
    parse_junit,
    parse_log,
)
from lsp_server.workspace.walk import inside

log = logging.getLogger(__name__)

TESTS_SOURCE = "coder-lsp tests"
"""The `source` of diagnostics made from test reports."""
MAX_REPORT_BYTES = 32 * 1024 * 1024
SKIP_DIRS = frozenset(
    {".git", "node_modules", ".venv", "venv", "__pycache__", ".mypy_cache", ".ruff_cache", ".tox"}
)


class FailingTest(msgspec.Struct, frozen=True):
    """One failing test, at a line of a workspace file."""

    path: str
    line: int
    """1-based."""
    message: str
    test: str
    details: str
    report: str


class ReportStore:
    """What the latest reports say, by report and by source file."""

    def __init__(
        self, roots: Sequence[Path], settings: ReportSettings, exclude: Sequence[str] = ()
    ) -> None:
        self.roots = [Path(os.path.abspath(r)) for r in roots]
        self._real_roots = [os.path.realpath(r) for r in self.roots]
        self._reports = pathspec.GitIgnoreSpec.from_lines(settings.reports)
        self._logs = pathspec.GitIgnoreSpec.from_lines(settings.logs)
        self._resolver = FrameResolver(self.roots, exclude)
        self._by_report: dict[str, list[FailingTest]] = {}
        self._lock = threading.Lock()

    def _relative(self, path: str) -> str | None:
        for root in self.roots:
            try:
                return Path(path).relative_to(root).as_posix()
            except ValueError:
                continue
        return None

    def kind(self, path: str) -> str | None:
        """ "junit" or "log" when `path` is a report file the settings name, else None (also
        for a link that leads outside the workspace: its target is not the workspace's)."""
        rel = self._relative(os.path.abspath(path))
        if rel is None or not any(inside(os.path.realpath(path), r) for r in self._real_roots):
            return None
        if self._reports.match_file(rel):
            return "junit"
        if self._logs.match_file(rel):
            return "log"
        return None

    def wanted(self, path: str) -> bool:
        return self.kind(path) is not None

    def scan(self) -> list[Path]:
        """The report files on disk now (walks the roots once, skipping tool folders)."""
        found: list[Path] = []
        for root in self.roots:
            for here, dirs, files in os.walk(root, onerror=lambda _: None):
                dirs[:] = [d for d in dirs if d not in SKIP_DIRS]
                found.extend(Path(here, f) for f in files if self.wanted(os.path.join(here, f)))
        return found

    def _read(self, path: Path) -> TestRun | None:
        kind = self.kind(str(path))
        try:
            if path.stat().st_size > MAX_REPORT_BYTES:
                log.warning("test report %s is over %d MiB; skipped", path, MAX_REPORT_BYTES >> 20)
                return None
            data = path.read_bytes()
        except OSError:
            return None
        try:
            if kind == "junit":
                return parse_junit(data)
            return parse_log(data.decode("utf-8", errors="replace"))
        except ReportError as exc:
            log.warning("test report %s: %s", path, exc)
            return None

    def _problems(self, report: Path, run: TestRun) -> list[FailingTest]:
        out: list[FailingTest] = []
        for failure in run.failures:
            where = self._resolver.deepest(failure, report.parent)
            if where is None:
                log.debug("no workspace frame for %s in %s", failure.test, report)
                continue
            path, line = where
            out.append(
                FailingTest(
                    path=str(path),
                    line=line,
                    message=failure.message,
                    test=failure.test,
                    details=failure.details,
                    report=str(report),
                )
            )
        return out

    def update(self, changed: Iterable[Path], deleted: Iterable[Path] = ()) -> set[str]:
        """Read changed reports, forget deleted ones; the source files whose problems changed.

        A report that cannot be parsed right now (being written, malformed) keeps what it
        said before.
        """
        touched: set[str] = set()
        updates: dict[str, list[FailingTest] | None] = {}
        self._resolver.invalidate()  # files may have appeared since the last batch
        for path in deleted:
            updates[os.path.abspath(path)] = None
        for path in changed:
            p = Path(os.path.abspath(path))
            if not self.wanted(str(p)):
                continue
            run = self._read(p)
            if run is not None:
                updates[str(p)] = self._problems(p, run)
            elif not p.exists():
                updates[str(p)] = None
        with self._lock:
            for report, problems in updates.items():
                gone = [
                    key
                    for key in self._by_report
                    if key == report or key.startswith(report + os.sep)
                ]
                for key in gone:
                    touched.update(p.path for p in self._by_report.pop(key))
                if problems is not None:
                    self._by_report[report] = problems
                    touched.update(p.path for p in problems)
        return touched

    def problems_in(self, path: str) -> list[FailingTest]:
        """The failing tests placed in `path`, in report order."""
        with self._lock:
            return [p for ps in self._by_report.values() for p in ps if p.path == path]

    def paths(self) -> set[str]:
        with self._lock:
            return {p.path for ps in self._by_report.values() for p in ps}


__all__ = ["TESTS_SOURCE", "FailingTest", "ReportStore"]
