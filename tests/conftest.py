"""Shared test settings: offline models, a persistent model cache, a small CPU KV cache."""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from _pytest.terminal import TerminalReporter
from hypothesis import settings

# No per-example deadline: on a loaded 2-core machine (an engine loading in another test)
# an example can take longer than hypothesis's 200 ms without anything being wrong.
settings.register_profile("coder-lsp", deadline=None)
settings.load_profile("coder-lsp")

ROOT = Path(__file__).resolve().parent.parent
CACHE = Path(os.environ.get("CODER_LSP_CACHE_DIR", ROOT / ".cache" / "coder-lsp"))

os.environ["CODER_LSP_CACHE_DIR"] = str(CACHE)
# The tests' own user configuration (no trusted workspaces, no user settings): a developer's
# ~/.config/coder-lsp must not change what the tests see.
os.environ["CODER_LSP_CONFIG_DIR"] = tempfile.mkdtemp(prefix="coder-lsp-config-")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")

from engine.machine import cpu_features, model_uses_mla, plan_engine  # noqa: E402
from tests.engine.vllm_serve import VllmServer, serving  # noqa: E402  (after the environment)
from tests.engine_trace import read_starts, summary_lines, trace_file  # noqa: E402


@pytest.fixture(scope="session")
def vllm_server() -> Iterator[VllmServer]:
    """A real `vllm serve` of tiny-moe on 127.0.0.1, shared by the remote-engine tests."""
    with serving(cpu="nobind") as server:
        yield server


# --- which dtype and attention backend each engine test ran on --------------------------

_TRACE = trace_file()
_WINDOWS: dict[str, tuple[float, float]] = {}


def pytest_report_header(config: pytest.Config) -> list[str]:
    cpu = cpu_features()
    plan = plan_engine(None, None, cpu=cpu, mla=model_uses_mla("builtin:tiny-moe"))
    return [
        f"cpu: {cpu.describe()}",
        f"tiny-moe by default: dtype {plan.dtype}, attention {plan.attention_backend}",
    ]


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    started = time.time()
    yield
    _WINDOWS[item.nodeid] = (started, time.time())


def pytest_terminal_summary(terminalreporter: TerminalReporter) -> None:
    lines = summary_lines(read_starts(_TRACE), _WINDOWS)
    if lines:
        terminalreporter.section(f"engines started: {len(lines)} (dtype, attention backend)")
        terminalreporter.write_line(f"cpu: {cpu_features().describe()}")
        for line in lines:
            terminalreporter.write_line(line)
