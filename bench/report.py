"""What benchmarks report: the machine they ran on, and their section of the README."""

from __future__ import annotations

import os
import platform
import statistics
import time
from pathlib import Path


def pace_ms() -> float:
    """How fast this machine runs Python right now: the median of 5 runs of a fixed workload
    (hashing and sorting 200,000 integers). A virtual machine's speed drifts by tens of
    percent over minutes; runs are comparable by this figure."""
    times = []
    for _ in range(5):
        started = time.perf_counter()
        sorted(hash((i * 7919) % 100_003) for i in range(200_000))
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def describe() -> str:
    """CPU model with the features the engine's dtype depends on (AMX, AVX-512 BF16) and CPU
    count, Python, OS, the load average when the run started and the machine's pace then."""
    from engine.machine import cpu_features

    loads = os.getloadavg()
    busy = " (other jobs shared the machine)" if loads[0] >= 0.5 else ""
    return (
        f"{os.cpu_count()} CPUs ({cpu_features().describe()}), Python "
        f"{platform.python_version()}, {platform.system()}; load average at the start "
        f"{', '.join(f'{x:.1f}' for x in loads)}{busy}; pace {pace_ms():.0f} ms "
        "(`bench.report.pace_ms`: a fixed Python workload, lower is faster)"
    )


def replace_section(readme: Path, title: str, body: str) -> None:
    """Put `body` (which starts with the `title` heading) in place of that section of `readme`,
    or append it; other sections are left as they are."""
    text = readme.read_text(encoding="utf-8") if readme.exists() else "# Benchmarks\n"
    start = text.find(title)
    if start < 0:
        text = text.rstrip("\n") + "\n\n" + body
    else:
        end = text.find("\n## ", start + len(title))
        text = text[:start] + body + (text[end + 1 :] if end >= 0 else "")
    readme.write_text(text, encoding="utf-8")
