"""Load: 16 documents typed at 10 characters a second each, for 3 minutes, on the embedded
engine.

`coder-lsp serve --stdio` with the embedded engine (tiny-moe by default) in a workspace of 16
Python files, each opened and then typed into at the same time: every keystroke is an
incremental `didChange` and an automatic `textDocument/inlineCompletion`, after a
`$/cancelRequest` for that document's previous request if it is still pending, as VS Code
does. What is typed is the standard library's own code (a module per document, from a point
past its imports). Afterwards the bench waits for every request's answer and for the engine to
settle, then reads the engine's unfinished requests. The server's process tree (server,
engine core, workers) is sampled for memory every 5 s.

    .venv/bin/python bench/load.py [--profile tiny-moe] [--documents 16] [--cps 10] \\
        [--minutes 3] [--seed 0] [--write-readme]
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
import contextlib
import json
import random
import shlex
import statistics
import sysconfig
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from bench.report import describe, replace_section
from tests.lsp.raw import RawServer

HERE = Path(__file__).resolve().parent
README = HERE / "README.md"
PLOT = HERE / "load.png"
OUTPUT = HERE / "results" / "load.json"
SECTION = "## Load: 16 documents typing"
MODULES = (
    "textwrap.py", "shlex.py", "json/decoder.py", "json/encoder.py", "fnmatch.py", "heapq.py",
    "string.py", "difflib.py", "base64.py", "glob.py", "posixpath.py", "calendar.py",
    "bisect.py", "colorsys.py", "csv.py", "dataclasses.py", "functools.py", "gettext.py",
)  # fmt: skip
SAMPLE_S = 5.0
SETTLE_S = 120.0
CANCELLED = -32800


@dataclass
class _Request:
    doc: int
    sent: float
    answered: float | None = None
    outcome: str = ""
    """suggestion, empty, cancelled or error: ..."""


@dataclass
class _State:
    requests: dict[int, _Request] = field(default_factory=dict)
    memory: list[tuple[float, float, float]] = field(default_factory=list)
    """(seconds since the start, server RSS MiB, engine processes' RSS MiB)."""
    next_id: int = 1
    keystrokes: int = 0


def _source(rng: random.Random, module: str) -> tuple[str, str]:
    """A module's text split where typing starts (past its imports) and what is typed."""
    text = (Path(sysconfig.get_paths()["stdlib"]) / module).read_text(encoding="utf-8")
    lines = text.splitlines(keepends=True)
    start = next((i for i, line in enumerate(lines) if line.startswith(("def ", "class "))), 0)
    start = min(len(lines) - 1, start + rng.randrange(0, 20))
    return "".join(lines[:start]), "".join(lines[start:])


def _position(text: str) -> dict[str, int]:
    line = text.count("\n")
    tail = text[text.rfind("\n") + 1 :]
    return {"line": line, "character": len(tail.encode("utf-16-le")) // 2}


def _memory(server: RawServer) -> tuple[float, float]:
    main, engine = 0.0, 0.0
    for i, p in enumerate(server.processes()):
        with contextlib.suppress(psutil.Error):
            rss = p.memory_info().rss / 2**20
            if i == 0:
                main = rss
            else:
                engine += rss
    return main, engine


async def _sample(server: RawServer, state: _State, t0: float, stop: asyncio.Event) -> None:
    while not stop.is_set():
        state.memory.append((time.monotonic() - t0, *_memory(server)))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), SAMPLE_S)


async def _type(
    server: RawServer,
    state: _State,
    doc: int,
    uri: str,
    text: str,
    typed: str,
    cps: float,
    until: float,
    rng: random.Random,
) -> None:
    version, pending = 1, None
    loop = asyncio.get_running_loop()
    next_at = time.monotonic() + rng.uniform(0, 1 / cps)
    for ch in typed:
        if time.monotonic() >= until:
            break
        await asyncio.sleep(max(0.0, next_at - time.monotonic()))
        next_at += rng.uniform(0.5, 1.5) / cps
        if pending is not None and state.requests[pending].answered is None:
            await server.notify("$/cancelRequest", {"id": pending})
        at = _position(text)
        text += ch
        version += 1
        change = {"range": {"start": at, "end": at}, "text": ch}
        await server.notify(
            "textDocument/didChange",
            {"textDocument": {"uri": uri, "version": version}, "contentChanges": [change]},
        )
        pending, state.next_id = state.next_id, state.next_id + 1
        state.requests[pending] = _Request(doc, loop.time())
        state.keystrokes += 1
        await server.request(
            pending,
            "textDocument/inlineCompletion",
            {
                "textDocument": {"uri": uri},
                "position": _position(text),
                "context": {"triggerKind": 2},
            },
        )


async def _collect(server: RawServer, state: _State, stop: asyncio.Event) -> None:
    """Match responses to requests as they arrive."""
    loop = asyncio.get_running_loop()
    seen: set[int] = set()
    while True:
        for key, answers in list(server.responses.items()):
            if key in seen or not isinstance(key, int) or key not in state.requests:
                continue
            seen.add(key)
            request, answer = state.requests[key], answers[0]
            request.answered = loop.time()
            if "error" in answer:
                code = answer["error"].get("code")
                request.outcome = "cancelled" if code == CANCELLED else f"error: {code}"
            else:
                items = (answer.get("result") or {}).get("items") or []
                request.outcome = "suggestion" if items else "empty"
        if stop.is_set() and all(r.answered is not None for r in state.requests.values()):
            return
        await asyncio.sleep(0.02)


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


async def run(args: argparse.Namespace) -> dict[str, Any]:
    rng = random.Random(args.seed)
    state = _State()
    with tempfile.TemporaryDirectory(prefix="coder-lsp-load-") as tmp:
        root = Path(tmp)
        docs = []
        for i in range(args.documents):
            module = MODULES[i % len(MODULES)]
            head, typed = _source(rng, module)
            path = root / f"doc{i:02d}_{Path(module).name}"
            path.write_text(head, encoding="utf-8")
            docs.append((path.as_uri(), head, typed, module))
        server = RawServer("--profile", args.profile)
        await server.start()
        try:
            await server.initialize({}, root=root.as_uri())
            started = time.monotonic()
            stats = await server.wait_ready(600)
            if stats["state"] != "ready":
                raise SystemExit(f"the engine did not start: {stats['reason']}")
            load_s = time.monotonic() - started
            for uri, head, _, _ in docs:
                item = {"uri": uri, "languageId": "python", "version": 1, "text": head}
                await server.notify("textDocument/didOpen", {"textDocument": item})
            await asyncio.sleep(2.0)
            t0 = time.monotonic()
            start_memory = _memory(server)
            stop_sampling, typing_done = asyncio.Event(), asyncio.Event()
            sampler = asyncio.create_task(_sample(server, state, t0, stop_sampling))
            collector = asyncio.create_task(_collect(server, state, typing_done))
            until = t0 + args.minutes * 60
            await asyncio.gather(
                *(
                    _type(server, state, i, uri, head, typed, args.cps, until, rng)
                    for i, (uri, head, typed, _) in enumerate(docs)
                )
            )
            typed_s = time.monotonic() - t0
            typing_done.set()
            settle_start = time.monotonic()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(collector, SETTLE_S)
            unfinished, n = None, 0
            while time.monotonic() - settle_start < SETTLE_S:
                n += 1
                stats = (await server.call(f"settle-{n}", "coderLsp/engineStats"))["result"]
                unfinished = stats["unfinishedRequests"]
                if unfinished == 0 and stats["runningGenerations"] == 0:
                    break
                await asyncio.sleep(0.5)
            settle_s = time.monotonic() - settle_start
            await asyncio.sleep(3.0)  # let freed memory show
            end_memory = _memory(server)
            stop_sampling.set()
            await sampler
            served = stats["served"]
            alive = server.alive()
        finally:
            await server.stop()
    answered = [r for r in state.requests.values() if r.answered is not None]
    outcomes = Counter(r.outcome for r in answered)
    latencies = [
        (r.answered - r.sent) * 1000 for r in answered if r.answered and r.outcome != "cancelled"
    ]
    return {
        "profile": args.profile,
        "documents": args.documents,
        "cps": args.cps,
        "minutes": args.minutes,
        "seed": args.seed,
        "engine_load_s": round(load_s, 1),
        "typed_s": round(typed_s, 1),
        "keystrokes": state.keystrokes,
        "requests": len(state.requests),
        "answered": len(answered),
        "missing": len(state.requests) - len(answered),
        "outcomes": dict(outcomes),
        "served": served,
        "latency_ms": {
            "p50": round(_percentile(latencies, 50), 1),
            "p95": round(_percentile(latencies, 95), 1),
            "p99": round(_percentile(latencies, 99), 1),
            "max": round(max(latencies, default=float("nan")), 1),
            "mean": round(statistics.fmean(latencies), 1) if latencies else None,
        },
        "unfinished_after_settle": unfinished,
        "settle_s": round(settle_s, 1),
        "alive": alive,
        "rss_mib": {
            "server_start": round(start_memory[0], 1),
            "server_end": round(end_memory[0], 1),
            "engine_start": round(start_memory[1], 1),
            "engine_end": round(end_memory[1], 1),
            "server_peak": round(max((m[1] for m in state.memory), default=0.0), 1),
            "engine_peak": round(max((m[2] for m in state.memory), default=0.0), 1),
        },
        "memory": [tuple(round(x, 1) for x in m) for m in state.memory],
        "timeline": [
            (round(r.sent, 3), round((r.answered - r.sent) * 1000, 1), r.outcome)
            for r in answered
            if r.answered is not None
        ],
        "modules": [m for _, _, _, m in docs],
    }


def section(result: dict[str, Any], command: str, machine: str) -> str:
    lat, rss, out = result["latency_ms"], result["rss_mib"], result["outcomes"]
    served = result["served"]
    return "\n".join(
        [
            SECTION,
            "",
            f"`bench/load.py`: {result['documents']} documents typed into at the same time, "
            f"each at {result['cps']:g} characters a second, for {result['minutes']:g} "
            f"minutes, on `coder-lsp serve --stdio --profile {result['profile']}` (the "
            "embedded engine). Each keystroke is an incremental `didChange` and an automatic "
            "inline completion, after a `$/cancelRequest` for the document's previous request "
            "if it is still pending (as VS Code does). The text typed is standard library code "
            "(one module per document, from a point past its imports). After the typing, the "
            "bench waits for every answer and for the engine to settle, then reads the "
            "engine's unfinished requests.",
            "",
            f"- Machine: {machine}",
            f"- Command: `{command}`",
            "",
            "| measure | value |",
            "| --- | --- |",
            f"| keystrokes (= completion requests) | {result['keystrokes']:,} in "
            f"{result['typed_s']:.0f} s |",
            f"| answered / without an answer | {result['answered']:,} / {result['missing']} |",
            "| outcomes | "
            + ", ".join(f"{k} {v:,}" for k, v in sorted(out.items(), key=lambda kv: -kv[1]))
            + " |",
            f"| served by (server counters) | engine {served['engine']:,}, cache "
            f"{served['cache']:,}, follow {served['follow']:,}, gate {served['gate']:,} |",
            f"| latency p50 / p95 / p99 (answered, not cancelled) | {lat['p50']} / "
            f"{lat['p95']} / {lat['p99']} ms (max {lat['max']}) |",
            f"| unfinished engine requests after settling | **{result['unfinished_after_settle']}**"
            f" ({result['settle_s']} s to settle) |",
            f"| server RSS start → end (peak) | {rss['server_start']} → {rss['server_end']} MiB "
            f"({rss['server_peak']}) |",
            f"| engine processes' RSS start → end (peak) | {rss['engine_start']} → "
            f"{rss['engine_end']} MiB ({rss['engine_peak']}) |",
            f"| server alive at the end | {'yes' if result['alive'] else 'no'} |",
            "",
            "Cancelled requests are those the next keystroke cancelled before their answer (the "
            "server answers them with `RequestCancelled`); latency counts the others. Most "
            "keystrokes end at the gate (mid-identifier, no suggestion wanted) in a few ms; the "
            "p99 is the engine's generations, which queue when 16 documents ask at once.",
            "",
            "![load: latency and memory over the run](load.png)",
            "",
            f"Raw results: `bench/results/{OUTPUT.name}`.",
            "",
        ]
    )


def plot(result: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    timeline = result["timeline"]
    t0 = min((t for t, _, _ in timeline), default=0.0)
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 3.6))
    for outcome, color in (("empty", "#999999"), ("suggestion", "#4c72b0")):
        points = [(t - t0, ms) for t, ms, o in timeline if o == outcome]
        if points:
            left.scatter(*zip(*points, strict=True), s=2, color=color, label=outcome)
    left.set_yscale("log")
    left.set_xlabel("seconds")
    left.set_ylabel("latency (ms, log)")
    left.set_title("completion latency (answered, not cancelled)")
    left.legend(markerscale=4)
    memory = result["memory"]
    if memory:
        xs = [m[0] for m in memory]
        right.plot(xs, [m[1] for m in memory], label="server")
        right.plot(xs, [m[2] for m in memory], label="engine processes")
    right.set_xlabel("seconds")
    right.set_ylabel("RSS (MiB)")
    right.set_ylim(bottom=0)
    right.set_title("memory")
    right.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--profile", default="tiny-moe")
    parser.add_argument("--documents", type=int, default=16)
    parser.add_argument("--cps", type=float, default=10.0)
    parser.add_argument("--minutes", type=float, default=3.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--write-readme", action="store_true")
    args = parser.parse_args(argv)
    machine = describe()
    result = asyncio.run(run(args))
    OUTPUT.parent.mkdir(exist_ok=True)
    OUTPUT.write_text(json.dumps({"machine": machine, **result}) + "\n")
    summary = {k: v for k, v in result.items() if k not in ("memory", "timeline")}
    print(json.dumps(summary, indent=1))
    if args.write_readme:
        command = " ".join([".venv/bin/python bench/load.py", *map(shlex.quote, sys.argv[1:])])
        replace_section(README, SECTION, section(result, command, machine))
        plot(result, PLOT)
    return 0 if result["missing"] == 0 and result["unfinished_after_settle"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
