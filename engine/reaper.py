"""Engine processes never outlive the process that started them.

vLLM runs its engine core and workers as child processes that keep running when their parent
dies without shutting them down (SIGKILL, a crash, the kernel's OOM killer), each holding
gigabytes. `guard(processes)` hands them to a watchdog, one small process per parent, started
on first use in a session of its own (a signal to the parent's process group does not reach
it). The watchdog reads its parent's pipe; at end of file (the parent is gone, however it
ended) it stops the processes it was given that still run: SIGTERM, then SIGKILL after a grace
period. A process whose id was reused since is recognized by its start time and left alone.

This file runs as the watchdog's script: standard library and psutil only.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
import threading
from collections.abc import Iterable
from typing import IO, Any

GRACE_S = 5.0
"""How long the processes get to exit after SIGTERM before SIGKILL."""

_lock = threading.Lock()
_watchdog: subprocess.Popen[bytes] | None = None


def guard(processes: Iterable[Any]) -> None:
    """Have the watchdog stop `processes` (psutil.Process objects) when this process ends."""
    global _watchdog
    lines = "".join(f"{p.pid} {p.create_time()!r}\n" for p in processes)
    if not lines:
        return
    with _lock:
        if _watchdog is None or _watchdog.poll() is not None:
            _watchdog = subprocess.Popen(
                [sys.executable, "-I", __file__],
                stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
        assert _watchdog.stdin is not None
        try:
            _watchdog.stdin.write(lines.encode())
            _watchdog.stdin.flush()
        except OSError:  # it was killed: the next call starts another
            _watchdog = None


def descendants() -> list[Any]:
    """This process's children and theirs (psutil.Process objects)."""
    import psutil

    return list(psutil.Process().children(recursive=True))


def _watch(pipe: IO[bytes]) -> None:
    import psutil

    guarded: list[tuple[int, float]] = []
    for line in pipe:  # until the parent is gone
        number, _, time = line.decode().partition(" ")
        guarded.append((int(number), float(time)))
    alive: list[psutil.Process] = []
    for pid, started in guarded:
        try:
            process = psutil.Process(pid)
            if abs(process.create_time() - started) < 0.01:
                process.terminate()
                alive.append(process)
        except psutil.Error:
            pass  # already gone
    _, left = psutil.wait_procs(alive, timeout=GRACE_S)
    for process in left:
        with contextlib.suppress(psutil.Error):
            process.kill()


if __name__ == "__main__":
    _watch(sys.stdin.buffer)
