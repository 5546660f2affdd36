"""The protocol fuzzer, long: more seeds and messages than `make test` runs.

The fuzzer (`tests/lsp/fuzz.py`) speaks raw LSP to `coder-lsp serve --stdio` with the remote
backend pointed at a recording stub on 127.0.0.1 (no model: the run is about the server).
Each seed is a fresh server. The oracles are the test's: every request answered exactly once
with the right error code, the server alive, every document's text equal to a reference
model of the edits.

    .venv/bin/python bench/fuzz.py [--seeds 0 1 2 3 4] [--messages 50000] [--write-readme]
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
import shlex
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.report import describe, replace_section
from tests.lsp.fuzz import fuzz

HERE = Path(__file__).resolve().parent
README = HERE / "README.md"
PLOT = HERE / "fuzz.png"
OUTPUT = HERE / "results" / "fuzz.json"
SECTION = "## Protocol fuzzer"


async def run(seeds: Sequence[int], messages: int) -> list[dict[str, Any]]:
    rows = []
    for seed in seeds:
        report = await fuzz(seed, messages)
        row = {
            "seed": seed,
            "messages": report.messages,
            "requests": report.requests,
            "probes": report.probes,
            "seconds": round(report.seconds, 1),
            "alive": report.alive,
            "missing": len(report.missing),
            "extra": len(report.extra),
            "wrong_codes": len(report.wrong_codes),
            "divergences": len(report.divergences),
            "kinds": dict(report.kinds),
            "examples": (report.missing[:3], report.wrong_codes[:3], report.divergences[:2]),
        }
        rows.append(row)
        print(
            f"seed {seed}: {row['messages']} messages ({row['requests']} requests, "
            f"{row['probes']} probes) in {row['seconds']} s; alive {row['alive']}, missing "
            f"{row['missing']}, answered twice {row['extra']}, wrong codes "
            f"{row['wrong_codes']}, divergences {row['divergences']}",
            flush=True,
        )
    return rows


def section(rows: list[dict[str, Any]], command: str, machine: str) -> str:
    total = sum(r["messages"] for r in rows)
    requests = sum(r["requests"] for r in rows)
    seconds = sum(r["seconds"] for r in rows)
    failures = {
        "server deaths": sum(not r["alive"] for r in rows),
        "requests without an answer": sum(r["missing"] for r in rows),
        "requests answered twice": sum(r["extra"] for r in rows),
        "wrong error codes": sum(r["wrong_codes"] for r in rows),
        "document divergences": sum(r["divergences"] for r in rows),
    }
    kinds: Counter[str] = Counter()
    for r in rows:
        kinds.update(r["kinds"])
    lines = [
        SECTION,
        "",
        "`bench/fuzz.py` runs the protocol fuzzer of the test suite (`tests/lsp/fuzz.py`, 20,000",
        "messages of seed 0 in `make test`) longer: raw LSP frames to `coder-lsp serve --stdio`,",
        "the remote backend on a recording stub, one fresh server per seed. Oracles: one answer",
        "per request with the right error code, the server alive, each document's text equal to",
        "a reference model of the edits (seen through the prompts the stub records).",
        "",
        f"- Machine: {machine}",
        f"- Command: `{command}`",
        "",
        "| seed | messages | requests | document probes | seconds | failures |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        bad = r["missing"] + r["extra"] + r["wrong_codes"] + r["divergences"] + (not r["alive"])
        lines.append(
            f"| {r['seed']} | {r['messages']:,} | {r['requests']:,} | {r['probes']:,} | "
            f"{r['seconds']} | {bad} |"
        )
    lines += [
        f"| **all** | **{total:,}** | {requests:,} | {sum(r['probes'] for r in rows):,} | "
        f"{seconds:.0f} | **{sum(failures.values())}** |",
        "",
        "Failures by oracle: " + ", ".join(f"{k} {v}" for k, v in failures.items()) + ".",
        "",
        "Messages by kind (all seeds): "
        + ", ".join(f"{k} {v:,}" for k, v in kinds.most_common())
        + ".",
        "",
        "![fuzzer messages by kind](fuzz.png)",
        "",
        f"Raw results: `bench/results/{OUTPUT.name}`.",
        "",
    ]
    return "\n".join(lines)


def plot(rows: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    kinds: Counter[str] = Counter()
    for r in rows:
        kinds.update(r["kinds"])
    names = [k for k, _ in kinds.most_common()]
    fig, ax = plt.subplots(figsize=(9, 3.6))
    ax.barh(names[::-1], [kinds[n] for n in names[::-1]], color="#4c72b0")
    ax.set_xscale("log")
    ax.set_xlabel("messages (log scale)")
    total = sum(r["messages"] for r in rows)
    ax.set_title(f"protocol fuzzer: {total:,} messages, {len(rows)} seeds, 0 failures expected")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--messages", type=int, default=50_000, help="per seed")
    parser.add_argument("--write-readme", action="store_true")
    args = parser.parse_args(argv)
    machine = describe()
    rows = asyncio.run(run(args.seeds, args.messages))
    OUTPUT.parent.mkdir(exist_ok=True)
    OUTPUT.write_text(json.dumps({"machine": machine, "seeds": rows}, indent=1) + "\n")
    failed = any(
        r["missing"] or r["extra"] or r["wrong_codes"] or r["divergences"] or not r["alive"]
        for r in rows
    )
    if args.write_readme:
        command = " ".join([".venv/bin/python bench/fuzz.py", *map(shlex.quote, sys.argv[1:])])
        replace_section(README, SECTION, section(rows, command, machine))
        plot(rows, PLOT)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
