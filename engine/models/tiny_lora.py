"""A tiny LoRA adapter for a built model (tiny-moe), in the PEFT layout vLLM loads.

The adapter changes the attention output projection (`o_proj`) of every layer with random
low-rank matrices, strong enough that greedy text differs from the base model's: requests
served with the adapter are then told from those without by their output, not only by the
request record.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

RANK = 8
ALPHA = 16
SEED = 4321
TARGET = "o_proj"


def build_tiny_lora(base_dir: Path, out_dir: Path, *, seed: int = SEED) -> Path:
    """Write an adapter for the model in `base_dir` to `out_dir` (kept when already built)."""
    import torch
    from safetensors.torch import save_file

    marker = out_dir / "adapter_model.safetensors"
    if marker.is_file() and (out_dir / "adapter_config.json").is_file():
        return out_dir
    config = json.loads((base_dir / "config.json").read_text())
    hidden = int(config["hidden_size"])
    heads = int(config["num_attention_heads"])
    v_dim = int(config.get("v_head_dim") or hidden // heads)
    gen = torch.Generator().manual_seed(seed)
    weights = {}
    for layer in range(int(config["num_hidden_layers"])):
        prefix = f"base_model.model.model.layers.{layer}.self_attn.{TARGET}"
        weights[f"{prefix}.lora_A.weight"] = torch.randn(RANK, heads * v_dim, generator=gen) * 0.5
        weights[f"{prefix}.lora_B.weight"] = torch.randn(hidden, RANK, generator=gen) * 0.5
    adapter_config = {
        "peft_type": "LORA",
        "task_type": "CAUSAL_LM",
        "base_model_name_or_path": str(base_dir),
        "r": RANK,
        "lora_alpha": ALPHA,
        "lora_dropout": 0.0,
        "target_modules": [TARGET],
        "bias": "none",
        "fan_in_fan_out": False,
        "inference_mode": True,
    }
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".tiny-lora-", dir=out_dir.parent))
    save_file(weights, str(staging / "adapter_model.safetensors"), metadata={"format": "pt"})
    (staging / "adapter_config.json").write_text(json.dumps(adapter_config, indent=1))
    try:
        os.replace(staging, out_dir)
    except OSError:  # built meanwhile by someone else
        for f in staging.iterdir():
            f.unlink()
        staging.rmdir()
    return out_dir


__all__ = ["RANK", "build_tiny_lora"]
