"""Shared test settings: offline models, a persistent model cache, a small CPU KV cache."""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CACHE = Path(os.environ.get("CODER_LSP_CACHE_DIR", ROOT / ".cache" / "coder-lsp"))

os.environ["CODER_LSP_CACHE_DIR"] = str(CACHE)
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
