"""Build `tiny-moe`: a DeepSeek-V2-architecture MoE with random weights, for tests and benchmarks.

The model has the real DeepSeek-V2 structure (MLA attention with the real latent shape,
routed + shared experts, a dense first layer) so vLLM runs its DeepSeek code path, but is small
enough to build in seconds and run on a CPU. Its byte-level BPE tokenizer is trained on the
running interpreter's standard library sources and carries DeepSeek's special and FIM tokens.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import sysconfig
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

from engine.templates import deepseek_token

log = logging.getLogger(__name__)

BUILD_VERSION = 1
"""Bump when the model or tokenizer recipe changes, so caches are rebuilt."""

BOS = deepseek_token("begin of sentence")
EOS = deepseek_token("end of sentence")
FIM_BEGIN = deepseek_token("fim begin")
FIM_HOLE = deepseek_token("fim hole")
FIM_END = deepseek_token("fim end")
SPECIAL_TOKENS = [BOS, EOS, FIM_HOLE, FIM_BEGIN, FIM_END, "<|EOT|>"]

VOCAB_SIZE = 4096
SEED = 1234

CONFIG: dict[str, Any] = {
    "architectures": ["DeepseekV2ForCausalLM"],
    "model_type": "deepseek_v2",
    "vocab_size": VOCAB_SIZE,
    "hidden_size": 256,
    "intermediate_size": 512,
    "moe_intermediate_size": 128,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "num_key_value_heads": 2,
    "n_shared_experts": 1,
    "n_routed_experts": 4,
    "num_experts_per_tok": 2,
    "routed_scaling_factor": 1.0,
    "topk_method": "greedy",
    "n_group": 1,
    "topk_group": 1,
    "moe_layer_freq": 1,
    "first_k_dense_replace": 1,
    "norm_topk_prob": False,
    "scoring_func": "softmax",
    # The CPU MLA kernel needs DeepSeek's real latent shape: 512 + 64.
    "q_lora_rank": None,
    "kv_lora_rank": 512,
    "qk_rope_head_dim": 64,
    "qk_nope_head_dim": 128,
    "v_head_dim": 128,
    "hidden_act": "silu",
    "max_position_embeddings": 4096,
    "rms_norm_eps": 1e-6,
    "rope_theta": 10000.0,
    "rope_scaling": None,
    "attention_bias": False,
    "attention_dropout": 0.0,
    "tie_word_embeddings": False,
    "initializer_range": 0.02,
    "use_cache": True,
    "bos_token_id": 0,
    "eos_token_id": 1,
    "torch_dtype": "bfloat16",
}

Progress = Callable[[str, float], None]


def _python_sources(limit_bytes: int = 6_000_000) -> Iterator[str]:
    """Yield the text of standard library modules, in a stable order, up to a size."""
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    total = 0
    for path in sorted(stdlib.glob("*.py")):
        try:
            text = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue
        total += len(text)
        yield text
        if total >= limit_bytes:
            return


def train_byte_level_bpe(
    texts: Iterable[str], special_tokens: list[str], vocab_size: int
) -> Tokenizer:
    """A byte-level BPE (as DeepSeek's) trained on `texts`, with `special_tokens` kept whole."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=special_tokens,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    return tok


def build_tokenizer(out_dir: Path) -> None:
    """Train a byte-level BPE on local Python sources and save it with DeepSeek's tokens."""
    tok = train_byte_level_bpe(_python_sources(), SPECIAL_TOKENS, VOCAB_SIZE)
    bos_id = tok.token_to_id(BOS)
    tok.post_processor = processors.TemplateProcessing(
        single=f"{BOS} $A", pair=f"{BOS} $A $B", special_tokens=[(BOS, bos_id)]
    )
    tok.save(str(out_dir / "tokenizer.json"))
    tokenizer_config = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "bos_token": BOS,
        "eos_token": EOS,
        "pad_token": EOS,
        "add_bos_token": True,
        "add_eos_token": False,
        "clean_up_tokenization_spaces": False,
        "model_max_length": CONFIG["max_position_embeddings"],
    }
    (out_dir / "tokenizer_config.json").write_text(json.dumps(tokenizer_config, indent=2))
    (out_dir / "special_tokens_map.json").write_text(
        json.dumps({"bos_token": BOS, "eos_token": EOS, "pad_token": EOS}, indent=2)
    )


def _random_state_dict() -> dict[str, Any]:
    """Weights named as in DeepSeek-V2 checkpoints, drawn from a seeded generator."""
    import torch

    c = CONFIG
    gen = torch.Generator().manual_seed(SEED)
    std = float(c["initializer_range"])

    def w(*shape: int) -> torch.Tensor:
        return (torch.randn(*shape, generator=gen) * std).to(torch.bfloat16)

    def ones(n: int) -> torch.Tensor:
        return torch.ones(n, dtype=torch.bfloat16)

    h, heads = c["hidden_size"], c["num_attention_heads"]
    qk_head = c["qk_nope_head_dim"] + c["qk_rope_head_dim"]
    sd: dict[str, Any] = {"model.embed_tokens.weight": w(c["vocab_size"], h)}
    for i in range(c["num_hidden_layers"]):
        p = f"model.layers.{i}"
        sd[f"{p}.input_layernorm.weight"] = ones(h)
        sd[f"{p}.post_attention_layernorm.weight"] = ones(h)
        a = f"{p}.self_attn"
        sd[f"{a}.q_proj.weight"] = w(heads * qk_head, h)
        sd[f"{a}.kv_a_proj_with_mqa.weight"] = w(c["kv_lora_rank"] + c["qk_rope_head_dim"], h)
        sd[f"{a}.kv_a_layernorm.weight"] = ones(c["kv_lora_rank"])
        sd[f"{a}.kv_b_proj.weight"] = w(
            heads * (c["qk_nope_head_dim"] + c["v_head_dim"]), c["kv_lora_rank"]
        )
        sd[f"{a}.o_proj.weight"] = w(h, heads * c["v_head_dim"])
        m = f"{p}.mlp"
        if i < c["first_k_dense_replace"]:
            experts = {m: c["intermediate_size"]}
        else:
            sd[f"{m}.gate.weight"] = w(c["n_routed_experts"], h)
            experts = {
                f"{m}.experts.{e}": c["moe_intermediate_size"] for e in range(c["n_routed_experts"])
            }
            experts[f"{m}.shared_experts"] = c["moe_intermediate_size"] * c["n_shared_experts"]
        for name, inter in experts.items():
            sd[f"{name}.gate_proj.weight"] = w(inter, h)
            sd[f"{name}.up_proj.weight"] = w(inter, h)
            sd[f"{name}.down_proj.weight"] = w(h, inter)
    sd["model.norm.weight"] = ones(h)
    sd["lm_head.weight"] = w(c["vocab_size"], h)
    return sd


def build(out_dir: Path, progress: Progress | None = None) -> None:
    """Write config, weights and tokenizer of tiny-moe into `out_dir` (which must exist)."""
    from safetensors.torch import save_file

    report = progress or (lambda _msg, _frac: None)
    report("training the BPE tokenizer on standard library sources", 0.1)
    build_tokenizer(out_dir)
    report("drawing random weights", 0.6)
    save_file(_random_state_dict(), str(out_dir / "model.safetensors"), metadata={"format": "pt"})
    (out_dir / "config.json").write_text(json.dumps(CONFIG, indent=2))
    generation = {"bos_token_id": 0, "eos_token_id": 1, "do_sample": False}
    (out_dir / "generation_config.json").write_text(json.dumps(generation, indent=2))
    report("tiny-moe built", 1.0)


def prepare_tiny_moe(cache_dir: Path, progress: Progress | None = None) -> Path:
    """Return the tiny-moe model directory under `cache_dir`, building it on first use."""
    target = cache_dir / f"v{BUILD_VERSION}"
    if (target / "config.json").is_file():
        return target
    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".build-", dir=cache_dir))
    try:
        build(tmp, progress)
        try:
            os.replace(tmp, target)
        except OSError:
            # Another process finished first; its result is equivalent.
            if not (target / "config.json").is_file():
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    log.info("tiny-moe ready at %s", target)
    return target
