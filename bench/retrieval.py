"""Retrieval check without a model, on the running interpreter's standard library.

Take call sites ``name(`` of functions and methods whose only definition in the index lives in
another file, blank the call's line (cursor after its indentation, as if the user were about
to write it), assemble the repository context as a completion would, and count how often the
callee's definition is in it. Reports recall and context assembly latency; with
``--write-readme`` also updates the "Context assembly and retrieval" section of
bench/README.md.

    .venv/bin/python bench/retrieval.py [--sites 300] [--seed 0] [--budget 1024] [--write-readme]
"""

from __future__ import annotations

import os
import sys

if sys.path and os.path.abspath(sys.path[0] or os.curdir) == os.path.dirname(
    os.path.abspath(__file__)
):
    sys.path[0] = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

import argparse
import builtins
import os
import random
import re
import statistics
import sys
import sysconfig
import time
from dataclasses import dataclass
from pathlib import Path

from lsprotocol.types import SymbolKind

from bench.report import describe, replace_section
from engine.profiles import cache_root, prepare_model
from engine.prompt import build_prompt
from engine.templates import template_for
from engine.tokenizer import HFTokenizer
from lsp_server.context.gather import RepoContext, gather_context, module_matches, visible_chars
from lsp_server.context.identifiers import imports
from lsp_server.workspace.index import WorkspaceIndex
from lsp_server.workspace.symbols import Symbol

README = Path(__file__).with_name("README.md")
PLOT = Path(__file__).with_name("retrieval.png")
SECTION = "## Context assembly and retrieval"
EXCLUDE = ["site-packages/**", "dist-packages/**", "lib2to3/tests/data/**"]
CALL = re.compile(r"(?:(\.)\s*|(?<![\w.]))([A-Za-z_]\w*)\s*\(")
BUILTINS = frozenset(dir(builtins))
BUILTIN_METHODS = frozenset(
    name
    for t in (str, bytes, bytearray, list, dict, set, frozenset, tuple, int, float, complex)
    for name in dir(t)
)
FUNCTION_KINDS = {int(SymbolKind.Function), int(SymbolKind.Method)}
MAX_DEFINITIONS = 5


@dataclass
class Site:
    path: str
    line: int
    name: str
    attribute: bool
    """Called as ``x.name(`` rather than ``name(``."""
    callees: list[Symbol]


def find_sites(index: WorkspaceIndex) -> list[Site]:
    """Calls of functions and methods defined (1 to `MAX_DEFINITIONS` times) only in other
    files, where the call really means them: a bare `name(` must be imported by name from a
    module that the definition's file matches; `x.name(` must not be a method of a builtin
    type (`s.strip(`)."""
    sites: list[Site] = []
    for file in index.files():
        if file.suffix != ".py":
            continue
        path = str(file)
        try:
            text = file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        imported = {i.alias: i for i in imports(text, "python") if i.name}
        for number, line in enumerate(text.split("\n")):
            stripped = line.lstrip()
            if not stripped or stripped.startswith(("#", "def ", "class ", "async def ", "@")):
                continue
            for m in CALL.finditer(line):
                attribute, name = bool(m.group(1)), m.group(2)
                imp = None if attribute else imported.get(name)
                if attribute and name in BUILTIN_METHODS:
                    continue
                if not attribute:
                    if name in BUILTINS or imp is None:
                        continue  # a local, a builtin, or a star import: not checkable
                    name = imp.name
                defs = index.definitions(name)
                if not 1 <= len(defs) <= MAX_DEFINITIONS:
                    continue
                if any(d.path == path or d.kind not in FUNCTION_KINDS for d in defs):
                    continue
                if imp is not None and not all(module_matches(d.path, imp.module) for d in defs):
                    continue
                sites.append(Site(path, number, name, attribute, defs))
                break  # one site per line
    return sites


def blank(text: str, line: int) -> tuple[str, int]:
    """`text` with `line` reduced to its indentation, and the offset after it."""
    lines = text.split("\n")
    indent = lines[line][: len(lines[line]) - len(lines[line].lstrip())]
    lines[line] = indent
    offset = sum(len(s) + 1 for s in lines[:line]) + len(indent)
    return "\n".join(lines), offset


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sites", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--budget", type=int, default=1024, help="context tokens")
    parser.add_argument("--prompt-budget", type=int, default=4096, help="whole prompt tokens")
    parser.add_argument("--root", type=Path, default=Path(sysconfig.get_paths()["stdlib"]))
    parser.add_argument("--write-readme", action="store_true")
    args = parser.parse_args()

    model_dir = prepare_model("builtin:tiny-moe")
    tokenizer = HFTokenizer.from_model(model_dir)
    template = template_for("deepseek")
    started = time.perf_counter()
    index = WorkspaceIndex([args.root], exclude=EXCLUDE, cache_dir=cache_root() / "index")
    stats = index.build()
    took = time.perf_counter() - started
    print(f"index: {stats.files} files, {stats.symbols} symbols in {took:.1f} s", file=sys.stderr)
    all_sites = find_sites(index)
    unique = [s for s in all_sites if len(s.callees) == 1]
    rng = random.Random(args.seed)
    sample = rng.sample(unique, min(args.sites, len(unique)))
    print(f"{len(all_sites)} call sites, {len(unique)} with a unique callee", file=sys.stderr)

    # Prompt shares as the completion pipeline uses them: the code part's visible characters
    # are estimated at 3.5 per token.
    code_tokens = args.prompt_budget - args.budget
    visible = visible_chars(code_tokens)
    hits = {False: 0, True: 0}
    totals = {False: 0, True: 0}
    cold_ms: list[float] = []
    warm_ms: list[float] = []
    prompt_ms: list[float] = []
    tokens: list[int] = []
    timed_out = 0
    misses: list[str] = []

    def gather(blanked: str, offset: int, path: str) -> RepoContext:
        return gather_context(
            path=path,
            text=blanked,
            offset=offset,
            language_id="python",
            index=index,
            recent=None,
            tokenizer=tokenizer,
            budget_tokens=args.budget,
            root=str(args.root),
            visible=visible,
        )

    for site in sample:
        text = Path(site.path).read_text(encoding="utf-8")
        blanked, offset = blank(text, site.line)
        t0 = time.perf_counter()
        ctx = gather(blanked, offset, site.path)
        t1 = time.perf_counter()
        build_prompt(
            template,
            tokenizer,
            blanked[:offset],
            blanked[offset:],
            args.prompt_budget,
            context=ctx.files(),
            file_path=ctx.file_path,
            context_share=args.budget / args.prompt_budget,
        )
        t2 = time.perf_counter()
        # The next keystroke: one more character typed at the cursor.
        typed = blanked[:offset] + "x" + blanked[offset:]
        gather(typed, offset + 1, site.path)
        t3 = time.perf_counter()
        cold_ms.append((t1 - t0) * 1000)
        prompt_ms.append((t2 - t1) * 1000)
        warm_ms.append((t3 - t2) * 1000)
        tokens.append(ctx.tokens)
        timed_out += ctx.timed_out
        callee = site.callees[0]
        found = any(
            s.kind == "definition" and s.source == callee.path and s.line == callee.start_line
            for s in ctx.snippets
        )
        totals[site.attribute] += 1
        hits[site.attribute] += found
        if not found:
            misses.append(
                f"{os.path.relpath(site.path, args.root)}:{site.line + 1} "
                f"{'.' if site.attribute else ''}{site.name}"
            )

    n = len(sample)
    recall = sum(hits.values()) / n if n else 0.0

    def rate(attribute: bool) -> str:
        t = totals[attribute]
        return f"{hits[attribute] / t:.1%} of {t}" if t else "n/a"

    def dist(values: list[float]) -> str:
        return (
            f"{statistics.median(values):.1f} / {percentile(values, 0.95):.1f} / "
            f"{max(values):.1f} ms"
        )

    cold_p95 = percentile(cold_ms, 0.95)
    rows = [
        ("call sites sampled (seed)", f"{n} ({args.seed}) of {len(unique)}", "", ""),
        (
            "recall: callee's definition in the context",
            f"{recall:.1%}",
            ">= 70%",
            "yes" if recall >= 0.7 else "no",
        ),
        ("recall, bare calls `name(`", rate(False), "", ""),
        ("recall, attribute calls `x.name(`", rate(True), "", ""),
        (
            "context assembly, new file and cursor (median / p95 / max)",
            dist(cold_ms),
            "p95 <= 20 ms",
            "yes" if cold_p95 <= 20 else "no",
        ),
        ("context assembly, next keystroke (median / p95 / max)", dist(warm_ms), "", ""),
        ("requests cut by the 15 ms time box", f"{timed_out / n:.1%}", "", ""),
        (
            f"context tokens used (median; budget {args.budget})",
            f"{statistics.median(tokens):.0f}",
            "",
            "",
        ),
        (
            f"prompt rendering, {args.prompt_budget} tokens (median / p95 / max)",
            dist(prompt_ms),
            "",
            "",
        ),
    ]
    for row in rows:
        print(f"{row[0]}: {row[1]}")
    print("first misses: " + ", ".join(misses[:15]), file=sys.stderr)
    if args.write_readme:
        plot(cold_ms, warm_ms, PLOT)
        write_readme(args, stats.files, stats.symbols, rows)
    return 0


def plot(cold: list[float], warm: list[float], target: Path) -> None:
    """Latency distributions of context assembly, cold and on the next keystroke."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 3.5))
    top = max(max(cold), max(warm), 20.0)
    bins = [i * top / 40 for i in range(41)]
    ax.hist(cold, bins=bins, alpha=0.6, label="new file and cursor")
    ax.hist(warm, bins=bins, alpha=0.6, label="next keystroke")
    for values, style in ((cold, "-"), (warm, "--")):
        ax.axvline(percentile(values, 0.95), color="black", linestyle=style, linewidth=1)
    ax.axvline(20, color="red", linewidth=1, label="target p95 (20 ms)")
    ax.set_xlabel("context assembly (ms); black lines: p95")
    ax.set_ylabel("requests")
    ax.legend()
    fig.tight_layout()
    fig.savefig(target, dpi=100)
    plt.close(fig)


def write_readme(
    args: argparse.Namespace, files: int, symbols: int, rows: list[tuple[str, str, str, str]]
) -> None:
    table = "\n".join(f"| {' | '.join(row)} |" for row in rows)
    body = f"""{SECTION}

The retrieval check without a model (`bench/retrieval.py`): on the standard library of the
running interpreter ({files} files, {symbols} symbols indexed), take call sites of functions
and methods whose only definition in the index is in another file (a bare `name(` must be
imported by name from that module; `x.name(` must not be a method of a builtin type), blank
the call's line (cursor after its indentation, as if about to type it), assemble the context
as a completion does (`gather_context`, {args.budget} context tokens of a
{args.prompt_budget}-token prompt, tiny-moe's tokenizer, 15 ms time box, no recent
documents), and count how often the callee's definition is in the context. Latency is per
request on a new file and cursor (caches as the preceding sites left them), then again after
one more character is typed.

- Machine: {describe()}
- Command: `.venv/bin/python bench/retrieval.py --sites {args.sites} --seed {args.seed} \
--budget {args.budget} --write-readme`

| measure | result | target | met |
| --- | --- | --- | --- |
{table}

![context assembly latency]({PLOT.name})
"""
    replace_section(README, SECTION, body)


if __name__ == "__main__":
    sys.exit(main())
