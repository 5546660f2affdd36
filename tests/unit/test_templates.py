"""FIM templates: exact prompts, model-name lookup, marker checks against a real tokenizer."""

from __future__ import annotations

import inspect
import logging
import textwrap

import pytest

from engine.models.tiny_moe import train_byte_level_bpe
from engine.templates import (
    CODELLAMA,
    CODESTRAL,
    DEEPSEEK,
    PREFIX_ONLY,
    QWEN,
    STARCODER,
    TEMPLATES,
    FimTemplate,
    check_markers,
    template_for,
)
from engine.tokenizer import HFTokenizer

# DeepSeek's markers: full-width vertical bar U+FF5C, lower one-eighth block U+2581 for spaces.
DS_BEGIN = "<\uff5cfim\u2581begin\uff5c>"
DS_HOLE = "<\uff5cfim\u2581hole\uff5c>"
DS_END = "<\uff5cfim\u2581end\uff5c>"
DS_EOS = "<\uff5cend\u2581of\u2581sentence\uff5c>"

PRE = "def f(x):\n    "
SUF = "\n    return y\n"


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        pytest.param(
            DEEPSEEK,
            f"{DS_BEGIN}def f(x):\n    {DS_HOLE}\n    return y\n{DS_END}",
            id="deepseek",
        ),
        pytest.param(
            STARCODER,
            "<fim_prefix>def f(x):\n    <fim_suffix>\n    return y\n<fim_middle>",
            id="starcoder",
        ),
        pytest.param(
            CODELLAMA,
            "<PRE> def f(x):\n     <SUF>\n    return y\n <MID>",
            id="codellama",
        ),
        pytest.param(
            QWEN,
            "<|fim_prefix|>def f(x):\n    <|fim_suffix|>\n    return y\n<|fim_middle|>",
            id="qwen",
        ),
        pytest.param(
            CODESTRAL,
            "[SUFFIX]\n    return y\n[PREFIX]def f(x):\n    ",
            id="codestral",
        ),
        pytest.param(PREFIX_ONLY, "def f(x):\n    ", id="prefix-only"),
    ],
)
def test_render_exact(template: FimTemplate, expected: str) -> None:
    assert template.render(PRE, SUF) == expected


def test_deepseek_marker_code_points() -> None:
    assert [hex(ord(c)) for c in DEEPSEEK.prefix_marker[1:4]] == ["0xff5c", "0x66", "0x69"]
    assert "\u2581" in DEEPSEEK.prefix_marker
    assert DEEPSEEK.markers() == [DS_BEGIN, DS_HOLE, DS_END]
    assert "|" not in "".join(DEEPSEEK.markers())


@pytest.mark.parametrize(
    ("template", "markers", "stops"),
    [
        pytest.param(DEEPSEEK, [DS_BEGIN, DS_HOLE, DS_END], [DS_EOS], id="deepseek"),
        pytest.param(
            STARCODER,
            ["<fim_prefix>", "<fim_suffix>", "<fim_middle>"],
            ["<|endoftext|>", "<file_sep>"],
            id="starcoder",
        ),
        pytest.param(CODELLAMA, ["<PRE>", "<SUF>", "<MID>"], ["<EOT>"], id="codellama"),
        pytest.param(
            QWEN,
            ["<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>"],
            ["<|endoftext|>", "<|fim_pad|>", "<|file_sep|>", "<|repo_name|>", "<|im_start|>"],
            id="qwen",
        ),
        pytest.param(CODESTRAL, ["[PREFIX]", "[SUFFIX]"], ["</s>"], id="codestral"),
        pytest.param(PREFIX_ONLY, [], [], id="prefix-only"),
    ],
)
def test_markers_and_stops(template: FimTemplate, markers: list[str], stops: list[str]) -> None:
    assert template.markers() == markers
    for s in stops + markers:
        assert s in template.stop
    assert "" not in template.stop


def test_prefix_only_ignores_suffix() -> None:
    assert not PREFIX_ONLY.uses_suffix
    assert PREFIX_ONLY.render("abc", "ignored") == "abc"
    assert PREFIX_ONLY.strip_markers("<fim_prefix>") == "<fim_prefix>"


def test_with_stops_appends_without_duplicates() -> None:
    t = PREFIX_ONLY.with_stops(["<eos>", "<end_of_turn>", "<eos>", ""])
    assert t.stop == ["<eos>", "<end_of_turn>"]
    assert PREFIX_ONLY.stop == []
    s = STARCODER.with_stops(["<|endoftext|>", "\n\n"])
    assert s.stop == [*STARCODER.stop, "\n\n"]


def test_strip_markers_removes_joined_markers() -> None:
    assert STARCODER.strip_markers("a<fim_<fim_middle>prefix>b<fim_suffix>c") == "abc"
    assert DEEPSEEK.strip_markers(f"x{DS_HOLE}y") == "xy"
    assert DEEPSEEK.strip_markers("<fim_prefix>") == "<fim_prefix>"


@pytest.mark.parametrize(
    ("name", "family"),
    [
        pytest.param("deepseek-ai/DeepSeek-Coder-V2-Lite-Base", "deepseek", id="ds-v2-lite"),
        pytest.param("deepseek-ai/deepseek-coder-6.7b-base", "deepseek", id="ds-v1"),
        pytest.param("/models/DEEPSEEK-CODER-V2", "deepseek", id="ds-path-upper"),
        pytest.param("bigcode/starcoder2-3b", "starcoder", id="starcoder2"),
        pytest.param("bigcode/starcoder", "starcoder", id="starcoder"),
        pytest.param("bigcode/santacoder", "starcoder", id="santacoder"),
        pytest.param("Qwen/CodeQwen1.5-7B", "starcoder", id="codeqwen1.5"),
        pytest.param("codellama/CodeLlama-7b-hf", "codellama", id="codellama"),
        pytest.param("meta-llama/CodeLlama-13b-Python-hf", "codellama", id="codellama-meta"),
        pytest.param("Qwen/Qwen2.5-Coder-1.5B", "qwen", id="qwen2.5-coder"),
        pytest.param("mistralai/Codestral-22B-v0.1", "codestral", id="codestral"),
        pytest.param("google/gemma-3-270m", "prefix-only", id="gemma"),
        pytest.param("gpt2", "prefix-only", id="unknown"),
        pytest.param("", "prefix-only", id="empty"),
        pytest.param("deepseek", "deepseek", id="family-deepseek"),
        pytest.param("StarCoder", "starcoder", id="family-case"),
        pytest.param("codellama", "codellama", id="family-codellama"),
        pytest.param("qwen", "qwen", id="family-qwen"),
        pytest.param("codestral", "codestral", id="family-codestral"),
        pytest.param("mistral", "codestral", id="alias-mistral"),
        pytest.param("prefix-only", "prefix-only", id="family-prefix-only"),
        pytest.param(" Prefix-Only ", "prefix-only", id="family-spaces"),
    ],
)
def test_template_for(name: str, family: str) -> None:
    assert template_for(name) is TEMPLATES[family]


def test_families_are_named_by_their_key() -> None:
    assert sorted(TEMPLATES) == sorted(
        ["deepseek", "starcoder", "codellama", "qwen", "codestral", "prefix-only"]
    )
    for name, t in TEMPLATES.items():
        assert t.name == name


@pytest.fixture(scope="module")
def deepseek_tokenizer() -> HFTokenizer:
    """A small byte-level BPE with DeepSeek's FIM tokens as special tokens."""
    specials = [DS_EOS, DS_BEGIN, DS_HOLE, DS_END]
    return HFTokenizer(train_byte_level_bpe([inspect.getsource(textwrap)], specials, 600))


def test_check_markers_single_tokens(
    deepseek_tokenizer: HFTokenizer, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="engine.templates"):
        assert check_markers(DEEPSEEK, deepseek_tokenizer) == []
        assert check_markers(PREFIX_ONLY, deepseek_tokenizer) == []
    assert caplog.records == []


def test_check_markers_warns_per_split_marker(
    deepseek_tokenizer: HFTokenizer, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="engine.templates"):
        warnings = check_markers(STARCODER, deepseek_tokenizer)
    assert len(warnings) == 3
    for marker, warning in zip(STARCODER.markers(), warnings, strict=True):
        n = len(deepseek_tokenizer.encode(marker))
        assert n > 1
        assert warning == (
            f"FIM marker '{marker}' of template 'starcoder' is not a single token of this "
            f"tokenizer (encodes to {n} tokens); completions will be poor"
        )
    assert [r.getMessage() for r in caplog.records] == warnings
    assert all(r.levelno == logging.WARNING for r in caplog.records)
