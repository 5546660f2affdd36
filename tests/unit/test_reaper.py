"""The watchdog that stops engine processes when the process that started them dies."""

from __future__ import annotations

import io
import subprocess
import sys
import time

import psutil
import pytest

PARENT = """
import subprocess, sys, time
from engine import reaper
child = subprocess.Popen(["sleep", "600"])
bystander = subprocess.Popen(["sleep", "600"])
reaper.guard([p for p in reaper.descendants() if p.pid == child.pid])
print(child.pid, bystander.pid, flush=True)
time.sleep(600)
"""


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


@pytest.mark.parametrize("end", ["kill", "terminate"])
def test_a_guarded_process_is_stopped_when_its_parent_dies(end: str) -> None:
    parent = subprocess.Popen([sys.executable, "-c", PARENT], stdout=subprocess.PIPE, text=True)
    assert parent.stdout is not None
    child, bystander = map(int, parent.stdout.readline().split())
    try:
        getattr(parent, end)()  # SIGKILL: no code of the parent's runs any more
        parent.wait()
        deadline = time.monotonic() + 10
        while not _gone(child) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _gone(child)
        assert not _gone(bystander), "only what was guarded is stopped"
    finally:
        for pid in (child, bystander):
            if not _gone(pid):
                psutil.Process(pid).kill()


def test_a_reused_process_id_is_left_alone() -> None:
    """A guarded process that ended, whose id another process then took, is not that one."""
    from engine import reaper

    other = subprocess.Popen(["sleep", "600"])
    try:
        process = psutil.Process(other.pid)
        pipe = io.BytesIO(f"{other.pid} {process.create_time() - 5.0!r}\n".encode())
        reaper._watch(pipe)
        assert not _gone(other.pid)
    finally:
        other.kill()
        other.wait()
