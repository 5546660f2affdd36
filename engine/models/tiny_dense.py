"""Build `tiny-dense`: a Llama-architecture dense model with random weights and tiny-moe's
tokenizer, for what vLLM's CPU build does not do with MoE models.

With LoRA enabled, vLLM runs MoE layers through a Triton kernel that its CPU build cannot
compile (`triton.language` has no CPU backend), so LoRA is tested on this dense model, built the
same way as tiny-moe: seconds, random weights, the same tokenizer and FIM tokens.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

BUILD_VERSION = 1
SEED = 2468
CONFIG: dict[str, Any] = {
    "architectures": ["LlamaForCausalLM"],
    "model_type": "llama",
    "vocab_size": 4096,
    "hidden_size": 256,
    "intermediate_size": 512,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 4,
    "head_dim": 64,
    "hidden_act": "silu",
    "max_position_embeddings": 4096,
    "rms_norm_eps": 1e-6,
    "rope_theta": 10000.0,
    "tie_word_embeddings": False,
    "bos_token_id": 0,
    "eos_token_id": 1,
    "torch_dtype": "bfloat16",
}
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json")

Progress = Callable[[str, float], None]


def _random_state_dict() -> dict[str, Any]:
    import torch

    gen = torch.Generator().manual_seed(SEED)
    hidden, inner = CONFIG["hidden_size"], CONFIG["intermediate_size"]
    vocab = CONFIG["vocab_size"]

    def w(*shape: int) -> torch.Tensor:
        return (torch.randn(*shape, generator=gen) * 0.02).to(torch.bfloat16)

    state = {
        "model.embed_tokens.weight": w(vocab, hidden),
        "model.norm.weight": torch.ones(hidden, dtype=torch.bfloat16),
        "lm_head.weight": w(vocab, hidden),
    }
    for i in range(CONFIG["num_hidden_layers"]):
        p = f"model.layers.{i}"
        for name in ("q_proj", "k_proj", "v_proj", "o_proj"):
            state[f"{p}.self_attn.{name}.weight"] = w(hidden, hidden)
        state[f"{p}.mlp.gate_proj.weight"] = w(inner, hidden)
        state[f"{p}.mlp.up_proj.weight"] = w(inner, hidden)
        state[f"{p}.mlp.down_proj.weight"] = w(hidden, inner)
        state[f"{p}.input_layernorm.weight"] = torch.ones(hidden, dtype=torch.bfloat16)
        state[f"{p}.post_attention_layernorm.weight"] = torch.ones(hidden, dtype=torch.bfloat16)
    return state


def prepare_tiny_dense(cache_dir: Path, progress: Progress | None = None) -> Path:
    """Return the tiny-dense model directory under `cache_dir`, building it on first use
    (tiny-moe's tokenizer is built first when needed)."""
    target = cache_dir / f"v{BUILD_VERSION}"
    if (target / "config.json").is_file():
        return target
    from safetensors.torch import save_file

    from engine.models.tiny_moe import prepare_tiny_moe

    moe = prepare_tiny_moe(cache_dir.parent / "tiny-moe", progress)
    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".build-", dir=cache_dir))
    try:
        for name in TOKENIZER_FILES:
            if (moe / name).is_file():
                shutil.copy(moe / name, tmp / name)
        save_file(_random_state_dict(), str(tmp / "model.safetensors"), metadata={"format": "pt"})
        (tmp / "config.json").write_text(json.dumps(CONFIG, indent=2))
        generation = {"bos_token_id": 0, "eos_token_id": 1, "do_sample": False}
        (tmp / "generation_config.json").write_text(json.dumps(generation, indent=2))
        try:
            os.replace(tmp, target)
        except OSError:
            if not (target / "config.json").is_file():
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return target
