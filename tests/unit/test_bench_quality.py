"""The pure parts of bench/quality.py and its sandbox (no server, no model)."""

from __future__ import annotations

import asyncio
import json
import math
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from bench.quality import (
    AUTOMATIC,
    SETS,
    Job,
    Server,
    config_stats,
    console_table,
    document,
    exact,
    load_results,
    markdown,
    options,
    paired_bootstrap,
    pending,
    percentile,
    plain,
    program,
    recovery_markdown,
    recovery_rates,
    run_key,
    sample,
    save_results,
    summarize,
)
from bench.sandbox import Limits, run_many, run_program

ROW = {
    "task_id": "SingleLineInfilling/HumanEval/0/L1",
    "entry_point": "add",
    "prompt": 'def add(a, b):\n    """Sum."""\n',
    "suffix": "\n\ndef unused():\n    pass\n",
    "canonical_solution": "    return a + b\n",
    "test": "def check(candidate):\n    assert candidate(2, 3) == 5\n",
}


# --- documents and programs ---------------------------------------------------------------


def test_document_puts_the_cursor_on_the_empty_line_after_the_prompt() -> None:
    doc = document(ROW)
    assert doc.uri == "file:///humaneval/SingleLineInfilling_HumanEval_0_L1.py"
    assert doc.text == ROW["prompt"] + "\n" + ROW["suffix"]
    assert (doc.line, doc.character) == (2, 0)
    assert doc.text.split("\n")[doc.line] == ""
    # The offset of (line, 0) is len(prompt).
    offset = sum(len(line) + 1 for line in doc.text.split("\n")[: doc.line])
    assert offset == len(ROW["prompt"])


def test_document_counts_utf16_units_when_the_prompt_ends_mid_line() -> None:
    doc = document({**ROW, "prompt": "x = '\U0001f600'"})
    assert (doc.line, doc.character) == (0, 8)


def test_program_and_exact_match() -> None:
    source = program(ROW, "    return a + b")
    assert source.startswith(ROW["prompt"] + "    return a + b\n" + ROW["suffix"])
    assert source.endswith(ROW["test"] + "\ncheck(add)\n")
    assert exact(ROW, "    return a + b\n\n")
    assert exact(ROW, "    return a + b")
    assert not exact(ROW, "return a + b\n")


def test_sample_is_seeded_ordered_and_shared() -> None:
    rows = [{"task_id": str(i)} for i in range(50)]
    first = sample(rows, 10, seed=0)
    assert first == sample(rows, 10, seed=0)
    assert first != sample(rows, 10, seed=1)
    assert [int(r["task_id"]) for r in first] == sorted(int(r["task_id"]) for r in first)
    assert sample(rows, 0, seed=0) == rows
    assert sample(rows, 80, seed=0) == rows


def test_configurations() -> None:
    base = options("baseline", 48)["completion"]
    pipe = options("pipeline", 96)["completion"]
    assert base["postprocess"] is False and base["maxTokens"] == 48
    assert base["contextTokens"] == 0
    assert "postprocess" not in pipe and pipe["candidates"] == 1 and pipe["cache"] is False
    assert SETS["single"].trigger == AUTOMATIC and SETS["multi"].trigger == 1
    with pytest.raises(ValueError):
        options("other", 1)
    key = run_key("baseline", "single", "tiny-moe", options("baseline", 48))
    assert key != run_key("baseline", "single", "tiny-moe", options("baseline", 16))


def test_plain_turns_named_tuples_into_dicts() -> None:
    from collections import namedtuple

    Stats = namedtuple("Stats", ["state", "served"])
    assert plain(Stats("ready", Stats("x", [Stats(1, 2)]))) == {
        "state": "ready",
        "served": {"state": "x", "served": [{"state": 1, "served": 2}]},
    }


def test_results_round_trip_and_pending(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "quality.json"
    data = load_results(path)
    assert data["runs"] == {} and data["version"] == 1
    record = {"config": "baseline", "tasks": {"a": {"text": "x"}, "b": {"error": "timeout"}}}
    data["runs"]["k"] = record
    save_results(path, data)
    assert load_results(path)["runs"]["k"] == record
    rows = [{"task_id": t} for t in "abc"]
    job = Job(SETS["single"], rows, {}, record)
    assert [r["task_id"] for r in pending(job, retry_errors=False)] == ["c"]
    assert [r["task_id"] for r in pending(job, retry_errors=True)] == ["b", "c"]
    path.write_text(json.dumps({"version": 999}))
    assert load_results(path)["runs"] == {}


# --- sandbox ------------------------------------------------------------------------------


def test_sandbox_passes_a_correct_program() -> None:
    assert run_program(program(ROW, ROW["canonical_solution"])).passed


def test_sandbox_fails_a_wrong_program_with_its_error() -> None:
    outcome = run_program(program(ROW, "    return a - b\n"))
    assert not outcome.passed
    assert outcome.reason.startswith("exit 1") and "AssertionError" in outcome.reason


def test_sandbox_times_out_an_endless_loop() -> None:
    outcome = run_program("while True:\n    pass\n", Limits(timeout_s=0.5))
    assert (outcome.passed, outcome.reason) == (False, "timeout")
    assert outcome.seconds < 5


def test_sandbox_limits_memory_and_isolates_the_program(tmp_path: Path) -> None:
    assert not run_program("x = bytearray(3 << 30)\n").passed
    # stdin is closed, the working directory is a fresh empty one, __name__ is __main__.
    source = (
        "import os, sys\n"
        "assert sys.stdin.read() == ''\n"
        "assert os.listdir('.') == ['program.py'], os.listdir('.')\n"
        "assert __name__ == '__main__'\n"
        "print('noise' * 1000)\n"
    )
    assert run_program(source).passed


def test_run_many_keeps_the_order() -> None:
    outcomes = run_many(["pass\n", "1/0\n", "import sys; sys.exit(3)\n"], workers=2)
    assert [o.passed for o in outcomes] == [True, False, False]
    assert "ZeroDivisionError" in outcomes[1].reason
    assert outcomes[2].reason.startswith("exit 3")
    assert run_many([]) == []


# --- statistics ---------------------------------------------------------------------------


def test_percentile() -> None:
    assert percentile([3.0, 1.0, 2.0], 0.5) == 2.0
    assert percentile([1.0, 2.0, 3.0, 4.0], 0.95) == 4.0
    assert math.isnan(percentile([], 0.5))


def test_paired_bootstrap_is_seeded_and_brackets_the_mean() -> None:
    base = [1.0, 0.0, 0.0, 1.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0] * 5
    other = [1.0, 1.0, 0.0, 1.0, 1.0, 0.0, 1.0, 0.0, 1.0, 0.0] * 5
    mean, lo, hi = paired_bootstrap(base, other, resamples=2000, seed=0)
    assert mean == pytest.approx(0.3)
    assert lo < mean < hi and lo > 0
    assert (mean, lo, hi) == paired_bootstrap(base, other, resamples=2000, seed=0)


def test_paired_bootstrap_of_identical_results_is_zero() -> None:
    same = [1.0, 0.0, 1.0]
    assert paired_bootstrap(same, same, resamples=100) == (0.0, 0.0, 0.0)
    assert all(math.isnan(x) for x in paired_bootstrap([], []))
    with pytest.raises(ValueError):
        paired_bootstrap([1.0], [])


def _entry(
    passed: bool, text: str = "x", latency: float | None = 100.0, **extra: object
) -> dict[str, object]:
    return {"text": text, "latency_ms": latency, "passed": passed, "exact": passed, **extra}


def test_config_stats() -> None:
    entries = [
        _entry(True, latency=100.0, source="engine"),
        _entry(False, text="", latency=10.0, source="gate"),
        _entry(False, text="", latency=None, error="timeout after 120 s"),
        _entry(True, latency=300.0, source="engine"),
    ]
    stats = config_stats(entries)
    assert stats["n"] == 4 and stats["passed"] == 2 and stats["pass@1"] == 0.5
    assert stats["median_ms"] == 100.0 and stats["p95_ms"] == 300.0
    assert (stats["empty"], stats["errors"], stats["unrun"]) == (1, 1, 0)
    assert stats["sources"] == {"engine": 2, "gate": 1}
    assert math.isnan(config_stats([])["pass@1"])


def _summary() -> dict[str, Any]:
    runs = {
        "b": {"tasks": {"t1": _entry(True), "t2": _entry(False), "t3": _entry(False)}},
        "p": {"tasks": {"t1": _entry(True), "t2": _entry(True), "t3": _entry(False)}},
    }
    keys = {("baseline", "single"): "b", ("pipeline", "single"): "p"}
    return summarize(runs, keys, {"single": ["t1", "t2", "t3", "t4"]}, resamples=500)


def test_summarize_pairs_the_tasks_both_configurations_have() -> None:
    summary = _summary()["single"]
    assert summary["sampled"] == 4
    assert summary["configs"]["baseline"]["pass@1"] == pytest.approx(1 / 3)
    assert summary["configs"]["pipeline"]["pass@1"] == pytest.approx(2 / 3)
    diff = summary["diff"]
    assert diff["n"] == 3 and diff["diff"] == pytest.approx(1 / 3)
    assert (diff["better"], diff["worse"]) == (1, 0)
    assert diff["lo"] <= diff["diff"] <= diff["hi"]


def test_summarize_without_a_pair_has_no_difference() -> None:
    runs = {"b": {"tasks": {"t1": _entry(True)}}}
    summary = summarize(runs, {("baseline", "multi"): "b"}, {"multi": ["t1"]})
    assert summary["multi"]["diff"] is None


# --- reports ------------------------------------------------------------------------------


def test_console_table() -> None:
    table = console_table(_summary())
    assert "single  baseline      3    33.3%" in table
    assert "+33.3 pts" in table and "better on 1, worse on 0" in table


def test_recovery_rates_accept_both_shapes() -> None:
    tasks, rates, overall = recovery_rates({"tasks": 5, "rates": {"none": 1.0}, "overall": 0.9})
    assert (tasks, rates, overall) == (5, {"none": 1.0}, 0.9)
    tasks, rates, overall = recovery_rates({"suffix": 0.5, "overall": 0.5, "tasks": 2})
    assert (tasks, rates, overall) == (2, {"suffix": 0.5}, 0.5)


def test_recovery_markdown() -> None:
    assert "not available (no module)" in recovery_markdown("not available (no module)")
    text = recovery_markdown(
        {"single": {"tasks": 10, "rates": {"none": 1.0, "suffix": 0.95}, "overall": 0.975}}
    )
    assert "| set | tasks | `none` | `suffix` | overall |" in text
    assert "| single-line | 10 | 100.0% | 95.0% | 97.5% |" in text


def test_markdown_section() -> None:
    meta = {
        "machine": "2 CPUs",
        "command": ".venv/bin/python bench/quality.py --limit 3",
        "profile": "tiny-moe",
        "model": "m",
        "settings": {"baseline": {"single": options("baseline", 48)}},
        "set_sizes": {"single": 1033},
        "seed": 0,
        "timeout": 10.0,
        "canonical": {"single": (4, 4)},
        "warnings": ["unknown setting 'completion.postprocess'"],
    }
    text = markdown(_summary(), meta, "not available (missing)", "quality.png")
    assert text.startswith("## Completion quality\n")
    assert "`.venv/bin/python bench/quality.py --limit 3`" in text
    assert "| single-line | 4 | 33.3% | 66.7% | +33.3 pts [" in text
    assert "single-line: 4 of 1033" in text
    assert "canonical solutions of the sampled tasks pass single-line 4/4" in text
    assert "unknown setting 'completion.postprocess'" in text
    assert "not available (missing)" in text
    assert "![pass@1, baseline and pipeline](quality.png)" in text
    assert '"postprocess": false' in text


# --- server process cleanup ---------------------------------------------------------------


def test_end_group_ends_what_a_server_left_behind(tmp_path: Path) -> None:
    # A stand-in for a server whose engine process outlives it: a group leader with a child.
    leader = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import subprocess, sys, time\n"
            "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
            "time.sleep(60)\n",
        ],
        start_new_session=True,
    )
    try:
        server = Server("tiny-moe", {}, tmp_path / "log", 1.0)
        server.pid = leader.pid
        deadline = time.monotonic() + 10
        while len(server.group()) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert leader.pid in server.group() and len(server.group()) == 2
        asyncio.run(server.end_group(grace=5))
        assert leader.wait(timeout=5) != 0
        assert server.group() == []
    finally:
        if leader.poll() is None:
            leader.kill()
            leader.wait()


def test_last_words_skip_message_dumps(tmp_path: Path) -> None:
    server = Server("tiny-moe", {}, tmp_path / "log", 1.0)
    assert server.last_words() == "(nothing on stderr)"
    server.stderr_tail.extend(["Traceback", "pygls.protocol.json_rpc: Sending data: {...}", "Boom"])
    assert server.last_words() == "Traceback | Boom"
