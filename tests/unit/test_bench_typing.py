"""The typing replay's pure parts: snippets, keystrokes, schedule, checks and statistics."""

from __future__ import annotations

import importlib.util
import math
import random
import statistics
import sys
from pathlib import Path
from types import ModuleType

import pytest

PATH = Path(__file__).resolve().parents[2] / "bench" / "typing_replay.py"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_typing", PATH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_typing"] = module
    spec.loader.exec_module(module)
    return module


bt = _load()

SOURCE = '''"""A module."""

import os


def short():
    return 1


class Box:
    @staticmethod
    def wrap(value, width=10):
        """Wrap a value in a box of the given width, padding on both sides."""
        text = str(value)
        pad = max(0, width - len(text))
        left = pad // 2
        return " " * left + text + " " * (pad - left)

    def method(self):
        return os.sep
'''


def test_find_blocks_takes_whole_functions_with_decorators() -> None:
    blocks = bt.find_blocks(SOURCE, 100, 400)
    assert [b[0] for b in blocks] == ["Box.wrap"]
    _, line, start, end = blocks[0]
    assert SOURCE[start:end].startswith("@staticmethod\n    def wrap(")
    assert SOURCE[start:end].endswith("(pad - left)")
    assert SOURCE.split("\n")[line - 1].strip() == "@staticmethod"
    # Bounds are in characters of the block.
    assert bt.find_blocks(SOURCE, 10, 40) == [
        b for b in bt.find_blocks(SOURCE, 0, 10_000) if 10 <= b[3] - b[2] <= 40
    ]


def test_snippet_document_leaves_the_cursor_where_the_snippet_was(tmp_path: Path) -> None:
    path = tmp_path / "m.py"
    path.write_text(SOURCE)
    (snippet,) = bt.select_snippets([path], 1, seed=0, min_chars=100, max_chars=400)
    doc = snippet.document
    assert doc[: snippet.start] + snippet.code + doc[snippet.start :] == SOURCE
    assert doc[: snippet.start].endswith("class Box:\n    ")  # after the indentation
    assert snippet.meta()["chars"] == len(snippet.code)


def test_select_snippets_is_reproducible_and_spreads_over_files(tmp_path: Path) -> None:
    paths = []
    for i in range(3):
        funcs = "\n\n".join(
            f"def f{j}(x):\n    value = x * {j}\n    return value + {'1' * (40 + j)}"
            for j in range(4)
        )
        path = tmp_path / f"m{i}.py"
        path.write_text(funcs + "\n")
        paths.append(path)
    first = bt.select_snippets(paths, 5, seed=3, min_chars=20, max_chars=200)
    again = bt.select_snippets(paths, 5, seed=3, min_chars=20, max_chars=200)
    assert [(s.path, s.name) for s in first] == [(s.path, s.name) for s in again]
    assert len(first) == 5
    assert len({s.path for s in first[:3]}) == 3  # one from each file before a second
    assert len({(s.path, s.name) for s in first}) == 5
    assert all(20 <= len(s.code) <= 200 for s in first)
    other = bt.select_snippets(paths, 5, seed=4, min_chars=20, max_chars=200)
    assert [(s.path, s.name) for s in other] != [(s.path, s.name) for s in first]
    assert bt.select_snippets(paths, 50, seed=0, min_chars=20, max_chars=200).__len__() == 12


def test_keystrokes_type_newline_and_indentation_together() -> None:
    code = "def f():\n    x = 1\n\n    return x"
    chunks = bt.keystrokes(code)
    assert "".join(chunks) == code
    assert chunks[8:9] == ["\n    "]
    assert "\n" in chunks  # the blank line: a bare newline
    assert chunks[-8:] == list("return x")
    assert bt.keystrokes(code, auto_indent=False) == list(code)


def test_schedule_is_seeded_realistic_and_scales_with_speed() -> None:
    chunks = [*"abcdefghij" * 30, "\n    ", *"xyz"]
    delays = bt.schedule(chunks, random.Random(1))
    assert delays == bt.schedule(chunks, random.Random(1))
    assert len(delays) == len(chunks)
    assert delays[0] == bt.START_PAUSE_S
    assert 0.10 <= statistics.median(delays[1:300]) <= 0.14
    assert all(bt.MIN_INTERVAL_S <= d <= bt.MAX_INTERVAL_S for d in delays)
    after_newline = delays[chunks.index("\n    ") + 1]
    assert 0.4 <= after_newline <= 0.8 or 1.5 <= after_newline <= 3.5
    fast = bt.schedule(chunks, random.Random(1), speed=2.0)
    assert fast == pytest.approx([d / 2 for d in delays])


def test_pauses_after_punctuation_are_occasional() -> None:
    chunks = list("a,b" * 200)
    delays = bt.schedule(chunks, random.Random(0))
    after_comma = [delays[i + 1] for i, c in enumerate(chunks[:-1]) if c == ","]
    paused = sum(d >= 0.4 for d in after_comma) / len(after_comma)
    assert 0.2 <= paused <= 0.5


def test_position_counts_utf16_units() -> None:
    text = "ab\nx\U0001f600y"
    assert bt.position(text, 0) == (0, 0)
    assert bt.position(text, 3) == (1, 0)
    assert bt.position(text, len(text)) == (1, 4)


def test_check_reuse_accepts_a_typed_through_suggestion() -> None:
    entry = {"typed": "ret", "items": ["urn x"], "origin": ["return x", "raise"]}
    assert bt.check_reuse(entry, "def f(x):\n    ret") == ""
    assert bt.check_reuse({"typed": "", "items": ["a"], "origin": ["a"]}, "x = ") == ""


def test_check_reuse_finds_contradictions() -> None:
    # The text before the cursor does not end with what was typed.
    entry = {"typed": "ret", "items": ["urn x"], "origin": ["return x"]}
    assert "typed" in bt.check_reuse(entry, "def f(x):\n    rex")
    # An item that is no origin item less the typed text.
    entry = {"typed": "ret", "items": ["urn y"], "origin": ["return x"]}
    assert "item" in bt.check_reuse(entry, "    ret")
    # The origin item does not start with what was typed.
    entry = {"typed": "ra", "items": ["ise"], "origin": ["xxise"]}
    assert bt.check_reuse(entry, "    ra")


def test_agrees() -> None:
    assert bt.agrees(["return x"], "")
    assert bt.agrees(["return x"], "ret")
    assert bt.agrees(["ab"], "abc")  # the suggestion was typed through, nothing contradicts
    assert not bt.agrees(["return x"], "rex")
    assert not bt.agrees([], "a")


def test_percentile_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert bt.percentile(values, 0.5) == 50.0 or bt.percentile(values, 0.5) == 51.0
    assert bt.percentile(values, 0.95) == 95.0
    assert bt.percentile([3.0], 0.95) == 3.0
    assert math.isnan(bt.percentile([], 0.5))


def test_attribute_finds_the_keystroke_a_prompt_was_made_for() -> None:
    head = "import os\n\n\ndef main():\n    "
    code = "print(os.sep)"
    tails = [(head + code[: k + 1])[-12:] for k in range(len(code))]
    prompt = "<fim_prefix>" + head + code[:5] + "<fim_suffix>\n<fim_middle>"
    assert bt.attribute(prompt, tails) == 4
    assert bt.attribute("unrelated", tails) == -1


def _request(snippet: int, k: int, typed: int, **kw: object) -> object:
    return bt.Request(snippet, k, k + 2, 0, typed, typed, float(k), **kw)


def test_run_checks_counts_violations_late_and_stale() -> None:
    head, code = "x = ", "foo(bar)"
    prefixes = {0: (head, code)}
    requests = [
        # Answered by the engine at "f": suggests "oo(bar)".
        _request(0, 0, 1, answered=0.1, items=["oo(bar)"], typed_at_answer=1, source="engine"),
        # Cache, typed "o" through it: fine.
        _request(0, 1, 2, answered=1.1, items=["o(bar)"], typed_at_answer=2, source="cache"),
        # Cache answer that contradicts what was typed ("fo" typed, claims "fx").
        _request(0, 2, 3, answered=2.1, items=["(bar)"], typed_at_answer=3, source="cache"),
        # Late and disagreeing: answered when "foo(" was typed, suggests "x".
        _request(0, 3, 3, answered=3.5, items=["x"], typed_at_answer=4, source="engine"),
        # Late but agreeing.
        _request(0, 4, 4, answered=4.5, items=["bar)"], typed_at_answer=5, source="engine"),
        # Cancelled, never answered with items.
        _request(0, 5, 5, cancelled=True, answered=5.1, error="cancelled", typed_at_answer=6),
    ]
    entries = [
        {"snippet": 0, "keystroke": 0, "version": 2, "source": "engine", "items": ["oo(bar)"]},
        {
            "snippet": 0,
            "keystroke": 1,
            "version": 3,
            "source": "cache",
            "items": ["o(bar)"],
            "typed": "o",
            "origin": ["oo(bar)"],
        },
        {
            "snippet": 0,
            "keystroke": 2,
            "version": 5,  # the server's version differs from the request's
            "source": "cache",
            "items": ["(bar)"],
            "typed": "fx",
            "origin": ["fx(bar)"],
        },
        {"snippet": 0, "keystroke": 3, "version": 5, "source": "engine", "items": ["x"]},
        {"snippet": 0, "keystroke": 4, "version": 6, "source": "engine", "items": ["bar)"]},
    ]
    checks = bt.run_checks(requests, entries, prefixes)
    assert checks.checked == 2
    assert len(checks.violations) == 1 and "keystroke 2" in checks.violations[0]
    assert checks.late == 2
    assert checks.stale == 1
    assert checks.traced == 1  # the first cache answer's origin was an engine answer
    assert checks.version_mismatch == 1
    assert checks.received_mismatch == 0


def test_summarize_breaks_keystrokes_down() -> None:
    requests = [
        _request(0, 0, 1, answered=0.010, items=[], source="gate"),
        _request(0, 1, 2, answered=1.5, items=["x"], source="engine", engine_request="a"),
        _request(0, 2, 3, answered=2.005, items=["y"], source="cache"),
        _request(0, 3, 4, answered=3.2, items=["z"], source="follow"),
        _request(0, 4, 5, cancelled=True, answered=4.1, error="c", engine_request="b"),
        _request(0, 5, 6, cancelled=True, answered=5.1, error="c"),
    ]
    engine = [bt.EngineRequest("a", "finished", 5, 0, 1), bt.EngineRequest("b", "aborted", 1, 0, 4)]
    served = {"engine": 1, "cache": 1, "follow": 1, "gate": 1}
    summary = bt.summarize(requests, engine, bt.Checks(checked=2), served)
    assert summary["keystrokes"] == 6
    assert summary["engine_requests_per_keystroke"] == pytest.approx(2 / 6)
    assert summary["engine_requests_aborted"] == 1
    assert summary["without_engine_request"] == pytest.approx(4 / 6)
    cats = summary["categories"]
    assert (cats["gate"], cats["cache"], cats["follow"], cats["engine"]) == (1, 1, 1, 1)
    assert cats["cancelled, engine"] == 1 and cats["cancelled, no new request"] == 1
    assert summary["cache_hit_rate_past_gate"] == pytest.approx(1 / 5)
    assert summary["cancelled"] == 2 and summary["cancelled_answered_anyway"] == 0
    assert summary["answered"] == 4 and summary["shown"] == 3
    assert summary["latency_ms"]["p50"] == pytest.approx(200.0)  # 10, 5, 500, 200 ms
    assert summary["latency_ms"]["max"] == pytest.approx(500.0)
    assert summary["latency_by_source_ms"]["cache"] == {
        "n": 1,
        "p50": pytest.approx(5.0),
        "p95": pytest.approx(5.0),
    }


def test_build_work_caps_characters() -> None:
    path_text = "def f(x):\n    return x + 1\n"
    snippet = bt.Snippet("m.py", "f", 1, 0, len(path_text) - 1, path_text)
    work = bt.build_work([snippet, snippet], seed=0, speed=1.0, chars=15, auto_indent=True)
    assert len(work) == 1
    _, chunks, delays = work[0]
    assert sum(map(len, chunks)) >= 15 and len(delays) == len(chunks)
    full = bt.build_work([snippet, snippet], seed=0, speed=1.0, chars=None, auto_indent=True)
    assert [len(c) for _, c, _ in full] == [len(bt.keystrokes(snippet.code))] * 2
    # The same schedule in every run with the seed.
    again = bt.build_work([snippet, snippet], seed=0, speed=1.0, chars=None, auto_indent=True)
    assert [d for _, _, d in again] == [d for _, _, d in full]
