"""Which dtype and attention backend each engine test ran on, for the test log.

Every embedded engine appends a line to the file `CODER_LSP_ENGINE_TRACE` names when it is
ready (`engine.vllm_engine`); the `vllm serve` harness records its servers the same way. The
conftest notes when each test ran and, at the end of the session, lists every engine start
under the test it belongs to.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path

import msgspec

from engine.vllm_engine import TRACE_ENV


class EngineStart(msgspec.Struct, frozen=True):
    model: str
    dtype: str | None
    attentionBackend: str | None
    loadSeconds: float
    pid: int
    time: float


def trace_file() -> Path:
    """The session's trace file, created (and named in the environment) on first use."""
    current = os.environ.get(TRACE_ENV)
    if current:
        return Path(current)
    handle, name = tempfile.mkstemp(prefix="coder-lsp-engines-", suffix=".jsonl")
    os.close(handle)
    os.environ[TRACE_ENV] = name
    return Path(name)


def record_engine_start(model: str, dtype: str | None, backend: str | None, seconds: float) -> None:
    """Record an engine started by test code (a `vllm serve` process)."""
    record = EngineStart(model, dtype, backend, round(seconds, 2), os.getpid(), time.time())
    with trace_file().open("ab") as out:
        out.write(msgspec.json.encode(record) + b"\n")


def read_starts(path: Path) -> list[EngineStart]:
    if not path.is_file():
        return []
    decoder = msgspec.json.Decoder(EngineStart)
    starts = []
    for line in path.read_bytes().splitlines():
        try:
            starts.append(decoder.decode(line))
        except msgspec.DecodeError:
            continue  # a line cut short by a killed server
    return starts


def per_test(
    starts: Iterable[EngineStart], windows: dict[str, tuple[float, float]]
) -> list[tuple[str, EngineStart]]:
    """Each start with the test that was running when it became ready ("" when none)."""
    named = []
    for start in sorted(starts, key=lambda s: s.time):
        owner = next((t for t, (a, b) in windows.items() if a <= start.time <= b), "")
        named.append((owner, start))
    return named


def summary_lines(starts: list[EngineStart], windows: dict[str, tuple[float, float]]) -> list[str]:
    lines = []
    for test, start in per_test(starts, windows):
        model = start.model
        if "/models/" in model:  # a built model's cache directory: models/<name>/<build>
            model = model.rsplit("/models/", 1)[1]
        lines.append(
            f"{test or '(between tests)'}: {model} dtype={start.dtype or 'auto'} "
            f"attention={start.attentionBackend or 'vLLM default'} "
            f"(loaded in {start.loadSeconds:.1f} s)"
        )
    return lines
