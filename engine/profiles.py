"""Named profiles: a model, its FIM template and engine settings, picked by one word."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

import msgspec

from engine.machine import EngineConfigError, cpu_features, plan_engine

Progress = Callable[[str, float], None]


class EngineOptions(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """vLLM engine arguments that a profile or the user may set; None lets vLLM choose."""

    max_model_len: int | None = None
    gpu_memory_utilization: float | None = None
    tensor_parallel_size: int | None = None
    dtype: str | None = None
    """None or "auto": resolved for the machine (`engine.machine`)."""
    attention_backend: str | None = None
    """A vLLM attention backend by name; None: resolved for the machine and model."""
    kv_cache_dtype: str | None = None
    enforce_eager: bool | None = None
    cpu_kv_cache_gib: float | None = None
    pipeline_parallel_size: int | None = None
    enable_expert_parallel: bool | None = None
    distributed_executor_backend: str | None = None
    quantization: str | None = None
    speculative_ngram_tokens: int | None = None
    """n-gram prompt lookup: tokens proposed per step (speculative decoding); None is off."""
    lora_adapters: dict[str, str] | None = None
    """Adapter name -> local directory; enables LoRA."""
    max_lora_rank: int | None = None


def gpu_count() -> int:
    """NVIDIA GPUs this process may use, without importing torch (CUDA_VISIBLE_DEVICES
    narrows them)."""
    gpus = Path("/proc/driver/nvidia/gpus")
    count = len(list(gpus.iterdir())) if gpus.is_dir() else 0
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        count = min(count, len([d for d in visible.split(",") if d.strip()]))
    return count


def check_engine_options(
    options: EngineOptions, *, gpus: int, mla: bool | None = None
) -> list[str]:
    """What cannot work on this machine, each naming the setting; [] when fine.

    `mla` says whether the model uses MLA (None: not known yet)."""
    problems: list[str] = []
    try:
        plan_engine(
            options.dtype,
            options.attention_backend,
            cpu=cpu_features() if gpus == 0 else None,
            mla=mla,
        )
    except EngineConfigError as exc:
        problems.append(str(exc))
    tp = options.tensor_parallel_size or 1
    pp = options.pipeline_parallel_size or 1
    multi_node = options.distributed_executor_backend == "ray"
    if tp * pp > 1 and not multi_node and tp * pp > gpus:
        problems.append(
            f"engine.tensorParallelSize {tp} x engine.pipelineParallelSize {pp} needs "
            f"{tp * pp} GPUs and this machine has {gpus}; lower them, use "
            "engine.distributedExecutorBackend 'ray' across nodes, or engine.backend 'remote'"
        )
    if options.enable_expert_parallel and tp * pp == 1:
        problems.append(
            "engine.enableExpertParallel needs more than one GPU (engine.tensorParallelSize > 1)"
        )
    if gpus == 0 and options.quantization == "fp8":
        problems.append("engine.quantization 'fp8' needs a GPU; leave it unset on CPU")
    for name, path in (options.lora_adapters or {}).items():
        if not Path(path).expanduser().is_dir():
            problems.append(f"engine.loraAdapters.{name}: no adapter directory at {path}")
    return problems


class Profile(msgspec.Struct, frozen=True, kw_only=True):
    """One named profile."""

    name: str
    description: str
    completion_model: str
    """A Hugging Face model id, or `builtin:<name>` for models built by project code."""
    edit_model: str
    template: str
    """FIM template family (see `engine.templates`)."""
    chat: str = "plain"
    """The edit model's instruction format (see `engine.chat`)."""
    where: str
    engine: EngineOptions = EngineOptions()
    prompt_tokens: int = 1536
    stop: tuple[str, ...] = ()


PROFILES: dict[str, Profile] = {
    p.name: p
    for p in (
        Profile(
            name="deepseek-v2-lite",
            description="DeepSeek-Coder-V2-Lite-Base (MoE, 16B total, 2.4B active) for completion",
            completion_model="deepseek-ai/DeepSeek-Coder-V2-Lite-Base",
            edit_model="deepseek-ai/DeepSeek-Coder-V2-Lite-Instruct",
            template="deepseek",
            chat="deepseek",
            where="one CUDA GPU (default when one is present)",
            engine=EngineOptions(max_model_len=8192, gpu_memory_utilization=0.85),
            prompt_tokens=4096,
        ),
        Profile(
            name="deepseek-v2",
            description="DeepSeek-Coder-V2-Instruct 236B for fixes, Lite-Base for completion",
            completion_model="deepseek-ai/DeepSeek-Coder-V2-Lite-Base",
            edit_model="deepseek-ai/DeepSeek-Coder-V2-Instruct",
            template="deepseek",
            chat="deepseek",
            where="a GPU cluster, tensor parallel over 8 GPUs (remote or embedded)",
            engine=EngineOptions(max_model_len=8192, tensor_parallel_size=8),
            prompt_tokens=4096,
        ),
        Profile(
            name="cpu-small",
            description="Gemma 3 270M from PyPI (GGUF converted to safetensors), prefix-only",
            completion_model="builtin:cpu-small",
            edit_model="builtin:cpu-small",
            template="prefix-only",
            where="CPU (default without a GPU)",
            engine=EngineOptions(max_model_len=2048, enforce_eager=True, cpu_kv_cache_gib=1.0),
            prompt_tokens=768,
            stop=("<eos>", "<end_of_turn>", "\n\n\n"),
        ),
        Profile(
            name="tiny-moe",
            description="DeepSeek-V2-architecture MoE with random weights, built in seconds",
            completion_model="builtin:tiny-moe",
            edit_model="builtin:tiny-moe",
            template="deepseek",
            where="tests and benchmarks of the vLLM code path on CPU",
            engine=EngineOptions(max_model_len=2048, enforce_eager=True, cpu_kv_cache_gib=1.0),
            prompt_tokens=512,
        ),
    )
}


def has_cuda_gpu() -> bool:
    """A cheap check for an NVIDIA GPU that does not import torch."""
    return Path("/proc/driver/nvidia/gpus").is_dir() or (
        shutil.which("nvidia-smi") is not None and Path("/dev/nvidia0").exists()
    )


def auto_profile() -> str:
    """The profile to use when none is given."""
    return "deepseek-v2-lite" if has_cuda_gpu() else "cpu-small"


def get_profile(name: str) -> Profile:
    """The profile called `name`, or a ValueError listing the known ones."""
    try:
        return PROFILES[name]
    except KeyError:
        known = ", ".join(PROFILES)
        raise ValueError(f"unknown profile {name!r}; known profiles: {known}") from None


def cache_root() -> Path:
    """Where built and converted models live (`CODER_LSP_CACHE_DIR` overrides)."""
    env = os.environ.get("CODER_LSP_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("coder-lsp"))


def prepare_model(model: str, progress: Progress | None = None) -> str:
    """Turn a profile's model reference into something vLLM can load: a local directory or id.

    Builtin models are built or converted once into the cache; hub ids are returned as they
    are (vLLM resolves them from the local Hugging Face cache, or downloads when allowed).
    """
    if model.startswith("builtin:"):
        name = model.removeprefix("builtin:")
        target = cache_root() / "models" / name
        if name == "tiny-moe":
            from engine.models.tiny_moe import prepare_tiny_moe

            return str(prepare_tiny_moe(target, progress))
        if name == "tiny-dense":
            from engine.models.tiny_dense import prepare_tiny_dense

            return str(prepare_tiny_dense(target, progress))
        if name == "cpu-small":
            from engine.models.cpu_small import prepare_cpu_small

            return str(prepare_cpu_small(target, progress))
        raise ValueError(f"unknown builtin model {name!r}")
    return model


def download_model(model: str, progress: Progress | None = None) -> str:
    """Fetch a hub model into the local Hugging Face cache ahead of time; return its path."""
    if model.startswith("builtin:") or Path(model).is_dir():
        return prepare_model(model, progress)
    from huggingface_hub import snapshot_download

    if progress:
        progress(f"downloading {model}", 0.0)
    path: str = snapshot_download(model)
    if progress:
        progress(f"downloaded {model}", 1.0)
    return path
