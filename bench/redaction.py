"""Secret redaction: what it finds, what it leaves alone, and what it costs per completion.

* Detection on the planted corpus (`bench/secret_corpus.py`, seeds 0-4: 22 kinds of files,
  35 kinds of fake secrets): a value counts as leaked when any 8-character piece of it is
  left in its redacted file. The same for the maintained catalog alone, the own rules alone,
  and detect-secrets (its `scan_line`, per line; a value counts as found when a finding's
  value contains it).
* Clean corpus: generated files of the same shapes plus standard-library modules; the share
  of lines that redaction alters.
* Cost: the completion path (`render_prompt`, as a completion and `coder-lsp context` run it)
  at cursor positions over the planted corpus and standard-library modules as a workspace,
  with the index and recent documents as context sources: the time spent in redaction per
  prompt (every `redact` call the prompt made), the whole assembly with and without
  redaction, and whether the prompt stayed in its token budget and context time box.

    .venv/bin/python bench/redaction.py [--positions 600] [--write-readme]
"""

from __future__ import annotations

import os
import sys

if sys.path and os.path.abspath(sys.path[0] or os.curdir) == os.path.dirname(
    os.path.abspath(__file__)
):
    sys.path[0] = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

import argparse
import contextlib
import gc
import json
import random
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from bench.report import describe, replace_section
from bench.secret_corpus import (
    CorpusFile,
    clean_corpus,
    leaks,
    ordinary_code,
    planted_corpus,
    write,
)

HERE = Path(__file__).resolve().parent
README = HERE / "README.md"
PLOT = HERE / "redaction.png"
OUTPUT = HERE / "results" / "redaction.json"
SECTION = "## Secret redaction"
SEEDS = (0, 1, 2, 3, 4)


def _percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * (len(ordered) - 1) + 0.5))]


def detection(redact: Callable[[str], str]) -> dict[str, Any]:
    """Planted values left (any 8-piece) by `redact` over seeds 0-4, and clean lines altered."""
    planted = leaked = 0
    missed: dict[str, int] = {}
    for seed in SEEDS:
        for f in planted_corpus(seed):
            out = redact(f.text)
            planted += len(f.planted)
            for kind, _ in leaks(out, f.planted):
                leaked += 1
                missed[kind] = missed.get(kind, 0) + 1
    lines = altered = 0
    for f in clean_corpus(0) + ordinary_code():
        out = redact(f.text)
        before, after = f.text.split("\n"), out.split("\n")
        lines += len(before)
        if len(before) == len(after):
            altered += sum(a != b for a, b in zip(before, after, strict=True))
        else:  # a multi-line replacement: count the lines it spans as altered
            altered += abs(len(before) - len(after)) + 1
    return {
        "planted": planted,
        "leaked": leaked,
        "missed_kinds": missed,
        "clean_lines": lines,
        "clean_altered": altered,
    }


def detect_secrets_redactor() -> Callable[[str], str] | None:
    """detect-secrets' line scanner as a redactor (values it reports are replaced)."""
    try:
        from detect_secrets.core.scan import scan_line
        from detect_secrets.settings import default_settings
    except ImportError:
        return None

    def redact(text: str) -> str:
        out = []
        with default_settings():
            for line in text.split("\n"):
                for found in scan_line(line):
                    value = found.secret_value or ""
                    if len(value) >= 8:
                        line = line.replace(value, "<redacted>")
                out.append(line)
        return "\n".join(out)

    return redact


def cost(positions: int, seed: int) -> dict[str, Any]:
    """Redaction time per completion prompt on the real assembly path: at a new cursor with
    every cache cleared first, then on the keystroke after it (a character typed there)."""
    from engine.models.tiny_moe import SPECIAL_TOKENS, train_byte_level_bpe
    from engine.profiles import get_profile
    from engine.templates import template_for
    from engine.tokenizer import HFTokenizer
    from lsp_server.completion.pipeline import PromptParts, PromptRefused, render_prompt
    from lsp_server.config import Settings
    from lsp_server.privacy import catalog
    from lsp_server.privacy.redact import Redactor
    from lsp_server.workspace.service import WorkspaceService

    files: list[CorpusFile] = planted_corpus(seed) + ordinary_code()
    root = Path(tempfile.mkdtemp(prefix="redaction-bench-"))
    write(files, root)
    settings = Settings()
    service = WorkspaceService([root], settings, root / ".cache")
    service.index.build()
    for f in files:
        service.recent.touch((root / f.path).as_uri(), f.text, f.language_id)
    tokenizer = HFTokenizer(
        train_byte_level_bpe([f.text for f in files], list(SPECIAL_TOKENS), 4096)
    )
    budget = min(settings.completion.prompt_tokens, get_profile("deepseek-v2-lite").prompt_tokens)

    class Timed(Redactor):
        spent = 0.0

        def redact(self, text: str) -> Any:
            started = time.perf_counter()
            try:
                return super().redact(text)
            finally:
                Timed.spent += time.perf_counter() - started

    # The index holds millions of objects: a full garbage collection in the middle of a
    # measured call would be counted as redaction. Collect before each position instead.
    gc.collect()
    gc.freeze()
    rng = random.Random(seed)
    samples: dict[str, list[float]] = {"cold": [], "opened": [], "keystroke": []}
    with_ms, without_ms, over_budget, timed_out, refused = [], [], 0, 0, 0
    plain = PromptParts(template_for("deepseek"), tokenizer, settings, budget, None)
    for _ in range(positions):
        f = rng.choice(files)
        offset = rng.randrange(len(f.text) + 1)
        path = str(root / f.path)
        started = time.perf_counter()
        with contextlib.suppress(PromptRefused):
            render_prompt(plain, f.text, offset, f.language_id, path=path, workspace=service)
        without_ms.append((time.perf_counter() - started) * 1000)
        typed = f.text[:offset] + "x" + f.text[offset:]
        cases = (
            ("cold", f.text, offset),
            ("opened", f.text, offset),
            ("keystroke", typed, offset + 1),
        )
        for case, text, at in cases:
            if case != "keystroke":
                with catalog._cache_lock:
                    catalog._cache.clear()
                redactor = Timed()  # no remembered spans
                if case == "opened":  # as the server does on didOpen, in a worker thread
                    redactor.prepare(f.text)
                parts = PromptParts(template_for("deepseek"), tokenizer, settings, budget, redactor)
            gc.collect()
            Timed.spent = 0.0
            started = time.perf_counter()
            try:
                prompt, ctx = render_prompt(
                    parts, text, at, f.language_id, path=path, workspace=service
                )
            except PromptRefused:
                refused += case == "cold"
                break
            if case == "cold":
                with_ms.append((time.perf_counter() - started) * 1000)
                over_budget += prompt.prompt_tokens > budget
                timed_out += ctx.timed_out
            samples[case].append(Timed.spent * 1000)
    service.stop()

    def figures(values: list[float]) -> dict[str, float]:
        return {
            "median": statistics.median(values),
            "p95": _percentile(values, 0.95),
            "max": max(values),
        }

    return {
        "positions": positions,
        "refused": refused,
        "redact_ms": figures(samples["cold"]),
        "redact_keystroke_ms": figures(samples["keystroke"]),
        "redact_opened_ms": figures(samples["opened"]),
        "assembly_ms_with": figures(with_ms),
        "assembly_ms_without": figures(without_ms),
        "over_budget": over_budget,
        "context_timed_out": timed_out,
        "budget_tokens": budget,
        "context_ms": settings.completion.context_ms,
        "samples": samples["cold"],
        "keystroke_samples": samples["keystroke"],
    }


def run(args: argparse.Namespace, argv: Sequence[str]) -> dict[str, Any]:
    from lsp_server.privacy import catalog
    from lsp_server.privacy.redact import Redactor

    ours = Redactor()
    catalog_only = Redactor()
    catalog_only._rules = []
    own_only = Redactor(use_catalog=False)
    results = {
        "coder-lsp (catalog + own rules)": detection(lambda t: ours.redact(t).text),
        "catalog alone (kingfisher)": detection(lambda t: catalog_only.redact(t).text),
        "own rules alone": detection(lambda t: own_only.redact(t).text),
    }
    other = detect_secrets_redactor()
    if other is not None:
        results["detect-secrets 1.5 (scan_line)"] = detection(other)
    with catalog._cache_lock:
        catalog._cache.clear()
    fresh = Redactor()  # nothing remembered from the detection runs
    speed = {"coder-lsp": _text_speed(lambda t: fresh.redact(t).text)}
    if other is not None:
        speed["detect-secrets"] = _text_speed(other, limit=40)
    return {
        "machine": describe(),
        "command": ".venv/bin/python bench/redaction.py " + " ".join(argv),
        "catalog": catalog.describe(),
        "detection": results,
        "speed_6kb_ms": speed,
        "cost": cost(args.positions, args.seed),
    }


def _text_speed(redact: Callable[[str], str], limit: int = 400) -> dict[str, float]:
    """Milliseconds to redact 6 KB pieces of the standard-library modules."""
    texts = [f.text[i : i + 6000] for f in ordinary_code() for i in range(0, len(f.text), 6000)]
    times = []
    for text in texts[:limit]:
        started = time.perf_counter()
        redact(text)
        times.append((time.perf_counter() - started) * 1000)
    return {"median": statistics.median(times), "p95": _percentile(times, 0.95)}


def markdown(data: dict[str, Any]) -> str:
    c = data["cost"]
    lines = [
        SECTION,
        "",
        "`bench/redaction.py`: the planted corpus of `bench/secret_corpus.py` (seeds 0-4: 22",
        "kinds of files from Python settings modules to Kubernetes Secrets, Terraform and `.env`,",
        "35 kinds of fake secrets), a clean corpus of the same shapes plus standard-library",
        "modules, and the completion path's assembly at random cursor positions over a",
        "workspace of both. A value is leaked when any 8-character piece of it is left.",
        "detect-secrets runs through `scan_line`, its plugins without the filters of a",
        "baseline scan (which works on files, not on prompt windows): hence its noise.",
        "",
        f"- Machine: {data['machine']}",
        f"- Command: `{data['command']}`",
        f"- Catalog: {data['catalog']}",
        "",
        "| detector | planted values | leaked | clean lines | altered |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for name, r in data["detection"].items():
        share = r["clean_altered"] / r["clean_lines"] * 100
        lines.append(
            f"| {name} | {r['planted']} | {r['leaked']} ({r['leaked'] / r['planted'] * 100:.1f}%)"
            f" | {r['clean_lines']} | {r['clean_altered']} ({share:.2f}%) |"
        )
    speed = data["speed_6kb_ms"]
    lines += [
        "",
        "Time to redact 6 KB of standard-library code: "
        + "; ".join(
            f"{name} median {s['median']:.2f} ms, p95 {s['p95']:.2f} ms"
            for name, s in speed.items()
        )
        + ".",
        "",
        f"On the completion path ({c['positions']} positions, budget {c['budget_tokens']} "
        f"tokens, context time box {c['context_ms']:g} ms):",
        "",
        "| measure | median | p95 | max |",
        "| --- | ---: | ---: | ---: |",
        f"| redaction per prompt, new cursor, caches cleared (ms) | "
        f"{c['redact_ms']['median']:.3f} | {c['redact_ms']['p95']:.3f} | "
        f"{c['redact_ms']['max']:.3f} |",
        f"| redaction per prompt, new cursor in a document scanned when opened (ms) | "
        f"{c['redact_opened_ms']['median']:.3f} | {c['redact_opened_ms']['p95']:.3f} | "
        f"{c['redact_opened_ms']['max']:.3f} |",
        f"| redaction per prompt, the next keystroke (ms) | "
        f"{c['redact_keystroke_ms']['median']:.3f} | {c['redact_keystroke_ms']['p95']:.3f} | "
        f"{c['redact_keystroke_ms']['max']:.3f} |",
        f"| prompt assembly with redaction (ms) | {c['assembly_ms_with']['median']:.2f} | "
        f"{c['assembly_ms_with']['p95']:.2f} | |",
        f"| prompt assembly without (ms) | {c['assembly_ms_without']['median']:.2f} | "
        f"{c['assembly_ms_without']['p95']:.2f} | |",
        "",
        "Garbage is collected before each position (not inside the measured calls). The",
        "server scans a document for secrets in a worker thread when it is opened (second",
        "row); a keystroke rescans only the chunk it changed (third row). The first row is",
        "the worst case: nothing known yet.",
        "",
        f"Prompts over their token budget: {c['over_budget']}; context cut by its time box: "
        f"{c['context_timed_out']}; positions refused (inside a secret or a credentials "
        f"file): {c['refused']}.",
        "",
        "![redaction cost](redaction.png)",
        "",
    ]
    return "\n".join(lines) + "\n"


def plot(data: dict[str, Any], target: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    samples = data["cost"]["samples"]
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.4))
    left.hist(samples, bins=40, color="tab:blue", alpha=0.7, label="new cursor, cold")
    left.hist(data["cost"]["keystroke_samples"], bins=40, color="tab:green", alpha=0.7,
              label="next keystroke")  # fmt: skip
    left.axvline(1.0, color="tab:red", linestyle="--", label="1 ms target")
    left.set_xlabel("redaction per completion prompt (ms)")
    left.set_ylabel("prompts")
    left.legend()
    names = list(data["detection"])
    leaked = [r["leaked"] / r["planted"] * 100 for r in data["detection"].values()]
    altered = [r["clean_altered"] / r["clean_lines"] * 100 for r in data["detection"].values()]
    xs = range(len(names))
    right.bar([x - 0.2 for x in xs], leaked, 0.4, label="planted values leaked (%)")
    right.bar([x + 0.2 for x in xs], altered, 0.4, label="clean lines altered (%)")
    right.set_xticks(list(xs), [n.split(" (")[0] for n in names], fontsize=7, rotation=15)
    right.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(target, dpi=100)
    plt.close(fig)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--positions", type=int, default=600)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", type=Path, default=OUTPUT)
    parser.add_argument("--write-readme", action="store_true")
    args = parser.parse_args(argv)
    data = run(args, argv)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
    print(markdown(data))
    if args.write_readme:
        plot(data, PLOT)
        replace_section(README, SECTION, markdown(data))
    return 0


if __name__ == "__main__":
    sys.exit(main())
