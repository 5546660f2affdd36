"""Token-budgeted prompt building, checked with a real BPE tokenizer over real Python source."""

from __future__ import annotations

import argparse
import inspect
import random
import re
import textwrap
import time

import pytest

from engine.models.tiny_moe import train_byte_level_bpe
from engine.prompt import BuiltPrompt, build_prompt
from engine.templates import DEEPSEEK, PREFIX_ONLY, QWEN, STARCODER, TEMPLATES, FimTemplate
from engine.tokenizer import HFTokenizer

SOURCE = inspect.getsource(textwrap) + inspect.getsource(argparse)
ALL_MARKERS = sorted({m for t in TEMPLATES.values() for m in t.markers()})
FIM_TEMPLATES = [pytest.param(t, id=name) for name, t in TEMPLATES.items()]


@pytest.fixture(scope="module")
def tok() -> HFTokenizer:
    """A byte-level BPE trained on the source text, with every family's markers as tokens."""
    return HFTokenizer(train_byte_level_bpe([SOURCE], ALL_MARKERS, 2000))


class CountingTokenizer:
    """Wraps a tokenizer and records how much text was encoded."""

    def __init__(self, inner: HFTokenizer) -> None:
        self.inner = inner
        self.calls = 0
        self.chars = 0

    def encode(self, text: str) -> list[int]:
        self.calls += 1
        self.chars += len(text)
        return self.inner.encode(text)

    def single_token_id(self, text: str) -> int | None:
        return self.inner.single_token_id(text)


class JointTokenizer:
    """One token per character and per marker, plus one for every newline after other text.

    Lines counted alone (each with the newline before it) never see that extra token, so the
    per-line estimate is always low and the builder must correct it with the exact count.
    """

    def __init__(self, markers: list[str], *, joints: bool = True) -> None:
        self._split = re.compile("(" + "|".join(re.escape(m) for m in markers) + ")")
        self._ids = {m: 1_000_000 + i for i, m in enumerate(markers)}
        self._joints = joints
        self.long_texts = 0

    def encode(self, text: str) -> list[int]:
        self.long_texts += len(text) > 500
        ids: list[int] = []
        for part in self._split.split(text):
            if part in self._ids:
                ids.append(self._ids[part])
                continue
            for i, ch in enumerate(part):
                ids.append(ord(ch))
                if ch == "\n" and i > 0 and self._joints:
                    ids.append(0)
        return ids

    def single_token_id(self, text: str) -> int | None:
        ids = self.encode(text)
        return ids[0] if len(ids) == 1 else None


def frame_tokens(template: FimTemplate, tokenizer: HFTokenizer | JointTokenizer) -> int:
    return len(tokenizer.encode(template.render("", "")))


def check_invariants(
    bp: BuiltPrompt,
    template: FimTemplate,
    tokenizer: HFTokenizer | JointTokenizer,
    prefix: str,
    suffix: str,
    budget: int,
) -> None:
    ids = tokenizer.encode(bp.text)
    if bp.counted:
        assert bp.prompt_tokens == len(ids)
    else:  # the line-by-line estimate, which this tokenizer's have never been below
        assert bp.prompt_tokens >= len(ids)
    assert len(ids) <= budget
    assert bp.text == template.render(bp.prefix, bp.suffix)
    # Contiguous around the cursor.
    assert prefix.endswith(bp.prefix)
    assert suffix.startswith(bp.suffix)
    assert bp.truncated_prefix == (bp.prefix != prefix)
    current = prefix[prefix.rfind("\n") + 1 :]
    if len(bp.prefix) >= len(current):
        # Whole lines, nearest first: the kept prefix starts at a line start.
        start = len(prefix) - len(bp.prefix)
        assert start == 0 or prefix[start - 1] == "\n"
    if template.uses_suffix:
        assert bp.truncated_suffix == (bp.suffix != suffix)
        assert bp.suffix in ("", suffix) or bp.suffix.endswith("\n")
    else:
        assert bp.suffix == ""
        assert not bp.truncated_suffix
    # Markers exactly once, intact, each a single token.
    for marker in template.markers():
        assert bp.text.count(marker) == 1
        marker_id = tokenizer.single_token_id(marker)
        assert marker_id is not None
        assert ids.count(marker_id) == 1


def random_cases(seed: int | str, n: int) -> list[tuple[str, str]]:
    rng = random.Random(seed)
    cases = []
    for _ in range(n):
        lo = rng.randrange(len(SOURCE))
        hi = min(len(SOURCE), lo + rng.choice([200, 3000, 40_000, len(SOURCE)]))
        cursor = rng.randrange(lo, hi + 1)
        cases.append((SOURCE[lo:cursor], SOURCE[cursor:hi]))
    return cases


@pytest.mark.parametrize("template", FIM_TEMPLATES)
def test_random_budgets_hold(template: FimTemplate, tok: HFTokenizer) -> None:
    frame = frame_tokens(template, tok)
    rng = random.Random(7)
    for prefix, suffix in random_cases(seed=template.name, n=40):
        for budget in (frame, frame + 1, frame + 7, 40, 150, 600, 2500):
            budget = max(budget, frame)
            share = rng.choice([0.0, 0.5, 0.75, 1.0])
            bp = build_prompt(template, tok, prefix, suffix, budget, prefix_share=share)
            check_invariants(bp, template, tok, prefix, suffix, budget)
            current = prefix[prefix.rfind("\n") + 1 :]
            if frame + len(tok.encode(current)) + 2 <= budget:
                assert bp.prefix.endswith(current), "the cursor line is kept whole when it fits"


@pytest.mark.parametrize("template", FIM_TEMPLATES)
def test_joint_merges_are_corrected(template: FimTemplate) -> None:
    jt = JointTokenizer(ALL_MARKERS)
    frame = frame_tokens(template, jt)
    recounts = 0
    for prefix, suffix in random_cases(seed=3, n=25):
        for budget in (frame, frame + 3, frame + 30, frame + 300, frame + 3000):
            jt.long_texts = 0
            bp = build_prompt(template, jt, prefix, suffix, budget)
            recounts += jt.long_texts > 1
            check_invariants(bp, template, jt, prefix, suffix, budget)
            assert bp.counted, "estimates found low once: every prompt is counted whole"
    assert recounts > 0  # the exact count found the estimate low and lines were dropped


def test_estimates_that_hold_spare_the_whole_count_but_now_and_then() -> None:
    """A tokenizer that merges nothing across line joints: its line-by-line estimate is never
    below the whole count, so after `TRUST_AFTER` prompts only one in `CHECK_EVERY` is
    counted whole (the rest is a millisecond a keystroke with a real tokenizer)."""
    from engine.prompt import CHECK_EVERY, TRUST_AFTER

    ct = JointTokenizer(ALL_MARKERS, joints=False)
    cases = random_cases(seed=11, n=TRUST_AFTER + 4 * CHECK_EVERY)
    whole: list[bool] = []
    for prefix, suffix in cases:
        ct.long_texts = 0
        bp = build_prompt(DEEPSEEK, ct, prefix, suffix, 600)
        check_invariants(bp, DEEPSEEK, ct, prefix, suffix, 600)
        whole.append(bp.counted)
    assert all(whole[:TRUST_AFTER])
    assert whole[TRUST_AFTER:].count(True) == 4


def test_everything_fits_in_a_large_budget(tok: HFTokenizer) -> None:
    prefix, suffix = SOURCE[:5000], SOURCE[5000:9000]
    bp = build_prompt(DEEPSEEK, tok, prefix, suffix, 100_000)
    assert (bp.prefix, bp.suffix) == (prefix, suffix)
    assert not bp.truncated_prefix and not bp.truncated_suffix
    assert bp.prompt_tokens == len(tok.encode(DEEPSEEK.render(prefix, suffix)))


def test_budget_only_for_markers(tok: HFTokenizer) -> None:
    frame = frame_tokens(DEEPSEEK, tok)
    assert frame == 3
    bp = build_prompt(DEEPSEEK, tok, "import os\nx = 1", "\ny = 2\n", frame)
    assert (bp.prefix, bp.suffix, bp.prompt_tokens) == ("", "", 3)
    assert bp.truncated_prefix and bp.truncated_suffix
    with pytest.raises(ValueError, match="cannot hold the markers"):
        build_prompt(DEEPSEEK, tok, "x", "y", frame - 1)


def test_nearest_prefix_lines_first(tok: HFTokenizer) -> None:
    lines = [f"value_{i} = {i}\n" for i in range(200)]
    prefix = "".join(lines) + "result = "
    for budget in (20, 60, 200, 700):
        bp = build_prompt(DEEPSEEK, tok, prefix, "", budget)
        kept = bp.prefix.splitlines(keepends=True)
        assert kept[-1] == "result = "
        assert kept[:-1] == lines[len(lines) - len(kept) + 1 :]


def test_prefix_share_when_both_sides_are_long(tok: HFTokenizer) -> None:
    cursor = len(SOURCE) // 2
    prefix, suffix = SOURCE[:cursor], SOURCE[cursor:]
    for budget in (300, 1000, 4000):
        for share in (0.5, 0.75, 0.9):
            bp = build_prompt(DEEPSEEK, tok, prefix, suffix, budget, prefix_share=share)
            assert bp.truncated_prefix and bp.truncated_suffix
            p, s = len(tok.encode(bp.prefix)), len(tok.encode(bp.suffix))
            if share >= 0.75:
                assert p >= s
            assert s <= (1 - share) * budget + 5
            assert p + s >= 0.85 * (budget - 3)


def test_unused_suffix_budget_flows_to_prefix(tok: HFTokenizer) -> None:
    prefix, suffix = SOURCE[:-200], SOURCE[-200:]
    budget = 1000
    bp = build_prompt(DEEPSEEK, tok, prefix, suffix, budget)
    assert bp.suffix == suffix and not bp.truncated_suffix
    assert len(tok.encode(bp.prefix)) > 0.9 * budget - len(tok.encode(suffix))


def test_unused_prefix_budget_flows_to_suffix(tok: HFTokenizer) -> None:
    prefix, suffix = SOURCE[:200], SOURCE[200:]
    budget = 1000
    bp = build_prompt(DEEPSEEK, tok, prefix, suffix, budget)
    assert bp.prefix == prefix and not bp.truncated_prefix
    assert len(tok.encode(bp.suffix)) > 0.9 * budget - len(tok.encode(prefix))


def test_suffix_starts_with_rest_of_cursor_line(tok: HFTokenizer) -> None:
    prefix = "def f(x):\n    return g("
    suffix = "x, y)\n\n\ndef h():\n    pass\n"
    frame = frame_tokens(STARCODER, tok)
    rest = len(tok.encode("x, y)\n"))
    bp = build_prompt(STARCODER, tok, prefix, suffix, 10_000, prefix_share=1.0)
    assert bp.suffix == suffix  # the prefix is exhausted: its share flows to the suffix
    cur = len(tok.encode("    return g("))
    bp = build_prompt(STARCODER, tok, "    return g(", suffix, frame + cur + rest + 1, 0.0)
    assert bp.suffix.startswith("x, y)\n")


def test_prefix_only_gives_the_suffix_budget_to_the_prefix(tok: HFTokenizer) -> None:
    prefix, suffix = SOURCE[:20_000], SOURCE[20_000:]
    bp = build_prompt(PREFIX_ONLY, tok, prefix, suffix, 500, prefix_share=0.1)
    assert bp.text == bp.prefix and bp.suffix == ""
    assert bp.prompt_tokens > 0.9 * 500
    assert bp.truncated_prefix and not bp.truncated_suffix


def test_long_current_line_is_cut_from_the_left(tok: HFTokenizer) -> None:
    line = "x = [" + ", ".join(str(i) for i in range(2000))
    prefix = "import os\n" + line
    bp = build_prompt(QWEN, tok, prefix, ")\nprint(x)\n", 60)
    assert bp.prompt_tokens <= 60
    assert line.endswith(bp.prefix) and len(bp.prefix) > 20
    assert bp.truncated_prefix and bp.truncated_suffix and bp.suffix == ""


@pytest.mark.parametrize("template", FIM_TEMPLATES)
def test_markers_in_user_text_are_removed(template: FimTemplate, tok: HFTokenizer) -> None:
    markers = template.markers() or ["<fim_prefix>"]
    first = markers[0]
    joined = first[: len(first) // 2] + markers[-1] + first[len(first) // 2 :]
    prefix = f"a = '{first}'\nb = '{joined}'\nc = '{markers[-1]}'"
    suffix = f"'\nd = '{markers[0]}{markers[-1]}'\n"
    bp = build_prompt(template, tok, prefix, suffix, 1000)
    clean_prefix = template.strip_markers(prefix)
    clean_suffix = template.strip_markers(suffix)
    if template.uses_suffix:
        assert (bp.prefix, bp.suffix) == (clean_prefix, clean_suffix)
        assert bp.prefix == "a = ''\nb = ''\nc = ''"
        assert bp.suffix == "'\nd = ''\n"
        check_invariants(bp, template, tok, clean_prefix, clean_suffix, 1000)
    else:
        assert bp.prefix == prefix  # no markers, nothing to protect
    assert not bp.truncated_prefix and not bp.truncated_suffix


def test_bad_share_is_refused(tok: HFTokenizer) -> None:
    with pytest.raises(ValueError, match="prefix_share"):
        build_prompt(DEEPSEEK, tok, "a", "b", 100, prefix_share=1.5)


def test_large_file_examines_only_what_fits(tok: HFTokenizer) -> None:
    big = SOURCE * 5
    assert big.count("\n") > 10_000
    cursor = len(big) // 2
    prefix, suffix = big[:cursor], big[cursor:]
    counting = CountingTokenizer(tok)
    start = time.perf_counter()
    bp = build_prompt(DEEPSEEK, counting, prefix, suffix, 2048)
    elapsed = time.perf_counter() - start
    assert bp.prompt_tokens <= 2048
    kept = len(bp.prefix) + len(bp.suffix)
    # Each kept line is encoded once alone and once in the final text, plus a line per side.
    assert counting.chars < 3 * kept + 2000
    assert counting.chars < len(big) // 20
    assert elapsed < 1.0
    # A second keystroke reuses the per-line counts.
    calls = counting.calls
    build_prompt(DEEPSEEK, counting, prefix + "x", suffix, 2048)
    assert counting.calls - calls < 10
