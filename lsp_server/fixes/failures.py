"""Parse failing-test reports into failures with source frames, and place them in the workspace.

`parse_junit` reads JUnit XML as pytest, Maven Surefire, go-junit-report, gotestsum and
googletest write it; `parse_log` scans plain text for Python tracebacks, pytest and unittest
output, Java stack traces (Maven, Gradle), Go test failures and panics, googletest failures,
sanitizer reports and C asserts. Frames are always outermost first, whatever order the tool
prints them in, so the last frame is the innermost. `FrameResolver` maps frame paths onto
workspace files and picks the deepest frame that is one: that is where a failure is shown.
"""

from __future__ import annotations

import os
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NamedTuple

import msgspec
import pathspec

MAX_MESSAGE = 300
"""Characters kept of a failure's one-line message."""
MAX_DETAILS = 8192
"""Characters kept of a failure's text; the end is kept, it holds the innermost frames."""

SKIP_DIRS = frozenset(
    {".git", "node_modules", ".venv", "venv", "__pycache__", "site-packages", "build", "target"}
)
"""Directories the file-name index does not walk into."""
FOREIGN_DIRS = frozenset({"site-packages", "dist-packages", ".venv", "node_modules"})
"""A file under one of these, at any depth, is a dependency, not a workspace file."""


class Frame(msgspec.Struct, frozen=True):
    """One stack frame as a report writes it."""

    path: str
    """Absolute, relative, or for Java the package path ("com/example/Foo.java")."""
    line: int
    """1-based."""
    function: str = ""


class Failure(msgspec.Struct, frozen=True):
    """One failing test (or one failed assertion of it)."""

    test: str
    """Stable id: "tests.test_calc::test_add", "com.example.FooTest::testBar", "TestParse"."""
    message: str
    """One line, at most `MAX_MESSAGE` characters."""
    details: str
    """The failure's whole text, the end of it when over `MAX_DETAILS` characters."""
    frames: tuple[Frame, ...]
    """Outermost first (call order)."""
    file: str = ""
    """The test file as the report names it (JUnit `file` attribute), if any."""
    line: int = 0
    """JUnit `line` attribute, if any."""


class TestRun(msgspec.Struct, frozen=True):
    """What one report says: the failures and the ids of the tests that passed."""

    __test__ = False  # not a pytest test class

    failures: tuple[Failure, ...]
    passed: tuple[str, ...]


class ReportError(ValueError):
    """The report cannot be read: malformed XML, not a JUnit report, a DOCTYPE."""


# --- text helpers -------------------------------------------------------------------------

_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
_CI_STAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?Z ")


def _split(text: str) -> list[str]:
    """Lines without colour codes, CI timestamps or trailing whitespace."""
    text = _ANSI.sub("", text)
    return [_CI_STAMP.sub("", line).rstrip() for line in text.splitlines()]


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def _clip_message(text: str) -> str:
    line = " ".join(text.split())
    if len(line) > MAX_MESSAGE:
        return line[: MAX_MESSAGE - 1].rstrip() + "…"
    return line


def _clip_details(text: str) -> str:
    text = text.strip("\n")
    if len(text) <= MAX_DETAILS:
        return text
    tail = text[-(MAX_DETAILS - 4) :]
    cut = tail.find("\n")
    if 0 <= cut < 200:
        tail = tail[cut + 1 :]
    return "...\n" + tail


def _first_line(text: str) -> str:
    return next((s.strip() for s in text.splitlines() if s.strip()), "")


class _Parsed(NamedTuple):
    """A failure found in text: where it is, and what it says."""

    start: int
    end: int
    """Exclusive."""
    test: str
    message: str
    frames: tuple[Frame, ...]
    file: str = ""
    pytest: bool = False
    """A pytest section; `test` is its title until the summary names it."""


# --- Python -------------------------------------------------------------------------------

_PY_HEADER = re.compile(r"^(?P<ind>\s*)Traceback \(most recent call last\):$")
_PY_FILE = re.compile(r'^\s+File "(?P<path>[^"]+)", line (?P<line>\d+)(?:, in (?P<func>.+))?$')
_PY_CHAIN = re.compile(
    r"^\s*(?:During handling of the above exception, another exception occurred:"
    r"|The above exception was the direct cause of the following exception:)$"
)
_PY_EXC = re.compile(r"^(?P<type>[A-Za-z_][\w.]*)(?::|$)")


class _Traceback(NamedTuple):
    end: int
    message: str
    frames: tuple[Frame, ...]
    exc: str


def _one_traceback(lines: list[str], i: int) -> _Traceback:
    """The traceback whose header is `lines[i]`, up to its exception's text."""
    head = _PY_HEADER.match(lines[i])
    ind = len(head["ind"]) if head else 0
    frames: list[Frame] = []
    j = i + 1
    while j < len(lines):
        line = lines[j]
        if not line.strip() or _indent(line) <= ind:
            break
        m = _PY_FILE.match(line)
        if m:
            frames.append(Frame(m["path"], int(m["line"]), (m["func"] or "").strip()))
        j += 1
    message = exc = ""
    if j < len(lines) and lines[j].strip() and _indent(lines[j]) == ind:
        message = lines[j].strip()
        m = _PY_EXC.match(message)
        exc = m["type"] if m else ""
        j += 1
        while j < len(lines) and lines[j].strip() and not _PY_HEADER.match(lines[j]):
            j += 1
    return _Traceback(j, message, tuple(frames), exc)


def _traceback_chain(lines: list[str], i: int) -> _Traceback:
    """A traceback and the ones chained after it; the last one, ending where the chain does."""
    tb = _one_traceback(lines, i)
    while True:
        j = tb.end
        while j < len(lines) and not lines[j].strip():
            j += 1
        if j >= len(lines) or not _PY_CHAIN.match(lines[j]):
            return tb
        j += 1
        while j < len(lines) and not lines[j].strip():
            j += 1
        if j >= len(lines) or not _PY_HEADER.match(lines[j]):
            return tb
        tb = _one_traceback(lines, j)


# pytest's long/short repr: `path.py:7: AssertionError`, `calc.py:3: in add`, `E   assert ...`.
_PYTEST_LOC = re.compile(
    r"^(?P<path>[^\s>:][^\s:]*\.[A-Za-z]\w*):(?P<line>\d+)(?::(?: (?P<rest>.*))?)?$"
)
_PYTEST_DEF = re.compile(r"^>?\s*(?:async\s+)?def\s+(?P<name>\w+)\s*\(")
_PYTEST_SEP = re.compile(r"^(?:_ )+_?$")
_PYTEST_CAPTURED = re.compile(r"^-{3,} Captured .* -{3,}$")


def _pytest_body(lines: list[str]) -> tuple[str, tuple[Frame, ...]]:
    """Message and frames of one pytest failure text (long/short repr, or a native traceback)."""
    end = next((k for k, s in enumerate(lines) if _PYTEST_CAPTURED.match(s)), len(lines))
    lines = lines[:end]
    first = next((k for k, s in enumerate(lines) if _PY_HEADER.match(s)), None)
    if first is not None:
        tb = _traceback_chain(lines, first)
        return tb.message, tb.frames
    cut = max((k + 1 for k, s in enumerate(lines) if _PY_CHAIN.match(s)), default=0)
    frames: list[Frame] = []
    errors: list[str] = []
    last_def = exc = ""
    for line in lines[cut:]:
        if line == "E" or line.startswith("E "):
            errors.append(line[1:].strip())
        elif _PYTEST_SEP.match(line):
            last_def = ""
        elif m := _PYTEST_DEF.match(line):
            last_def = m["name"]
        elif m := _PYTEST_LOC.match(line):
            rest = (m["rest"] or "").strip()
            if rest.startswith("in "):
                func, exc = rest[3:].strip(), ""
            else:
                func, exc = last_def, rest
            frames.append(Frame(m["path"], int(m["line"]), func))
    message = next((e for e in errors if e), "")
    if exc and message:
        head = message.split(":", 1)[0]
        if head != exc and not head.endswith("." + exc):
            message = f"{exc}: {message}"
    return message or exc, tuple(frames)


def _pytest_like(lines: list[str]) -> bool:
    """Whether text looks like pytest's failure repr."""
    return any(
        line.startswith("E ") or ((m := _PYTEST_LOC.match(line)) and m["path"].endswith(".py"))
        for line in lines
    )


# --- Java ---------------------------------------------------------------------------------

_JAVA_HEADER = re.compile(
    r"^\s*(?:\[[A-Z]+\]\s+)?(?:Exception in thread \"[^\"]*\"\s+)?"
    r"(?P<cls>(?:[A-Za-z_$][\w$]*\.)+[A-Z][\w$]*)(?::\s*(?P<msg>.*))?$"
)
_JAVA_AT = re.compile(
    r"^\s*at\s+(?:[\w.$-]+//)?(?:[\w.$-]+(?:@[\w.$-]*)?/)?"
    r"(?P<func>[^\s(/]+)\((?P<src>[^)]*)\)(?:\s.*)?$"
)
_JAVA_SRC = re.compile(r"^(?P<file>[^:]+):(?P<line>\d+)$")
_JAVA_MORE = re.compile(r"^\s*\.\.\. (?P<n>\d+) (?:more|common frames omitted)$")
_JAVA_CAUSED = re.compile(r"^\s*Caused by: (?P<rest>.*)$")
_JAVA_SUPPRESSED = re.compile(r"^\s+Suppressed: ")
_JAVA_PEEK = 15


def java_frame(func: str, src: str) -> Frame | None:
    """The frame of `at func(src)`; None for `Native Method`, `Unknown Source` and the like."""
    m = _JAVA_SRC.match(src.strip())
    if not m:
        return None
    cls = func.rsplit(".", 1)[0] if "." in func else ""
    package = cls.rsplit(".", 1)[0] if "." in cls else ""
    path = package.replace(".", "/") + "/" + m["file"] if package else m["file"]
    return Frame(path, int(m["line"]), func)


class _JavaSegment:
    """One exception of a Java trace (the thrown one, or a cause), innermost frame first."""

    def __init__(self, header: str) -> None:
        self.header = header
        self.frames: list[Frame] = []
        self.more = 0


class _JavaTrace(NamedTuple):
    end: int
    message: str
    frames: tuple[Frame, ...]
    test: str


def _java_at_ahead(lines: list[str], i: int) -> int | None:
    """Index of the first `at` line after a header at `i`, if close and no other header is."""
    for j in range(i + 1, min(len(lines), i + 1 + _JAVA_PEEK)):
        if _JAVA_AT.match(lines[j]):
            return j
        if _JAVA_HEADER.match(lines[j]) or _JAVA_CAUSED.match(lines[j]):
            return None
    return None


def _java_trace(lines: list[str], i: int) -> _JavaTrace | None:
    """The Java stack trace whose header is `lines[i]`, down to its innermost cause."""
    m = _JAVA_HEADER.match(lines[i])
    if not m:
        return None
    j = _java_at_ahead(lines, i)
    if j is None:
        return None
    segments = [_JavaSegment(_java_header(m))]
    while j < len(lines):
        line = lines[j]
        if at := _JAVA_AT.match(line):
            frame = java_frame(at["func"], at["src"])
            if frame is not None:
                segments[-1].frames.append(frame)
        elif more := _JAVA_MORE.match(line):
            segments[-1].more = int(more["n"])
        elif _JAVA_SUPPRESSED.match(line):
            k = _indent(line)
            j += 1
            while j < len(lines) and lines[j].strip() and _indent(lines[j]) >= k:
                j += 1
            continue
        elif (caused := _JAVA_CAUSED.match(line)) and (h := _JAVA_HEADER.match(caused["rest"])):
            ahead = _java_at_ahead(lines, j)
            if ahead is None:
                break
            segments.append(_JavaSegment(_java_header(h)))
            j = ahead
            continue
        else:
            break
        j += 1
    full: list[Frame] = []
    for seg in segments:
        full = seg.frames + (full[len(full) - seg.more :] if 0 < seg.more <= len(full) else [])
    outer = segments[0]
    top = outer.frames[0].function if outer.frames else ""
    test = f"{outer.header.split(':', 1)[0]}@{top}" if top else outer.header.split(":", 1)[0]
    return _JavaTrace(j, segments[-1].header, tuple(reversed(full)), test)


def _java_header(m: re.Match[str]) -> str:
    msg = (m["msg"] or "").strip()
    return f"{m['cls']}: {msg}" if msg else m["cls"]


# --- Go -----------------------------------------------------------------------------------

_GO_FAIL = re.compile(r"^(?P<ind>\s*)--- FAIL: (?P<name>\S+) \(")
_GO_PASS = re.compile(r"^\s*--- PASS: (?P<name>\S+) \(")
_GO_RUN = re.compile(r"^=== (?:RUN|CONT|NAME)\s+(?P<name>\S+)$")
_GO_LOG = re.compile(r"^(?P<ind>\s*)(?P<path>[^\s:]+\.go):(?P<line>\d+):(?: (?P<msg>.*))?$")
_GO_PANIC = re.compile(r"^(?:panic|fatal error): (?P<msg>.*)$")
_GO_GOROUTINE = re.compile(r"^goroutine \d+ \[.*\]:$")
_GO_PC = re.compile(r"^\s+(?P<path>\S+):(?P<line>\d+)(?: \+0x[0-9a-f]+)?$")
_GO_TEST_FUNC = re.compile(r"\.(?P<name>(?:Test|Benchmark|Fuzz|Example)\w*)(?:\.func\d+[\d.]*)*$")
_TESTIFY_ERROR = re.compile(r"^\s*Error:\s+(?P<msg>\S.*)$")


def _go_logs(lines: list[str], i: int) -> tuple[int, list[tuple[Frame, str]]]:
    """The `file.go:N: msg` entry at `lines[i]` and its continuation lines."""
    m = _GO_LOG.match(lines[i])
    if not m:
        return i + 1, []
    ind = len(m["ind"])
    msg = (m["msg"] or "").strip()
    j = i + 1
    extra: list[str] = []
    while j < len(lines) and lines[j].strip() and _indent(lines[j]) > ind:
        if lines[j].lstrip().startswith("--- "):
            break
        extra.append(lines[j])
        j += 1
    testify = next((t["msg"] for s in extra if (t := _TESTIFY_ERROR.match(s))), None)
    if testify or not msg:
        msg = testify or next((s.strip() for s in extra if s.strip()), msg)
    return j, [(Frame(m["path"], int(m["line"])), msg)]


def _go_panic(lines: list[str], i: int) -> _Parsed | None:
    """A Go panic at `lines[i]` and the stack of its goroutine."""
    m = _GO_PANIC.match(lines[i])
    if not m:
        return None
    g = next(
        (k for k in range(i + 1, min(len(lines), i + 40)) if _GO_GOROUTINE.match(lines[k])),
        None,
    )
    if g is None:
        return None
    frames: list[Frame] = []
    j = g + 1
    while j + 1 < len(lines) and lines[j].strip() and not lines[j][0].isspace():
        pc = _GO_PC.match(lines[j + 1])
        if not pc:
            break
        call = lines[j]
        if not call.startswith("created by "):
            func = call[: call.rfind("(")] if call.endswith(")") else call
            frames.append(Frame(pc["path"], int(pc["line"]), func))
        j += 2
    frames.reverse()
    kind = "panic" if lines[i].startswith("panic") else "fatal error"
    message = f"{kind}: {m['msg'].removesuffix(' [recovered]').strip()}"
    test = next((t["name"] for f in frames if (t := _GO_TEST_FUNC.search(f.function))), "")
    if not test:
        inner = [
            f for f in frames if f.function != "panic" and not f.function.startswith("runtime.")
        ]
        test = f"{kind}@{inner[-1].function}" if inner else kind
    return _Parsed(i, j, test, message, tuple(frames))


# --- C / C++ ------------------------------------------------------------------------------

_GTEST_RUN = re.compile(r"^\[ RUN      \] (?P<name>\S+)$")
_GTEST_OK = re.compile(r"^\[       OK \] (?P<name>\S+)(?: \(\d+ ms\))?$")
_GTEST_FAILED = re.compile(r"^\[  FAILED  \] (?P<name>[\w/.]+)(?:, where .*?)?(?: \(\d+ ms\))?$")
_GTEST_FAILURE = re.compile(r"^(?P<path>[^\s:]+?):(?P<line>\d+): Failure$")
_GTEST_MSVC = re.compile(r"^(?P<path>\S.*?)\((?P<line>\d+)\): error: (?P<msg>.*)$")
_GTEST_XML_LOC = re.compile(r"^(?P<path>[^\s:]+?):(?P<line>\d+)$")
_SANITIZER = re.compile(
    r"^(?:==\d+==)?(?:ERROR|WARNING): (?P<san>\w+Sanitizer): (?P<msg>.*?)(?: \(pid=\d+\))?$"
)
_SAN_FRAME = re.compile(
    r"^\s*#\d+\s+0x[0-9a-fA-F]+\s+in\s+(?P<func>.+?)\s+(?P<path>[^\s:()]+):(?P<line>\d+)(?::\d+)?$"
)
_SAN_NOISE = re.compile(r" at pc 0x[0-9a-fA-F]+ bp 0x[0-9a-fA-F]+ sp 0x[0-9a-fA-F]+$")
_SAN_ANY_FRAME = re.compile(r"^\s*#\d+\s+0x[0-9a-fA-F]+")
_SAN_END = re.compile(r"^(?:SUMMARY: \w+Sanitizer|==\d+==ABORTING)")
_UBSAN = re.compile(r"^(?P<path>[^\s:]+):(?P<line>\d+):\d+: runtime error: (?P<msg>.*)$")
_C_ASSERT = re.compile(
    r"^(?:\S+: )?(?P<path>[^\s:]+):(?P<line>\d+): (?P<func>.+?): "
    r"(?P<msg>Assertion [`'].*[`'] failed\.)$"
)


def _sanitizer_frames(lines: list[str], j: int) -> tuple[int, tuple[Frame, ...]]:
    """The `#0 0x... in f path:N:C` stack starting at `lines[j]`, outermost first."""
    frames: list[Frame] = []
    while j < len(lines) and _SAN_ANY_FRAME.match(lines[j]):
        if m := _SAN_FRAME.match(lines[j]):
            frames.append(Frame(m["path"], int(m["line"]), m["func"]))
        j += 1
    frames.reverse()
    return j, tuple(frames)


def _gtest_message(lines: list[str], j: int) -> tuple[int, str]:
    """googletest's message lines after a failure location, joined into one line."""
    parts: list[str] = []
    while j < len(lines) and lines[j].strip() and not lines[j].startswith("["):
        if _GTEST_FAILURE.match(lines[j]) or _GTEST_MSVC.match(lines[j]):
            break
        parts.append(lines[j].strip())
        j += 1
    return j, " ".join(parts)


# --- the log scanner ----------------------------------------------------------------------

_PYTEST_HEADER = re.compile(r"^_{3,} (?P<title>.+?) _{3,}$")
_PYTEST_BANNER = re.compile(r"^={3,}.*={3,}$")
_PYTEST_SUMMARY = re.compile(
    r"^(?:FAILED|ERROR) (?P<id>[^\s(\[][^\s\[]*(?:\[[^\]]*\])?)(?: - (?P<msg>.*))?$"
)
_PYTEST_PASSED = re.compile(
    r"^(?:(?P<a>\S+::\S+) PASSED\b.*|(?:\[gw\d+\] \[\s*\d+%\] )?PASSED (?P<b>\S+::\S+))$"
)
_UNITTEST_FAIL = re.compile(r"^(?:FAIL|ERROR): (?P<name>\S+) \((?P<cls>[\w.]+)\)")
_UNITTEST_OK = re.compile(r"^(?P<name>\w+) \((?P<cls>[\w.]+)\)(?:\s.*)? \.\.\. ok$")
_SUREFIRE_NEW = re.compile(
    r"^(?:\[[A-Z]+\]\s+)?(?P<full>[\w.$]+\.[^\s.]+) -- Time elapsed: .*<<< (?:FAILURE|ERROR)!"
)
_SUREFIRE_OLD = re.compile(
    r"^(?:\[[A-Z]+\]\s+)?(?P<name>[^\s(]+)\((?P<cls>[\w.$]+)\)\s+Time elapsed:.*<<< "
    r"(?:FAILURE|ERROR)!"
)
_GRADLE_FAILED = re.compile(r"^(?P<cls>[\w.$]+) > (?P<name>.+?) FAILED$")
_GRADLE_SHORT = re.compile(r"^\s+(?P<exc>[\w.$]+) at (?P<file>[^\s:]+):(?P<line>\d+)$")
_PENDING_WITHIN = 6
"""Lines between a test's header (unittest, Surefire, Gradle) and its trace, at most."""


def _unittest_id(name: str, cls: str) -> str:
    return f"{cls.removesuffix('.' + name)}::{name}"


class _Scanner:
    """One pass over log lines; each recognizer claims the lines it reads."""

    def __init__(self, lines: list[str]) -> None:
        self.lines = lines
        self.used = [False] * len(lines)
        self.found: list[_Parsed] = []
        self.passed: list[str] = []
        self.summary: list[tuple[str, str]] = []
        self.pending: tuple[str, int] | None = None
        self.go_current = ""
        self.go_logs: dict[str, list[int]] = {}
        self.gtest_current = ""
        self.recognizers: tuple[Callable[[int, str], bool], ...] = (
            self._pytest_section,
            self._pytest_lines,
            self._python,
            self._test_headers,
            self._java,
            self._go,
            self._go_panic,
            self._gtest,
            self._native,
        )

    def scan(self) -> _Scanner:
        for i, line in enumerate(self.lines):
            if self.used[i] or not line.strip():
                continue
            for recognize in self.recognizers:
                if recognize(i, line):
                    break
        return self

    def _claim(self, start: int, end: int) -> None:
        for k in range(start, min(end, len(self.lines))):
            self.used[k] = True

    def _add(self, found: _Parsed) -> None:
        self._claim(found.start, found.end)
        self.found.append(found)

    def _take_pending(self, i: int) -> str:
        pending, self.pending = self.pending, None
        if pending is not None and i - pending[1] <= _PENDING_WITHIN:
            return pending[0]
        return ""

    def _pytest_section(self, i: int, line: str) -> bool:
        m = _PYTEST_HEADER.match(line)
        if not m:
            return False
        j = i + 1
        while j < len(self.lines) and not (
            _PYTEST_HEADER.match(self.lines[j]) or _PYTEST_BANNER.match(self.lines[j])
        ):
            j += 1
        message, frames = _pytest_body(self.lines[i + 1 : j])
        self._add(_Parsed(i, j, m["title"], message, frames, pytest=True))
        return True

    def _pytest_lines(self, i: int, line: str) -> bool:
        if m := _PYTEST_SUMMARY.match(line):
            self.summary.append((m["id"], (m["msg"] or "").strip()))
            return True
        if m := _PYTEST_PASSED.match(line):
            self.passed.append(m["a"] or m["b"])
            return True
        return False

    def _python(self, i: int, line: str) -> bool:
        if not _PY_HEADER.match(line):
            return False
        tb = _traceback_chain(self.lines, i)
        test = self._take_pending(i)
        if not test:
            inner = tb.frames[-1] if tb.frames else None
            where = f"@{inner.path}::{inner.function}" if inner else ""
            test = f"{tb.exc or 'Traceback'}{where}"
        self._add(_Parsed(i, tb.end, test, tb.message, tb.frames))
        return True

    def _test_headers(self, i: int, line: str) -> bool:
        """Lines naming the test whose trace follows: unittest, Surefire, Gradle."""
        if m := _UNITTEST_FAIL.match(line):
            self.pending = (_unittest_id(m["name"], m["cls"]), i)
        elif m := _UNITTEST_OK.match(line):
            self.passed.append(_unittest_id(m["name"], m["cls"]))
        elif m := _SUREFIRE_NEW.match(line):
            cls, _, name = m["full"].rpartition(".")
            self.pending = (f"{cls}::{name}", i)
        elif m := _SUREFIRE_OLD.match(line):
            self.pending = (f"{m['cls']}::{m['name']}", i)
        elif m := _GRADLE_FAILED.match(line):
            test = f"{m['cls']}::{m['name']}"
            short = _GRADLE_SHORT.match(self.lines[i + 1]) if i + 1 < len(self.lines) else None
            if short:
                frame = Frame(short["file"], int(short["line"]))
                self._add(_Parsed(i, i + 2, test, short["exc"], (frame,)))
            else:
                self.pending = (test, i)
        else:
            return False
        return True

    def _java(self, i: int, line: str) -> bool:
        if "." not in line or not _JAVA_HEADER.match(line):
            return False
        trace = _java_trace(self.lines, i)
        if trace is None:
            return False
        test = self._take_pending(i) or trace.test
        self._add(_Parsed(i, trace.end, test, trace.message, trace.frames))
        return True

    def _go(self, i: int, line: str) -> bool:
        if m := _GO_FAIL.match(line):
            ind = len(m["ind"])
            entries: list[tuple[Frame, str]] = []
            j = i + 1
            while j < len(self.lines) and _indent(self.lines[j]) > ind:
                if not self.lines[j].strip() or self.lines[j].lstrip().startswith("--- "):
                    break
                j, more = _go_logs(self.lines, j)
                entries += more
            self._claim(i + 1, j)
            start = i
            if not entries:  # `go test -v` prints a test's log before its result
                logged = self.go_logs.pop(m["name"], [])
                for k in logged:
                    entries += _go_logs(self.lines, k)[1]
                start = min(logged, default=i)
            frames = tuple(f for f, _ in entries)
            message = entries[-1][1] if entries else "FAIL"
            self.found.append(_Parsed(start, j, m["name"], message, frames))
            self.used[i] = True
            return True
        if m := _GO_PASS.match(line):
            self.passed.append(m["name"])
            return True
        if m := _GO_RUN.match(line):
            self.go_current = m["name"]
            if line.startswith("=== RUN"):
                self.go_logs[self.go_current] = []
            return True
        if self.go_current and (m := _GO_LOG.match(line)) and m["ind"]:
            end, _ = _go_logs(self.lines, i)
            self.go_logs.setdefault(self.go_current, []).append(i)
            self._claim(i, end)
            return True
        return False

    def _go_panic(self, i: int, line: str) -> bool:
        if not line.startswith(("panic: ", "fatal error: ")):
            return False
        found = _go_panic(self.lines, i)
        if found is None:
            return False
        self._add(found)
        return True

    def _gtest(self, i: int, line: str) -> bool:
        if m := _GTEST_RUN.match(line):
            self.gtest_current = m["name"]
        elif m := _GTEST_OK.match(line):
            self.passed.append(m["name"])
        elif m := _GTEST_FAILED.match(line):
            self.found.append(_Parsed(i, i + 1, m["name"], "FAILED", ()))
        elif m := _GTEST_FAILURE.match(line) or _GTEST_MSVC.match(line):
            j, message = _gtest_message(self.lines, i + 1)
            if m.re is _GTEST_MSVC:
                message = f"{m['msg']} {message}".strip()
            test = self.gtest_current or f"{m['path']}:{m['line']}"
            frame = Frame(m["path"], int(m["line"]))
            self._add(_Parsed(i, j, test, message or "Failure", (frame,)))
        else:
            return False
        return True

    def _native(self, i: int, line: str) -> bool:
        """Sanitizer reports and C asserts."""
        if m := _SANITIZER.match(line):
            j = next(
                (
                    k
                    for k in range(i + 1, min(len(self.lines), i + 15))
                    if _SAN_ANY_FRAME.match(self.lines[k])
                ),
                i + 1,
            )
            j, frames = _sanitizer_frames(self.lines, j)
            end = next(
                (k + 1 for k in range(j, len(self.lines)) if _SAN_END.match(self.lines[k])), j
            )
            kind = m["msg"].split()[0] if m["msg"].split() else ""
            where = f"@{frames[-1].function}" if frames else ""
            test = f"{m['san']}: {kind}{where}"
            message = _SAN_NOISE.sub("", f"{m['san']}: {m['msg']}")
            self._add(_Parsed(i, end, test, message, frames))
        elif m := _UBSAN.match(line):
            j, frames = _sanitizer_frames(self.lines, i + 1)
            frames = frames or (Frame(m["path"], int(m["line"])),)
            test = f"UndefinedBehaviorSanitizer@{m['path']}:{m['line']}"
            self._add(_Parsed(i, j, test, f"runtime error: {m['msg']}", frames))
        elif m := _C_ASSERT.match(line):
            frame = Frame(m["path"], int(m["line"]), m["func"])
            self._add(_Parsed(i, i + 1, f"assert@{m['func']}", m["msg"], (frame,)))
        else:
            return False
        return True


def _summary_tail(node: str) -> str:
    """The part of a pytest node id after the file, as pytest titles its section."""
    if "::" not in node:
        return node
    head, bracket, params = node.partition("[")
    return head.split("::", 1)[1].replace("::", ".") + bracket + params


def _section_title(title: str) -> str:
    for prefix in ("ERROR at setup of ", "ERROR at teardown of ", "ERROR collecting "):
        if title.startswith(prefix):
            return title[len(prefix) :]
    return title


def _pytest_ids(scan: _Scanner) -> list[_Parsed]:
    """Name pytest sections by the summary's node ids; summary lines without a section stay."""
    summary = scan.summary
    taken = [False] * len(summary)
    by_title: dict[str, list[int]] = {}
    for k, (node, _) in enumerate(summary):
        for key in {node, _summary_tail(node)}:
            by_title.setdefault(key, []).append(k)
    out: list[_Parsed] = []
    for found in scan.found:
        if not found.pytest:
            out.append(found)
            continue
        title = _section_title(found.test)
        matches = [k for k in by_title.get(title, []) if not taken[k]]
        if len(matches) > 1 and found.frames:
            paths = [f.path for f in found.frames]
            best = [
                k for k in matches if any(p.endswith(summary[k][0].split("::")[0]) for p in paths)
            ]
            matches = best or matches
        if matches:
            taken[matches[0]] = True
            node, summary_message = summary[matches[0]]
            message = found.message or summary_message
        else:
            head, bracket, params = title.partition("[")
            name = head.replace(".", "::") + bracket + params
            node = f"{found.frames[0].path}::{name}" if found.frames else title
            message = found.message
        file = node.split("::", 1)[0]
        out.append(found._replace(test=node, message=message, file=file, pytest=False))
    last = max((f.end for f in out), default=0)
    for k, (node, message) in enumerate(summary):
        if not taken[k]:
            file = node.split("::")[0]
            out.append(_Parsed(last, last, node, message or "FAILED", (), file=file))
    return out


def _finish(parsed: list[_Parsed], lines: list[str], passed: list[str]) -> TestRun:
    """Drop what another failure says better, build the failures, list passed ids once."""
    with_frames = {p.test for p in parsed if p.frames}
    names = {p.test for p in parsed}
    failures: list[Failure] = []
    seen: set[tuple[str, str, tuple[Frame, ...]]] = set()
    for p in parsed:
        if not p.frames and (
            p.test in with_frames or any(n.startswith(p.test + "/") for n in names)
        ):
            continue
        key = (p.test, p.message, p.frames)
        if key in seen:
            continue
        seen.add(key)
        details = "\n".join(lines[p.start : p.end]) if p.end > p.start else p.message
        failures.append(
            Failure(
                test=p.test,
                message=_clip_message(p.message) or "failed",
                details=_clip_details(details),
                frames=p.frames,
                file=p.file,
            )
        )
    failed = {f.test for f in failures}
    return TestRun(tuple(failures), tuple(dict.fromkeys(t for t in passed if t not in failed)))


def parse_log(text: str) -> TestRun:
    """Failures and passed tests found in a plain-text log; text with none gives an empty run."""
    lines = _split(text)
    scan = _Scanner(lines).scan()
    parsed = sorted(_pytest_ids(scan), key=lambda p: p.start)
    return _finish(parsed, lines, scan.passed)


def _analyze(text: str) -> tuple[str, tuple[Frame, ...]]:
    """Message and frames of one JUnit failure's text, whichever tool wrote it."""
    lines = _split(text)
    if any(_PY_HEADER.match(s) for s in lines) or _pytest_like(lines):
        message, frames = _pytest_body(lines)
        if message or frames:
            return message, frames
    scan = _Scanner(lines).scan()
    found = [f for f in scan.found if not f.pytest]
    if found:
        best = max(found, key=lambda f: len(f.frames))
        return best.message, best.frames
    entries: list[tuple[Frame, str]] = []
    j = 0
    while j < len(lines):
        j, more = _go_logs(lines, j)
        entries += more
    if entries:
        return entries[-1][1], tuple(f for f, _ in entries)
    for k, line in enumerate(lines):
        if m := _GTEST_XML_LOC.match(line.strip()):
            _, message = _gtest_message(lines, k + 1)
            return message, (Frame(m["path"], int(m["line"])),)
    return _first_line(text), ()


# --- JUnit XML ----------------------------------------------------------------------------

_PROLOG_SKIP = re.compile(r"\s+|<\?.*?\?>|<!--.*?-->", re.S)


def _check_prolog(data: bytes) -> None:
    """Refuse a DOCTYPE (and with it any ENTITY declaration) before the root element."""
    head = data[:65536]
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        text = head.decode("utf-16", errors="replace")
    else:
        text = head.decode("latin-1")
    text = text.lstrip("\ufeff\xef\xbb\xbf")
    pos = 0
    while m := _PROLOG_SKIP.match(text, pos):
        if m.end() == pos:
            break
        pos = m.end()
    if text[pos : pos + 9].upper() == "<!DOCTYPE" or text[pos : pos + 8].upper() == "<!ENTITY":
        raise ReportError("JUnit XML with a DOCTYPE or ENTITY declaration is refused")


def _tag(el: ET.Element) -> str:
    return el.tag.rsplit("}", 1)[-1]


def _int(value: str | None) -> int:
    try:
        return int(value or "")
    except ValueError:
        return 0


def parse_junit(data: bytes) -> TestRun:
    """Failures (`<failure>` and `<error>`) and passed tests of a JUnit XML report."""
    _check_prolog(data)
    try:
        root = ET.fromstring(data)
    except ET.ParseError as exc:
        raise ReportError(f"malformed JUnit XML: {exc}") from exc
    if _tag(root) not in ("testsuites", "testsuite"):
        raise ReportError(f"not a JUnit report: the root element is <{_tag(root)}>")
    failures: list[Failure] = []
    passed: list[str] = []

    def visit(el: ET.Element, suite: str, suite_file: str) -> None:
        for child in el:
            tag = _tag(child)
            if tag in ("testsuite", "testsuites"):
                visit(child, child.get("name") or suite, child.get("file") or suite_file)
            elif tag == "testcase":
                case(child, suite, suite_file)

    def case(el: ET.Element, suite: str, suite_file: str) -> None:
        name = el.get("name") or ""
        cls = el.get("classname") or suite
        test = f"{cls}::{name}" if cls and name else cls or name
        file = el.get("file") or suite_file
        line = _int(el.get("line"))
        problems = [c for c in el if _tag(c) in ("failure", "error")]
        skipped = any(_tag(c) == "skipped" for c in el) or el.get("status") == "notrun"
        skipped = skipped or el.get("result") in ("skipped", "suppressed")
        if not problems:
            if not skipped:
                passed.append(test)
            return
        for problem in problems:
            text = problem.text or ""
            attr = problem.get("message") or ""
            kind = problem.get("type") or ""
            message, frames = _analyze(text) if text.strip() else ("", ())
            if not message or message == "FAIL":
                message = _first_line(attr)
                if kind and message and kind.rsplit(".", 1)[-1] not in message.split(":", 1)[0]:
                    message = f"{kind}: {message}"
                message = message or kind or _tag(problem)
            failures.append(
                Failure(
                    test=test,
                    message=_clip_message(message),
                    details=_clip_details(text if text.strip() else attr),
                    frames=frames,
                    file=file,
                    line=line,
                )
            )

    if _tag(root) == "testsuite":
        visit(root, root.get("name") or "", root.get("file") or "")
    else:
        visit(root, "", "")
    failed = {f.test for f in failures}
    return TestRun(tuple(failures), tuple(dict.fromkeys(t for t in passed if t not in failed)))


# --- placing frames in the workspace ------------------------------------------------------


class FrameResolver:
    """Maps frame paths onto files of the workspace roots.

    A path is a workspace file when it lies under a root, exists, is not matched by the
    exclude globs (gitignore syntax, relative to its root) and is not under site-packages,
    `.venv` or `node_modules`. Relative paths are tried against the report's directory, then
    each root, then as the tail of a workspace path (Java packages, Go's bare file names); a
    tail that more than one file ends with resolves to nothing.
    """

    def __init__(self, roots: Sequence[Path], exclude: Sequence[str] = ()) -> None:
        self.roots = tuple(Path(os.path.abspath(r)) for r in roots)
        self._real = tuple(Path(os.path.realpath(r)) for r in self.roots)
        self._exclude = pathspec.GitIgnoreSpec.from_lines(list(exclude))
        self._by_name: dict[str, list[Path]] | None = None

    def invalidate(self) -> None:
        """Forget the file-name index (built again on the next lookup that needs it)."""
        self._by_name = None

    def _relative(self, path: Path) -> str | None:
        for roots in (self.roots, self._real):
            for root in roots:
                if path == root:
                    return ""
                if path.is_relative_to(root):
                    return path.relative_to(root).as_posix()
        return None

    def _accept(self, path: Path) -> Path | None:
        """`path`, normalized, when it is a workspace file."""
        path = Path(os.path.normpath(os.path.abspath(path)))
        rel = self._relative(path)
        if not rel:
            return None
        if FOREIGN_DIRS.intersection(rel.split("/")) or self._exclude.match_file(rel):
            return None
        return path if path.is_file() else None

    def _names(self) -> dict[str, list[Path]]:
        if self._by_name is None:
            index: dict[str, list[Path]] = {}
            for root in self.roots:
                for here, dirs, files in os.walk(root, onerror=lambda _: None):
                    dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS)
                    for name in files:
                        index.setdefault(name, []).append(Path(here, name))
            self._by_name = index
        return self._by_name

    def _by_tail(self, tail: str, base: Path | None) -> Path | None:
        parts = [p for p in tail.replace("\\", "/").split("/") if p and p not in (".", "..")]
        if not parts:
            return None
        suffix = "/" + "/".join(parts)
        found = [
            p
            for p in self._names().get(parts[-1], [])
            if p.as_posix().endswith(suffix) and self._accept(p) is not None
        ]
        if len(found) > 1 and base is not None:
            near = [p for p in found if p.is_relative_to(os.path.abspath(base))]
            found = near or found
        return found[0] if len(found) == 1 else None

    def resolve(self, frame: Frame, base: Path | None = None) -> Path | None:
        """The workspace file `frame` is in, or None."""
        raw = frame.path.strip().removeprefix("file://")
        if not raw or raw.startswith("<"):
            return None
        path = Path(raw)
        if path.is_absolute():
            return self._accept(path)
        for start in ([base] if base is not None else []) + list(self.roots):
            if (hit := self._accept(start / path)) is not None:
                return hit
        return self._by_tail(raw, base)

    def deepest(self, failure: Failure, base: Path | None = None) -> tuple[Path, int] | None:
        """The innermost frame in the workspace (or else the report's test file and line)."""
        for frame in reversed(failure.frames):
            path = self.resolve(frame, base)
            if path is not None:
                return path, max(frame.line, 1)
        if failure.file:
            path = self.resolve(Frame(failure.file, failure.line), base)
            if path is not None:
                return path, max(failure.line, 1)
        return None


__all__ = [
    "Failure",
    "Frame",
    "FrameResolver",
    "ReportError",
    "TestRun",
    "java_frame",
    "parse_junit",
    "parse_log",
]
