"""The machine a benchmark ran on, for the results it writes."""

from __future__ import annotations

import os
import platform
from pathlib import Path


def describe() -> str:
    """CPU model and count, Python, OS, and the load average when the run started."""
    model = platform.processor() or platform.machine() or "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    loads = os.getloadavg()
    busy = " (other jobs shared the machine)" if loads[0] >= 0.5 else ""
    return (
        f"{os.cpu_count()} CPUs ({model}), Python {platform.python_version()}, "
        f"{platform.system()}; load average at the start "
        f"{', '.join(f'{x:.1f}' for x in loads)}{busy}"
    )
