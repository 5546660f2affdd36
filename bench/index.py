"""Benchmark the workspace index on the running interpreter's standard library.

Measures, each build in a fresh process: a cold index (empty cache; with the default worker
processes and in one process), a warm start (the full `build()` with the cache: load, walk,
stat, publish), peak memory (max RSS of the indexing process, and the index's Python heap by
tracemalloc). Then, on a copy of the standard library in a temporary directory (the real one
is never written): the time from writing a change into one file until `search()` returns the
new symbol through the watcher path (watchdog -> debounce -> `update_files`), and `search()`
latencies over realistic queries (names sampled from the index, their prefixes, their
initials). Writes a table into `bench/README.md` and a plot to `bench/index.png`.

    .venv/bin/python bench/index.py [--updates 40] [--queries 210] [--no-readme]
"""

from __future__ import annotations

import os
import sys

if sys.path and os.path.abspath(sys.path[0] or os.curdir) == os.path.dirname(
    os.path.abspath(__file__)
):
    sys.path[0] = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

import argparse
import json
import random
import resource
import shutil
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.report import describe, replace_section

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from lsp_server.workspace.index import WorkspaceIndex, word_form  # noqa: E402
from lsp_server.workspace.watcher import Watcher  # noqa: E402

README = Path(__file__).with_name("README.md")
PLOT = Path(__file__).with_name("index.png")
SECTION = "## Workspace index"
CONTEXT_SECTION = "## Context assembly and retrieval"
EXCLUDE = ["site-packages/**", "dist-packages/**", "lib2to3/tests/data/**"]
STDLIB = Path(sysconfig.get_paths()["stdlib"])
WATCH_START_S: list[float] = []
TARGETS = {"cold_s": 20.0, "warm_s": 2.0, "update_ms": 100.0, "memory_mb": 300.0}


def rss_mb() -> float:
    """Current resident set size of this process."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def child(phase: str, root: Path, cache: Path, workers: int | None) -> None:
    """One build in this fresh process; prints a JSON line."""
    import tracemalloc

    base_rss = rss_mb()
    if phase == "heap":
        tracemalloc.start()
    started = time.perf_counter()
    index = WorkspaceIndex([root], exclude=EXCLUDE, cache_dir=cache, workers=workers)
    stats = index.build()
    seconds = time.perf_counter() - started
    heap = tracemalloc.get_traced_memory() if phase == "heap" else (0, 0)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    print(
        json.dumps(
            {
                "seconds": seconds,
                "build_seconds": stats.seconds,
                "files": stats.files,
                "symbols": stats.symbols,
                "parsed": stats.parsed,
                "reused": stats.reused,
                "base_rss_mb": base_rss,
                "rss_mb": rss_mb(),
                "max_rss_mb": usage.ru_maxrss / 1024,
                "children_max_rss_mb": children.ru_maxrss / 1024,
                "heap_mb": heap[0] / 2**20,
                "heap_peak_mb": heap[1] / 2**20,
                "cache_mb": sum(f.stat().st_size for f in cache.iterdir()) / 2**20,
            }
        )
    )


def run_child(phase: str, root: Path, cache: Path, workers: int | None = None) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--child", phase, str(root), str(cache)]
    if workers is not None:
        cmd += ["--workers", str(workers)]
    started = time.perf_counter()
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    result["process_seconds"] = time.perf_counter() - started
    print(f"  {phase:10} {result}", file=sys.stderr)
    return result


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def copy_stdlib(dest: Path) -> None:
    shutil.copytree(
        STDLIB,
        dest,
        symlinks=True,
        ignore=shutil.ignore_patterns("site-packages", "dist-packages", "__pycache__", "*.pyc"),
    )


def measure_updates(
    index: WorkspaceIndex, root: Path, count: int, rng: random.Random
) -> list[tuple[float, int]]:
    """Append a new function to random files; time until `search` finds it. (ms, bytes)."""
    watcher = Watcher([root], index)
    started = time.perf_counter()
    watcher.start()
    WATCH_START_S.append(time.perf_counter() - started)
    results: list[tuple[float, int]] = []
    try:
        candidates = [p for p in index.files() if p.suffix == ".py"]
        for i, path in enumerate(rng.sample(candidates, count)):
            name = f"bench_update_marker_{i}"
            text = path.read_text(encoding="utf-8", errors="surrogateescape")
            text += f"\n\ndef {name}():\n    pass\n"
            data = text.encode("utf-8", "surrogateescape")
            started = time.perf_counter()
            path.write_bytes(data)
            deadline = started + 5
            while not any(s.name == name for s in index.search(name, 5)):
                if time.perf_counter() > deadline:
                    raise RuntimeError(f"{name} in {path} not indexed within 5 s")
                time.sleep(0.001)
            results.append(((time.perf_counter() - started) * 1000, len(data)))
            time.sleep(0.1)  # let the watcher go idle between trials
    finally:
        watcher.stop()
    return results


def initials(name: str) -> str:
    return "".join(w[0] for w in word_form(name).split())


def make_queries(index: WorkspaceIndex, count: int, rng: random.Random) -> list[tuple[str, str]]:
    """(kind, query): sampled names, prefixes of sampled names, initials of multi-word names."""
    names = sorted({s.name for p in index.files() for s in index.symbols_in(p)})
    per_kind = count // 3
    queries = [("name", n) for n in rng.sample(names, per_kind)]
    longer = [n for n in names if len(n) >= 4]
    for n in rng.sample(longer, per_kind):
        queries.append(("prefix", n[: rng.randint(2, len(n) - 1)]))
    multi = [n for n in names if len(initials(n)) >= 2]
    queries += [("initials", initials(n)) for n in rng.sample(multi, count - 2 * per_kind)]
    return queries


def measure_search(index: WorkspaceIndex, queries: list[tuple[str, str]]) -> list[float]:
    for _, q in queries[:20]:
        index.search(q)  # warm up regex caches
    times = []
    for _, q in queries:
        started = time.perf_counter()
        index.search(q)
        times.append((time.perf_counter() - started) * 1000)
    return times


def plot(results: dict[str, Any]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    ax = axes[0]
    labels = ["cold", "cold, workers=0", "warm"]
    values = [results["cold"]["seconds"], results["cold1"]["seconds"], results["warm"]["seconds"]]
    ax.barh(labels, values, color=["tab:blue", "tab:cyan", "tab:green"])
    ax.axvline(TARGETS["cold_s"], color="tab:red", ls="--", label="cold target")
    ax.axvline(TARGETS["warm_s"], color="tab:orange", ls="--", label="warm target")
    for y, v in enumerate(values):
        ax.text(v, y, f" {v:.2f} s", va="center")
    ax.set_xlabel("seconds")
    ax.set_title(f"Index build ({results['cold']['files']} files)")
    ax.legend(loc="lower right")

    ax = axes[1]
    updates = results["updates"]
    ax.scatter([b / 1000 for _, b in updates], [ms for ms, _ in updates], s=14)
    ax.axhline(TARGETS["update_ms"], color="tab:red", ls="--", label="target")
    ax.set_xscale("log")
    ax.set_xlabel("file size (KB)")
    ax.set_ylabel("ms from write to search hit")
    ax.set_title("One-file update through the watcher")
    ax.legend()

    ax = axes[2]
    kinds = sorted({k for k, _ in results["queries"]})
    data = [
        [t for (k, _), t in zip(results["queries"], results["search_ms"], strict=True) if k == kind]
        for kind in kinds
    ]
    ax.boxplot(data, tick_labels=kinds, whis=(5, 95), showfliers=True)
    ax.set_ylabel("ms per query")
    ax.set_title(f"search() latency ({len(results['search_ms'])} queries)")
    fig.tight_layout()
    fig.savefig(PLOT, dpi=110)


def write_readme(results: dict[str, Any], command: str) -> None:
    cold, cold1, warm, heap = results["cold"], results["cold1"], results["warm"], results["heap"]
    upd = [ms for ms, _ in results["updates"]]
    sms = results["search_ms"]
    memory = max(cold["max_rss_mb"], warm["max_rss_mb"])
    slow_kb = max(results["updates"])[1] / 1000

    def ok(value: float, target: float) -> str:
        return "yes" if value <= target else "**no**"

    rows = [
        ("cold index (empty cache)", f"{cold['seconds']:.2f} s", "<= 20 s",
         ok(cold["seconds"], TARGETS["cold_s"])),
        ("cold index, parsing in the calling thread (`workers=0`)", f"{cold1['seconds']:.2f} s",
         "", ""),
        ("warm start (`build()` with the cache)", f"{warm['seconds']:.2f} s", "<= 2 s",
         ok(warm["seconds"], TARGETS["warm_s"])),
        ("warm start, whole process (interpreter, imports, build)",
         f"{warm['process_seconds']:.2f} s", "", ""),
        ("one-file update visible to `search` (median / p95 / max)",
         f"{statistics.median(upd):.0f} / {pct(upd, 0.95):.0f} / {max(upd):.0f} ms",
         "<= 100 ms", ok(pct(upd, 0.95), TARGETS["update_ms"])),
        ("`search` latency (median / p95 / max)",
         f"{statistics.median(sms):.2f} / {pct(sms, 0.95):.2f} / {max(sms):.2f} ms",
         "p95 well under 50 ms", ok(pct(sms, 0.95), 50)),
        ("memory: max RSS of the indexing process (cold / warm)",
         f"{cold['max_rss_mb']:.0f} / {warm['max_rss_mb']:.0f} MB", "<= 300 MB",
         ok(memory, TARGETS["memory_mb"])),
        ("memory: RSS before the build (interpreter and imports)",
         f"{warm['base_rss_mb']:.0f} MB", "", ""),
        ("memory: the index's Python heap (tracemalloc, warm; peak)",
         f"{heap['heap_mb']:.0f} MB; {heap['heap_peak_mb']:.0f} MB", "", ""),
        ("memory: max RSS of one parsing worker process", f"{cold['children_max_rss_mb']:.0f} MB",
         "", ""),
        ("cache file", f"{warm['cache_mb']:.1f} MB", "", ""),
        ("watcher start (OS watches on every directory)", f"{results['watch_start_s']:.2f} s",
         "", ""),
    ]  # fmt: skip
    table = "\n".join(
        ["| measure | result | target | met |", "| --- | --- | --- | --- |"]
        + [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows]
    )
    body = f"""{SECTION}

`bench/index.py` indexes the standard library of the running interpreter
(`{STDLIB}`, without `site-packages`: {cold["files"]} files, {cold["symbols"]} symbols).
Each build runs in a fresh process. Updates: {len(upd)} random files of a copy of the standard
library get a new function appended; the time runs from the write until `search()` returns
it (watchdog, the watcher's debounce, `update_files`, the index swap). Queries: {len(sms)}
names sampled from the index, prefixes of sampled names, and initials of multi-word names
(`gcd` for `get_current_dir`), limit 100.

- Machine: {results["machine"]}
- Command: `{command}`

{table}

The update target is judged on the p95; the slowest update was a {slow_kb:.0f} KB file, whose
parse and symbol extraction alone take most of that time (the debounce is 10 ms once the
writer has closed the file, 50 ms while it may still be writing).

![index benchmark](index.png)

"""
    replace_section(README, SECTION, body)
    text = README.read_text(encoding="utf-8")
    if CONTEXT_SECTION not in text:
        text = text.rstrip("\n") + (
            f"\n\n{CONTEXT_SECTION}\n\nContext assembly p95 and retrieval recall: filled in by "
            "`bench/retrieval.py --write-readme`.\n"
        )
    README.write_text(text, encoding="utf-8")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--updates", type=int, default=40)
    parser.add_argument("--queries", type=int, default=210)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--no-readme", action="store_true")
    parser.add_argument("--child", nargs=3, metavar=("PHASE", "ROOT", "CACHE"))
    parser.add_argument("--workers", type=int)
    args = parser.parse_args()
    if args.child:
        phase, root, cache = args.child
        child(phase, Path(root), Path(cache), args.workers)
        return 0

    rng = random.Random(args.seed)
    results: dict[str, Any] = {"machine": describe()}
    with tempfile.TemporaryDirectory(prefix="coder-lsp-bench-") as tmp:
        work = Path(tmp)
        print("builds on the standard library:", file=sys.stderr)
        results["cold"] = run_child("cold", STDLIB, work / "cache")
        results["warm"] = run_child("warm", STDLIB, work / "cache")
        results["heap"] = run_child("heap", STDLIB, work / "cache")
        results["cold1"] = run_child("cold", STDLIB, work / "cache1", workers=0)

        print("copying the standard library for the update test", file=sys.stderr)
        copy = work / "stdlib"
        copy_stdlib(copy)
        index = WorkspaceIndex([copy], exclude=EXCLUDE, cache_dir=work / "cache-copy")
        index.build()
        results["updates"] = measure_updates(index, copy, args.updates, rng)
        results["watch_start_s"] = WATCH_START_S[-1]
        upd = [ms for ms, _ in results["updates"]]
        print(f"  updates: median {statistics.median(upd):.0f} ms, max {max(upd):.0f}",
              file=sys.stderr)  # fmt: skip
        results["queries"] = make_queries(index, args.queries, rng)
        results["search_ms"] = measure_search(index, results["queries"])
        sms = results["search_ms"]
        print(f"  search: median {statistics.median(sms):.2f} ms, p95 {pct(sms, 0.95):.2f} ms",
              file=sys.stderr)  # fmt: skip

    command = ".venv/bin/python bench/index.py" + (
        f" --updates {args.updates} --queries {args.queries} --seed {args.seed}"
        if (args.updates, args.queries, args.seed) != (40, 210, 1)
        else ""
    )
    print(json.dumps({k: v for k, v in results.items() if k != "queries"}, indent=1))
    if not args.no_readme:
        plot(results)
        write_readme(results, command)
        print(f"wrote {README} and {PLOT}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
