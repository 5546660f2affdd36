"""cpu-small in float32 and in bfloat16 on this machine's CPU: which should be the default.

For each dtype, one after the other:

* the engine alone (`EmbeddedVLLMEngine`, the server's engine): load time, then decode speed
  of ``--runs`` greedy generations of ``--tokens`` tokens (EOS ignored) on code prompts, timed
  from the first token to the last, and time to first token;
* through the real server (``coder-lsp serve --stdio``, ``engine.dtype`` set in
  ``initializationOptions``): the demo's four completions (``coder-lsp demo``'s sample file
  and steps, default settings), then HumanEval single-line infilling pass@1 on ``--limit``
  tasks (automatic trigger, the full pipeline, no context and no cache, as
  ``bench/quality.py``'s pipeline configuration) with the client's latency.

The rule the profile follows: the faster dtype is the default unless its pass@1 is worse,
judged on the paired tasks (an exact one-sided sign test on the tasks only one dtype passes,
p < 0.05). Results go to ``bench/results/cpu_dtype.json`` and a section of the README with a
plot.

    .venv/bin/python bench/cpu_dtype.py [--limit 100] [--dtypes float32,bfloat16] [--write-readme]
        [--report-only]
"""

from __future__ import annotations

import os
import sys

if sys.path and os.path.abspath(sys.path[0] or os.curdir) == os.path.dirname(
    os.path.abspath(__file__)
):
    sys.path[0] = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

import argparse
import asyncio
import json
import math
import statistics
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from importlib.resources import files
from pathlib import Path
from typing import Any

from bench.quality import (
    AUTOMATIC,
    DATA,
    SETS,
    Document,
    Server,
    document,
    load_rows,
    options,
    program,
    sample,
)
from bench.report import describe, replace_section
from bench.sandbox import Limits, run_many

HERE = Path(__file__).resolve().parent
README = HERE / "README.md"
PLOT = HERE / "cpu_dtype.png"
OUTPUT = HERE / "results" / "cpu_dtype.json"
SECTION = "## cpu-small: float32 or bfloat16"
PROMPTS = (
    "import json\n\n\ndef load_config(path):\n    ",
    "class Stack:\n    def __init__(self):\n        self.items = []\n\n    def push(self, x):\n",
    "def quicksort(values: list[int]) -> list[int]:\n    ",
)


# --- the engine alone ---------------------------------------------------------------------


async def engine_figures(profile: str, dtype: str, runs: int, tokens: int) -> dict[str, Any]:
    """Load time, decode tokens/s and time to first token of the embedded engine."""
    from engine import EngineStatus, GenerationRequest
    from engine.profiles import get_profile, prepare_model
    from engine.vllm_engine import EmbeddedVLLMEngine
    from lsp_server.config import EngineSettings, Settings
    from lsp_server.engine_host import engine_options

    profile_ = get_profile(profile)
    model = prepare_model(profile_.completion_model)  # built once, outside the timing
    settings = Settings(engine=EngineSettings(dtype=dtype))  # type: ignore[arg-type]
    engine = EmbeddedVLLMEngine(model, engine_options(profile_, settings))
    started = time.perf_counter()
    await engine.start()
    load_s = time.perf_counter() - started
    if engine.state.status is not EngineStatus.READY:
        raise RuntimeError(f"{dtype}: the engine did not start: {engine.state.reason}")
    plan = engine.plan
    rates, firsts, texts = [], [], []
    try:
        for i in range(runs):
            prompt = PROMPTS[i % len(PROMPTS)]
            request = GenerationRequest(prompt=prompt, max_tokens=tokens, ignore_eos=True)
            t0 = time.perf_counter()
            first = last = 0.0
            text, count = "", 0
            async for chunk in engine.generate(request):
                now = time.perf_counter()
                first = first or now
                last, text, count = now, chunk.text, chunk.token_count
            firsts.append((first - t0) * 1000)
            rates.append((count - 1) / (last - first) if last > first else math.nan)
            texts.append(text)
    finally:
        await engine.shutdown()
    return {
        "dtype": plan.dtype if plan else dtype,
        "attention_backend": plan.attention_backend if plan else None,
        "load_s": round(load_s, 1),
        "tokens_per_s": round(statistics.median(rates), 1),
        "tokens_per_s_runs": [round(r, 1) for r in rates],
        "first_token_ms": round(statistics.median(firsts)),
        "texts": texts,
    }


# --- through the server -------------------------------------------------------------------


def demo_documents() -> list[Document]:
    """The demo's four positions: its sample file with each step typed at the end."""
    from lsp_server.cli.demo import STEPS

    text = Path(str(files("lsp_server").joinpath("demo/sample.py"))).read_text(encoding="utf-8")
    docs = []
    for i, typed in enumerate(STEPS):
        text += typed
        lines = text.split("\n")
        docs.append(
            Document(
                uri=f"file:///demo/sample_{i}.py",
                text=text,
                line=len(lines) - 1,
                character=len(lines[-1].encode("utf-16-le")) // 2,
            )
        )
    return docs


async def server_figures(
    profile: str, dtype: str, rows: Sequence[dict[str, Any]], args: argparse.Namespace
) -> dict[str, Any]:
    """The demo's completions and HumanEval single-line answers through `coder-lsp serve`."""
    engine = {"engine": {"dtype": dtype}}
    log = Path(tempfile.gettempdir()) / f"coder-lsp-cpu-dtype-{dtype}.log"
    server = Server(profile, engine, log, args.load_timeout)
    started = time.perf_counter()
    try:
        stats = await server.start()
        ready_s = time.perf_counter() - started
        demo = []
        for doc in demo_documents():
            answer = await server.complete(doc, AUTOMATIC, args.request_timeout)
            demo.append({"text": answer.text, "ms": answer.latency_ms, "error": answer.error})
        await server.configure({**engine, **options("pipeline", args.max_tokens)})
        answers = []
        for i, row in enumerate(rows, start=1):
            answer = await server.complete(document(row), AUTOMATIC, args.request_timeout)
            answers.append(answer)
            if i % 20 == 0:
                print(f"  [{dtype}] {i}/{len(rows)} tasks", file=sys.stderr)
    finally:
        await server.stop()
    outcomes = run_many(
        [program(row, a.text) for row, a in zip(rows, answers, strict=True)],
        Limits(timeout_s=10.0),
        workers=2,
    )
    latencies = sorted(a.latency_ms for a in answers if a.latency_ms is not None)
    return {
        "server_ready_s": round(ready_s, 1),
        "server_dtype": stats.get("dtype"),
        "server_attention_backend": stats.get("attentionBackend"),
        "demo": demo,
        "passed": [o.passed for o in outcomes],
        "errors": sum(a.error is not None for a in answers),
        "latency_median_ms": round(statistics.median(latencies)) if latencies else None,
        "latency_p95_ms": round(latencies[int(0.95 * (len(latencies) - 1))]) if latencies else None,
    }


# --- judging and reporting ----------------------------------------------------------------


def sign_test_p(worse: int, better: int) -> float:
    """One-sided exact sign test: the chance of at least `worse` losses among the discordant
    tasks if neither dtype were better."""
    n = worse + better
    if n == 0:
        return 1.0
    return float(sum(math.comb(n, k) for k in range(worse, n + 1)) / 2**n)


def choose(results: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """The faster dtype, unless its pass@1 is worse on the paired tasks."""
    names = list(results)
    fastest = max(names, key=lambda d: results[d]["tokens_per_s"])
    verdict: dict[str, Any] = {"fastest": fastest, "default": fastest}
    for other in names:
        if other == fastest:
            continue
        mine, theirs = results[fastest]["passed"], results[other]["passed"]
        worse = sum(t and not m for m, t in zip(mine, theirs, strict=True))
        better = sum(m and not t for m, t in zip(mine, theirs, strict=True))
        p = sign_test_p(worse, better)
        verdict |= {"versus": other, "only_other_passed": worse, "only_fastest_passed": better}
        verdict["p_worse"] = round(p, 4)
        if p < 0.05:
            verdict["default"] = other
    return verdict


def pass_rate(result: Mapping[str, Any]) -> float:
    passed = result["passed"]
    return sum(passed) / len(passed) if passed else math.nan


def markdown(data: Mapping[str, Any]) -> str:
    results, verdict = data["results"], data["verdict"]
    names = list(results)
    rows: list[tuple[str, Callable[[Mapping[str, Any]], str]]] = [
        ("dtype and attention backend", lambda r: f"{r['dtype']}, {r['attention_backend']}"),
        ("engine load (s)", lambda r: f"{r['load_s']:.1f}"),
        ("decode (tokens/s, median of runs)", lambda r: f"{r['tokens_per_s']:.1f}"),
        ("time to first token (ms)", lambda r: f"{r['first_token_ms']}"),
        ("server start to ready (s)", lambda r: f"{r['server_ready_s']:.1f}"),
        (
            f"HumanEval single-line pass@1 ({data['tasks']} tasks)",
            lambda r: f"{pass_rate(r) * 100:.1f}%",
        ),
        (
            "completion latency (median / p95 ms)",
            lambda r: f"{r['latency_median_ms']} / {r['latency_p95_ms']}",
        ),
        (
            "demo positions with a suggestion",
            lambda r: f"{sum(bool(d['text']) for d in r['demo'])}/{len(r['demo'])}",
        ),
    ]
    lines = [
        SECTION,
        "",
        "`bench/cpu_dtype.py` runs `cpu-small` (Gemma 3 270M) with `engine.dtype` float32 and",
        "bfloat16, one after the other: the engine alone (load, then "
        f"{data['runs']} greedy runs of {data['tokens']} tokens),",
        "then through `coder-lsp serve` (the demo's four positions, then HumanEval single-line",
        "infilling, automatic trigger, full pipeline, no context, no cache).",
        "",
        f"- Machine: {data['machine']}",
        f"- Command: `{data['command']}`",
        "",
        "| measure | " + " | ".join(names) + " |",
        "| --- | " + " | ".join("---" for _ in names) + " |",
    ]
    for title, cell in rows:
        lines.append(f"| {title} | " + " | ".join(cell(results[n]) for n in names) + " |")
    same = len({tuple(results[n]["texts"]) for n in names}) == 1
    lines += [
        "",
        f"Decode texts of the engine runs identical across dtypes: {'yes' if same else 'no'}.",
        f"Tasks only {verdict.get('versus', '-')} passed: {verdict.get('only_other_passed', 0)}; "
        f"only {verdict['fastest']} passed: {verdict.get('only_fastest_passed', 0)} "
        f"(one-sided sign test p = {verdict.get('p_worse', 1.0)}).",
        f"Faster: **{verdict['fastest']}**; default by the rule (faster unless its pass@1 is "
        f"worse, p < 0.05): **{verdict['default']}**. `cpu-small` leaves `engine.dtype` to the "
        "machine (`auto`: bfloat16 where the CPU computes it natively, AMX or AVX-512 BF16, "
        "float32 elsewhere). cpu-small has no MLA, so it runs `CPU_ATTN` with or without AMX; "
        "on an AMX CPU bfloat16 also gives MLA models (tiny-moe, DeepSeek) the `AMX_MLA` "
        "backend.",
        "",
        "The demo's completions:",
        "",
    ]
    for i in range(4):
        shown = " / ".join(
            f"{n}: `{results[n]['demo'][i]['text'].replace(chr(10), '⏎')[:70] or '(none)'}`"
            for n in names
        )
        lines.append(f"{i + 1}. {shown}")
    lines += ["", "![cpu-small dtypes](cpu_dtype.png)", ""]
    return "\n".join(lines) + "\n"


def plot(data: Mapping[str, Any], target: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    results = data["results"]
    names = list(results)
    panels = [
        ("engine load (s)", [results[n]["load_s"] for n in names]),
        ("decode (tokens/s)", [results[n]["tokens_per_s"] for n in names]),
        ("single-line pass@1 (%)", [pass_rate(results[n]) * 100 for n in names]),
        ("latency median (ms)", [results[n]["latency_median_ms"] or 0 for n in names]),
    ]
    fig, axes = plt.subplots(1, len(panels), figsize=(11, 3))
    for axis, (title, values) in zip(axes, panels, strict=True):
        bars = axis.bar(names, values, color=["tab:blue", "tab:orange", "tab:green"][: len(names)])
        axis.bar_label(bars, fmt="%.1f", fontsize=8)
        axis.set_title(title, fontsize=9)
        axis.margins(y=0.2)
    fig.suptitle(f"cpu-small on {data['cpu']}", fontsize=9)
    fig.tight_layout()
    fig.savefig(target, dpi=100)
    plt.close(fig)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    doc = __doc__ or ""
    parser = argparse.ArgumentParser(description=doc.split("\n")[0])
    parser.add_argument("--profile", default="cpu-small")
    parser.add_argument("--dtypes", default="float32,bfloat16")
    parser.add_argument("--limit", type=int, default=100, help="HumanEval single-line tasks")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--runs", type=int, default=3, help="decode runs per dtype")
    parser.add_argument("--tokens", type=int, default=128, help="tokens per decode run")
    parser.add_argument("--max-tokens", type=int, default=48, help="completion.maxTokens")
    parser.add_argument("--request-timeout", type=float, default=120.0)
    parser.add_argument("--load-timeout", type=float, default=900.0)
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--output", type=Path, default=OUTPUT)
    parser.add_argument("--write-readme", action="store_true")
    parser.add_argument("--report-only", action="store_true", help="rebuild from --output")
    return parser.parse_args(argv)


async def run(args: argparse.Namespace, argv: Sequence[str]) -> dict[str, Any]:
    from engine.machine import cpu_features

    machine = describe()
    rows = sample(load_rows(args.data / SETS["single"].file), args.limit, args.seed)
    results: dict[str, dict[str, Any]] = {}
    for dtype in args.dtypes.split(","):
        print(f"{dtype}: the engine alone", file=sys.stderr)
        figures = await engine_figures(args.profile, dtype, args.runs, args.tokens)
        print(f"{dtype}: through the server", file=sys.stderr)
        figures |= await server_figures(args.profile, dtype, rows, args)
        results[dtype] = figures
        print(
            f"{dtype}: load {figures['load_s']} s, {figures['tokens_per_s']} tokens/s, "
            f"pass@1 {pass_rate(figures) * 100:.1f}%",
            file=sys.stderr,
        )
    return {
        "machine": machine,
        "cpu": cpu_features().describe(),
        "command": ".venv/bin/python bench/cpu_dtype.py " + " ".join(argv),
        "tasks": len(rows),
        "runs": args.runs,
        "tokens": args.tokens,
        "results": results,
        "verdict": choose(results),
    }


def main(argv: Sequence[str] | None = None) -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    if args.report_only:
        data = json.loads(args.output.read_text(encoding="utf-8"))
    else:
        data = asyncio.run(run(args, argv))
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
    print(markdown(data))
    if args.write_readme:
        plot(data, PLOT)
        replace_section(README, SECTION, markdown(data))
    return 0


if __name__ == "__main__":
    sys.exit(main())
