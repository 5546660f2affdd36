"""Shared test settings: offline models, a persistent model cache, a small CPU KV cache."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings

# No per-example deadline: on a loaded 2-core machine (an engine loading in another test)
# an example can take longer than hypothesis's 200 ms without anything being wrong.
settings.register_profile("coder-lsp", deadline=None)
settings.load_profile("coder-lsp")

ROOT = Path(__file__).resolve().parent.parent
CACHE = Path(os.environ.get("CODER_LSP_CACHE_DIR", ROOT / ".cache" / "coder-lsp"))

os.environ["CODER_LSP_CACHE_DIR"] = str(CACHE)
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")

from tests.engine.vllm_serve import VllmServer, serving  # noqa: E402  (after the environment)


@pytest.fixture(scope="session")
def vllm_server() -> Iterator[VllmServer]:
    """A real `vllm serve` of tiny-moe on 127.0.0.1, shared by the remote-engine tests."""
    with serving(cpu="nobind") as server:
        yield server
