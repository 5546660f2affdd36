"""The pure parts of bench/cpu_dtype.py: the demo's positions, the rule and the report."""

from __future__ import annotations

from typing import Any

from bench.cpu_dtype import SECTION, choose, demo_documents, markdown, sign_test_p
from lsp_server.cli.demo import STEPS


def _result(rate: float, passed: list[bool]) -> dict[str, Any]:
    return {
        "dtype": "x",
        "attention_backend": "CPU_ATTN",
        "load_s": 1.0,
        "tokens_per_s": rate,
        "first_token_ms": 10,
        "server_ready_s": 2.0,
        "passed": passed,
        "latency_median_ms": 5,
        "latency_p95_ms": 9,
        "demo": [{"text": "x"}] * len(STEPS),
        "texts": ["a"],
    }


def test_the_demo_positions_are_the_end_of_each_step() -> None:
    docs = demo_documents()
    assert len(docs) == len(STEPS)
    for doc, step in zip(docs, STEPS, strict=True):
        lines = doc.text.split("\n")
        assert doc.text.endswith(step)
        assert (doc.line, doc.character) == (len(lines) - 1, len(lines[-1]))


def test_sign_test() -> None:
    assert sign_test_p(0, 0) == 1.0
    assert sign_test_p(5, 0) == 1 / 32
    assert abs(sign_test_p(3, 3) - 0.65625) < 1e-12


def test_the_faster_dtype_wins_unless_it_passes_fewer_tasks() -> None:
    same = [True, False] * 10
    fast_and_equal = {"float32": _result(10, same), "bfloat16": _result(20, same)}
    assert choose(fast_and_equal)["default"] == "bfloat16"
    worse = [False] * 20
    fast_but_worse = {"float32": _result(10, [True] * 20), "bfloat16": _result(20, worse)}
    verdict = choose(fast_but_worse)
    assert verdict["fastest"] == "bfloat16" and verdict["default"] == "float32"
    assert verdict["only_other_passed"] == 20 and verdict["p_worse"] < 0.05


def test_the_report_names_the_cpu_and_the_choice() -> None:
    results = {"float32": _result(10, [True]), "bfloat16": _result(20, [True])}
    data = {
        "machine": "2 CPUs (AMD EPYC (AMX: no, AVX-512 BF16: yes))",
        "cpu": "AMD EPYC (AMX: no, AVX-512 BF16: yes)",
        "command": "bench/cpu_dtype.py",
        "tasks": 1,
        "runs": 3,
        "tokens": 128,
        "results": results,
        "verdict": choose(results),
    }
    text = markdown(data)
    assert text.startswith(SECTION)
    assert "AMX: no, AVX-512 BF16: yes" in text
    assert "| decode (tokens/s, median of runs) | 10.0 | 20.0 |" in text
    assert "default by the rule" in text and "**bfloat16**" in text
