"""Run an untrusted Python program (a model's completion inside its tests) and say if it passed.

Each program runs in a fresh interpreter (``sys.executable -I``: isolated, no user site, no
``PYTHON*`` variables) in a fresh temporary directory as its working directory, in its own
process group, with stdin closed and its output discarded (the last line of stderr is kept as
the reason of a failure). A small bootstrap sets ``resource`` limits before the program
runs: address space, CPU seconds, no core files, largest file written. The wall-clock timeout
kills the whole process group. Passing means exiting with status 0.

This is a guard against accidents (an endless loop, a runaway allocation), not a security
boundary: the program runs as the current user and can read what the user can.
"""

from __future__ import annotations

import contextlib
import math
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Limits", "Outcome", "run_many", "run_program"]

PROGRAM = "program.py"

# Runs in the child before the program: limits first, then the program as __main__.
BOOTSTRAP = """\
import resource, runpy, sys
for name, value in {limits!r}:
    limit = getattr(resource, name, None)
    if limit is None:
        continue
    try:
        resource.setrlimit(limit, (value, value))
    except (ValueError, OSError):
        pass
sys.argv = [{program!r}]
runpy.run_path({program!r}, run_name="__main__")
"""


@dataclass(frozen=True, slots=True)
class Limits:
    """Resource limits of one program."""

    timeout_s: float = 10.0
    """Wall clock; the process group is killed after it."""
    memory_bytes: int = 2 << 30
    """Address space (RLIMIT_AS)."""
    file_bytes: int = 16 << 20
    """Largest file the program may write (RLIMIT_FSIZE); stderr is such a file too."""

    def rlimits(self) -> list[tuple[str, int]]:
        cpu = max(1, math.ceil(self.timeout_s)) + 1
        return [
            ("RLIMIT_AS", self.memory_bytes),
            ("RLIMIT_CPU", cpu),
            ("RLIMIT_CORE", 0),
            ("RLIMIT_FSIZE", self.file_bytes),
        ]


@dataclass(frozen=True, slots=True)
class Outcome:
    """How one program ended."""

    passed: bool
    reason: str
    """"passed", "timeout", "exit N: <last line of stderr>" or "killed by SIGNAL: ..."."""
    seconds: float


def _last_line(path: Path, tail: int = 4096) -> str:
    try:
        with path.open("rb") as file:
            file.seek(0, os.SEEK_END)
            size = file.tell()
            file.seek(max(0, size - tail))
            data = file.read().decode("utf-8", "replace")
    except OSError:
        return ""
    lines = [line.strip() for line in data.splitlines() if line.strip()]
    return lines[-1][:200] if lines else ""


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    process.kill()


def run_program(source: str, limits: Limits | None = None) -> Outcome:
    """Run `source` as a program under `limits`; passed means exit status 0 in time."""
    limits = limits or Limits()
    started = time.perf_counter()
    with (
        tempfile.TemporaryDirectory(prefix="quality-run-", ignore_cleanup_errors=True) as work,
        tempfile.TemporaryDirectory(prefix="quality-err-", ignore_cleanup_errors=True) as logs,
    ):
        Path(work, PROGRAM).write_text(source, encoding="utf-8")
        bootstrap = BOOTSTRAP.format(limits=limits.rlimits(), program=PROGRAM)
        err_path = Path(logs, "stderr")
        with err_path.open("wb") as err:
            process = subprocess.Popen(
                [sys.executable, "-I", "-c", bootstrap],
                cwd=work,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=err,
                start_new_session=True,
            )
            try:
                code = process.wait(timeout=limits.timeout_s)
            except subprocess.TimeoutExpired:
                _kill_group(process)
                process.wait()
                return Outcome(False, "timeout", time.perf_counter() - started)
        seconds = time.perf_counter() - started
        if code == 0:
            return Outcome(True, "passed", seconds)
        last = _last_line(err_path)
        if code < 0:
            try:
                name = signal.Signals(-code).name
            except ValueError:
                name = str(-code)
            return Outcome(False, f"killed by {name}: {last}".rstrip(": "), seconds)
        return Outcome(False, f"exit {code}: {last}".rstrip(": "), seconds)


def run_many(
    sources: Sequence[str], limits: Limits | None = None, workers: int = 2
) -> list[Outcome]:
    """Run each program (in a pool of `workers` threads); outcomes in the order of `sources`."""
    if not sources:
        return []
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        return list(pool.map(lambda s: run_program(s, limits), sources))
