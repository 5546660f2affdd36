"""An event-loop lag probe for benchmarks: how late a short timer fires while the server works.

Off unless `CODER_LSP_LOOP_PROBE_MS` names the timer's interval; `coderLsp/engineStats` then
reports the lateness seen since it was last read (`loopLagMs`) and starts counting afresh.
"""

from __future__ import annotations

import asyncio
import contextlib
import os

ENV = "CODER_LSP_LOOP_PROBE_MS"
MAX_SAMPLES = 200_000


class LoopProbe:
    """A timer re-armed every `interval_ms`; each firing's lateness is a sample."""

    def __init__(self, interval_ms: float) -> None:
        self.interval_s = interval_ms / 1000
        self.samples: list[float] = []
        self._task: asyncio.Task[None] | None = None

    @classmethod
    def from_env(cls) -> LoopProbe | None:
        with contextlib.suppress(ValueError):
            interval = float(os.environ.get(ENV, "") or 0)
            if interval > 0:
                return cls(interval)
        return None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            due = loop.time() + self.interval_s
            await asyncio.sleep(self.interval_s)
            if len(self.samples) < MAX_SAMPLES:
                self.samples.append(max(0.0, loop.time() - due) * 1000)

    def read(self) -> dict[str, float]:
        """Sample count, p50, p99 and max lateness (ms) since the last read; then reset."""
        samples, self.samples = sorted(self.samples), []
        if not samples:
            return {"samples": 0, "p50": 0.0, "p99": 0.0, "max": 0.0}

        def at(q: float) -> float:
            return round(samples[min(len(samples) - 1, int(q * (len(samples) - 1)))], 3)

        return {"samples": len(samples), "p50": at(0.5), "p99": at(0.99), "max": at(1.0)}
