"""Fill-in-the-middle (FIM) prompt templates per model family, checked against the tokenizer.

Marker strings are the ones the models were trained with; DeepSeek's use the full-width
vertical bar U+FF5C and U+2581 (written here as escapes so they cannot be mistaken for ASCII).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

import msgspec

from engine.tokenizer import PromptTokenizer

logger = logging.getLogger(__name__)


class FimTemplate(msgspec.Struct, frozen=True):
    """How one model family lays out a FIM prompt.

    `render` gives ``prefix_marker prefix suffix_marker suffix middle_marker`` (markers and text
    concatenated), or with `suffix_first` ``suffix_marker suffix prefix_marker prefix
    middle_marker``. Empty markers are left out; a template without a suffix marker is
    prefix-only and ignores the suffix.
    """

    name: str
    """Family name, as accepted by `template_for`."""
    prefix_marker: str = ""
    """Token before the prefix (empty for prefix-only)."""
    suffix_marker: str = ""
    """Token before the suffix (empty for prefix-only)."""
    middle_marker: str = ""
    """Token after which the model writes the middle (empty: the prompt ends with the prefix)."""
    suffix_first: bool = False
    """Suffix before prefix (Codestral/Mistral: ``[SUFFIX]suffix[PREFIX]prefix``)."""
    stop: list[str] = []
    """Strings the model emits when the fill is done."""
    marker_spaces: bool = False
    """CodeLlama layout: a space after the prefix marker, before the suffix and middle markers."""
    repo_format: str = ""
    """Repository-level layout the family was trained with: "qwen" (Qwen2.5-Coder
    ``<|repo_name|>``/``<|file_sep|>``), "starcoder2" (``<repo_name>``/``<file_sep>``), or ""
    (path comments inside the prefix part)."""

    @property
    def uses_suffix(self) -> bool:
        """Whether the suffix goes into the prompt at all."""
        return bool(self.suffix_marker)

    def markers(self) -> list[str]:
        """The non-empty markers, in prefix, suffix, middle order."""
        return [m for m in (self.prefix_marker, self.suffix_marker, self.middle_marker) if m]

    def repo_markers(self) -> list[str]:
        """The repository-format tokens (repo name, file separator), empty without a format."""
        return list(REPO_MARKERS.get(self.repo_format, ()))

    def frame(self) -> tuple[str, str, str]:
        """The fixed text around the two user parts: ``head + first + joint + second + tail``.

        `first` is the prefix, `second` the suffix (swapped when `suffix_first`).
        """
        if not self.uses_suffix:
            return "", "", ""
        sp = " " if self.marker_spaces else ""
        pre = self.prefix_marker + sp if self.prefix_marker else ""
        suf = sp + self.suffix_marker
        mid = sp + self.middle_marker if self.middle_marker else ""
        if self.suffix_first:
            return suf, pre, mid
        return pre, suf, mid

    def render(self, prefix: str, suffix: str) -> str:
        """The prompt for this prefix and suffix, verbatim (see `strip_markers` for user text)."""
        if not self.uses_suffix:
            return prefix
        head, joint, tail = self.frame()
        if self.suffix_first:
            return head + suffix + joint + prefix + tail
        return head + prefix + joint + suffix + tail

    def strip_markers(self, text: str) -> str:
        """`text` with every occurrence of a marker (FIM or repository format) removed,
        repeatedly (removal can join one)."""
        marks = self.markers() + self.repo_markers()
        while any(m in text for m in marks):
            for m in marks:
                text = text.replace(m, "")
        return text

    def with_stops(self, extra: Iterable[str]) -> FimTemplate:
        """A copy with `extra` stop strings appended (duplicates and empty strings dropped)."""
        stop = list(self.stop)
        for s in extra:
            if s and s not in stop:
                stop.append(s)
        return msgspec.structs.replace(self, stop=stop)


REPO_MARKERS: dict[str, tuple[str, str]] = {
    "qwen": ("<|repo_name|>", "<|file_sep|>"),
    "starcoder2": ("<repo_name>", "<file_sep>"),
}
"""Repository name and file separator tokens per `FimTemplate.repo_format`."""


def deepseek_token(word: str) -> str:
    """A DeepSeek special token: `word` between ``<`` U+FF5C and U+FF5C ``>``, spaces as U+2581."""
    return "<\uff5c" + word.replace(" ", "\u2581") + "\uff5c>"


def _fim(
    name: str,
    markers: tuple[str, str, str],
    stop: list[str],
    *,
    suffix_first: bool = False,
    marker_spaces: bool = False,
    repo_format: str = "",
) -> FimTemplate:
    """A FIM template whose stop strings also include its markers."""
    pre, suf, mid = markers
    return FimTemplate(
        name,
        pre,
        suf,
        mid,
        suffix_first=suffix_first,
        stop=stop + [m for m in markers if m],
        marker_spaces=marker_spaces,
        repo_format=repo_format,
    )


DEEPSEEK = _fim(
    "deepseek",
    (deepseek_token("fim begin"), deepseek_token("fim hole"), deepseek_token("fim end")),
    [deepseek_token("end of sentence")],
)
STARCODER = _fim(
    "starcoder",
    ("<fim_prefix>", "<fim_suffix>", "<fim_middle>"),
    ["<|endoftext|>", "<file_sep>", "<fim_pad>"],
    repo_format="starcoder2",
)
CODELLAMA = _fim("codellama", ("<PRE>", "<SUF>", "<MID>"), ["<EOT>"], marker_spaces=True)
QWEN = _fim(
    "qwen",
    ("<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>"),
    ["<|endoftext|>", "<|fim_pad|>", "<|file_sep|>", "<|repo_name|>", "<|im_start|>", "<|im_end|>"],
    repo_format="qwen",
)
# Mistral's FIM encoding (mistral_common `encode_fim`) ends with the prefix: no middle marker.
CODESTRAL = _fim("codestral", ("[PREFIX]", "[SUFFIX]", ""), ["</s>"], suffix_first=True)
PREFIX_ONLY = FimTemplate("prefix-only")

TEMPLATES: dict[str, FimTemplate] = {
    t.name: t for t in (DEEPSEEK, STARCODER, CODELLAMA, QWEN, CODESTRAL, PREFIX_ONLY)
}

_ALIASES: dict[str, str] = {
    "deepseek-coder": "deepseek",
    "starcoder2": "starcoder",
    "santacoder": "starcoder",
    "code-llama": "codellama",
    "qwen-coder": "qwen",
    "mistral": "codestral",
    "prefix": "prefix-only",
    "none": "prefix-only",
}

# Substrings of a model name or path, checked in order (CodeQwen1.5 uses StarCoder's tokens).
_MODEL_PATTERNS: tuple[tuple[str, str], ...] = (
    ("deepseek", "deepseek"),
    ("codeqwen", "starcoder"),
    ("starcoder", "starcoder"),
    ("santacoder", "starcoder"),
    ("codellama", "codellama"),
    ("code-llama", "codellama"),
    ("code_llama", "codellama"),
    ("qwen", "qwen"),
    ("codestral", "codestral"),
)


def template_for(name_or_model: str) -> FimTemplate:
    """The template for a family name (or alias) or a model name/path; prefix-only if unknown."""
    key = name_or_model.strip().lower()
    key = _ALIASES.get(key, key)
    if key in TEMPLATES:
        return TEMPLATES[key]
    for pattern, family in _MODEL_PATTERNS:
        if pattern in key:
            return TEMPLATES[family]
    return PREFIX_ONLY


def check_markers(template: FimTemplate, tokenizer: PromptTokenizer) -> list[str]:
    """One warning per marker that is not a single token of `tokenizer` (each also logged)."""
    warnings: list[str] = []
    for marker in template.markers():
        if tokenizer.single_token_id(marker) is not None:
            continue
        n = len(tokenizer.encode(marker))
        msg = (
            f"FIM marker {marker!r} of template {template.name!r} is not a single token of "
            f"this tokenizer (encodes to {n} tokens); completions will be poor"
        )
        logger.warning("%s", msg)
        warnings.append(msg)
    return warnings


__all__ = [
    "CODELLAMA",
    "CODESTRAL",
    "DEEPSEEK",
    "PREFIX_ONLY",
    "QWEN",
    "REPO_MARKERS",
    "STARCODER",
    "TEMPLATES",
    "FimTemplate",
    "check_markers",
    "template_for",
]
