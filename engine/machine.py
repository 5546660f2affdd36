"""What this machine's CPU can do, and the dtype and attention backend vLLM should run with.

vLLM's CPU build picks its `AMX_MLA` attention backend for every MLA model (DeepSeek-V2 and
kin) on a CPU with AMX tiles, and that backend packs weights that must be bfloat16 or float16:
float32 fails at load. So the embedded engine, `vllm serve` recipes and tests resolve both
settings here, from the CPU and the model, and refuse a pairing that cannot start before
anything loads. Nothing here imports torch or vLLM.
"""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path
from typing import Any

import msgspec

CPUINFO = Path("/proc/cpuinfo")

CPU_ATTN = "CPU_ATTN"
CPU_MLA = "CPU_MLA"
AMX_MLA = "AMX_MLA"
CPU_BACKENDS = (CPU_ATTN, CPU_MLA, AMX_MLA)
"""The attention backends of vLLM's CPU build."""
MLA_BACKENDS = (CPU_MLA, AMX_MLA)
HALF_DTYPES = ("bfloat16", "float16")


class EngineConfigError(ValueError):
    """Engine settings that cannot start on this machine; the message is one line."""


class CpuFeatures(msgspec.Struct, frozen=True, kw_only=True):
    """The CPU's name and the instruction-set flags the engine's choices depend on."""

    model: str = ""
    flags: frozenset[str] = frozenset()

    @property
    def amx(self) -> bool:
        """AMX tiles: vLLM's CPU build then prefers `AMX_MLA` (the same test as vLLM's)."""
        return "amx_tile" in self.flags

    @property
    def avx512_bf16(self) -> bool:
        return "avx512_bf16" in self.flags

    @property
    def native_bf16(self) -> bool:
        """bfloat16 arithmetic in hardware (AMX, AVX-512 BF16, or Arm's BF16)."""
        return bool({"amx_bf16", "avx512_bf16", "bf16"} & self.flags)

    def describe(self) -> str:
        """One line: the CPU and the features that matter, e.g. `AMD EPYC (AMX: no, ...)`."""
        yes = {True: "yes", False: "no"}
        name = self.model or platform.machine() or "unknown CPU"
        return f"{name} (AMX: {yes[self.amx]}, AVX-512 BF16: {yes[self.avx512_bf16]})"


def parse_cpuinfo(text: str) -> CpuFeatures:
    """The first processor's name and flags from `/proc/cpuinfo` text (x86 or Arm)."""
    model, flags = "", frozenset[str]()
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if not sep:
            continue
        key = key.strip().lower()
        if key in ("model name", "cpu model", "hardware") and not model:
            model = value.strip()
        elif key in ("flags", "features") and not flags:
            flags = frozenset(value.split())
    return CpuFeatures(model=model, flags=flags)


_features: CpuFeatures | None = None


def cpu_features() -> CpuFeatures:
    """This machine's CPU features (read once; empty where /proc/cpuinfo is missing)."""
    global _features
    if _features is None:
        try:
            _features = parse_cpuinfo(CPUINFO.read_text(errors="replace"))
        except OSError:
            _features = CpuFeatures(model=platform.processor())
    return _features


def model_config(model: str) -> dict[str, Any] | None:
    """A model's `config.json`: from its directory, or from the local Hugging Face cache for a
    hub id (never downloaded); None when it is not on this machine."""
    path = Path(model).expanduser() / "config.json"
    if not path.is_file():
        if model.startswith(("/", ".", "~")) or model.count("/") != 1:
            return None
        try:
            from huggingface_hub import try_to_load_from_cache
        except ImportError:
            return None
        cached = try_to_load_from_cache(model, "config.json")
        if not isinstance(cached, str):
            return None
        path = Path(cached)
    try:
        loaded = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return loaded if isinstance(loaded, dict) else None


def uses_mla(config: dict[str, Any]) -> bool:
    """Whether vLLM runs this model with multi-head latent attention (as vLLM decides: a
    latent KV rank, causal attention, and `VLLM_MLA_DISABLE` unset)."""
    if os.environ.get("VLLM_MLA_DISABLE", "0") not in ("", "0"):
        return False
    text = config.get("text_config")
    text = text if isinstance(text, dict) else config
    return text.get("kv_lora_rank") is not None and text.get("is_causal", True) is not False


def builtin_config(name: str) -> dict[str, Any] | None:
    """The config of a model built by project code, known before it is built."""
    if name == "tiny-moe":
        from engine.models.tiny_moe import CONFIG as MOE

        return MOE
    if name == "tiny-dense":
        from engine.models.tiny_dense import CONFIG as DENSE

        return DENSE
    if name == "cpu-small":
        return {"model_type": "gemma3_text"}
    return None


def model_uses_mla(model: str) -> bool | None:
    """Whether `model` (a directory, hub id or `builtin:` name) uses MLA; None when unknown."""
    if model.startswith("builtin:"):
        config = builtin_config(model.removeprefix("builtin:"))
    else:
        config = model_config(model)
    return None if config is None else uses_mla(config)


class EnginePlan(msgspec.Struct, frozen=True, kw_only=True):
    """The dtype and attention backend an engine runs with, and why."""

    dtype: str | None
    """What vLLM is given; None leaves it to vLLM (GPUs)."""
    attention_backend: str | None
    """What vLLM is given; None leaves it to vLLM (GPUs)."""
    reason: str = ""

    def serve_flags(self) -> list[str]:
        """The same choice as `vllm serve` arguments."""
        flags: list[str] = []
        if self.dtype:
            flags += ["--dtype", self.dtype]
        if self.attention_backend:
            flags += ["--attention-backend", self.attention_backend]
        return flags


def plan_cpu_engine(
    dtype: str | None,
    attention_backend: str | None,
    *,
    cpu: CpuFeatures,
    mla: bool | None,
) -> EnginePlan:
    """Resolve dtype and attention backend for vLLM's CPU build.

    `dtype` None or "auto" is bfloat16 where the CPU computes it natively, else float32. With
    no backend asked for, an MLA model gets `AMX_MLA` on an AMX CPU in a half dtype and the
    reference `CPU_MLA` otherwise (never AMX with float32), other models `CPU_ATTN`. `mla`
    None (the model's config is not at hand) checks only what holds for every model.
    Raises EngineConfigError, one line naming the settings, for a pairing that cannot start.
    """
    why: list[str] = []
    backend: str | None
    if dtype in (None, "auto"):
        if cpu.native_bf16:
            dtype = "bfloat16"
            feature = "AMX" if cpu.amx else "AVX-512 BF16"
            why.append(f"bfloat16: the CPU computes it natively ({feature})")
        else:
            dtype = "float32"
            why.append("float32: the CPU has no native bfloat16")
    else:
        why.append(f"{dtype}: engine.dtype")

    if attention_backend is not None:
        backend = attention_backend.upper()
        if backend not in CPU_BACKENDS:
            raise EngineConfigError(
                f"engine.attentionBackend {attention_backend!r} does not run on a CPU; "
                f"vLLM's CPU build has {', '.join(CPU_BACKENDS)}, or leave it unset"
            )
        if backend == AMX_MLA and dtype not in HALF_DTYPES:
            raise EngineConfigError(
                f"engine.attentionBackend 'AMX_MLA' packs bfloat16 or float16 weights and "
                f"engine.dtype is {dtype!r}: set engine.dtype to 'bfloat16' or 'auto', or "
                "engine.attentionBackend to 'CPU_MLA'"
            )
        if backend == AMX_MLA and not cpu.amx:
            raise EngineConfigError(
                f"engine.attentionBackend 'AMX_MLA' needs a CPU with AMX tiles and this one "
                f"has none ({cpu.model or 'unknown CPU'}): use 'CPU_MLA' or leave it unset"
            )
        if mla is True and backend == CPU_ATTN:
            raise EngineConfigError(
                "engine.attentionBackend 'CPU_ATTN' is for models without MLA and this model "
                "uses MLA: use 'CPU_MLA' or 'AMX_MLA', or leave it unset"
            )
        if mla is False and backend in MLA_BACKENDS:
            raise EngineConfigError(
                f"engine.attentionBackend {backend!r} is for MLA models (DeepSeek-V2 and kin) "
                "and this model has none: use 'CPU_ATTN' or leave it unset"
            )
        why.append(f"{backend}: engine.attentionBackend")
    elif mla is None:
        # Unknown model: CPU_MLA is right for an MLA model and ignored by vLLM for others;
        # only the AMX + float32 pairing must be avoided.
        backend = CPU_MLA if cpu.amx and dtype not in HALF_DTYPES else None
        if backend:
            why.append(f"{backend}: AMX needs a half dtype for MLA models")
    elif mla:
        if cpu.amx and dtype in HALF_DTYPES:
            backend = AMX_MLA
            why.append(f"{AMX_MLA}: an MLA model on a CPU with AMX")
        else:
            backend = CPU_MLA
            reason = "AMX packs only half-precision weights" if cpu.amx else "no AMX"
            why.append(f"{CPU_MLA}: an MLA model, {reason}")
    else:
        backend = CPU_ATTN
        why.append(f"{CPU_ATTN}: the model has no MLA")
    return EnginePlan(dtype=dtype, attention_backend=backend, reason="; ".join(why))


def plan_engine(
    dtype: str | None,
    attention_backend: str | None,
    *,
    cpu: CpuFeatures | None,
    mla: bool | None,
) -> EnginePlan:
    """The plan for a CPU (`cpu` given) or a GPU (`cpu` None: the settings as they are)."""
    if cpu is not None:
        return plan_cpu_engine(dtype, attention_backend, cpu=cpu, mla=mla)
    if attention_backend is not None and attention_backend.upper() in CPU_BACKENDS:
        raise EngineConfigError(
            f"engine.attentionBackend {attention_backend!r} is a CPU backend and this engine "
            "runs on GPUs: leave it unset"
        )
    return EnginePlan(
        dtype=dtype, attention_backend=attention_backend, reason="chosen by vLLM on the GPU"
    )
