"""Model-free check of completion post-processing on HumanEval infilling.

For every task, feed :func:`finalize` the canonical solution followed by the kind of
over-generation models produce, one variant at a time, and count how often the result is
exactly the canonical solution again. The editor document is ``prompt + "\\n" + suffix`` with
the cursor at the start of the empty line after the prompt, as in the other benchmarks.

Variants:

* ``none``: the canonical solution alone (no rule may hurt it);
* ``suffix``: followed by the suffix's first three non-blank lines (the model echoes it);
* ``repeat``: followed by its last non-blank line three more times (the model loops);
* ``def``: followed by a new top-level ``def``;
* ``main``: followed by an ``if __name__ == "__main__":`` block;
* ``dedent``: followed by a statement at the ``def`` line's indentation (leaving the function);
* ``outdent``: followed by a ``return`` one level left of the block being completed but
  still in the function (only where that level is deeper than the function's body);
* ``repeat+suffix``: its last line once more, then the suffix's lines.

    .venv/bin/python bench/recovery.py [--show 5] [--data DIR]
"""

from __future__ import annotations

import argparse
import gzip
import json
import re
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from lsp_server.completion.postprocess import finalize

DATA = Path("/work/shared/data/human-eval-infilling")
SETS = {
    "single-line": "HumanEval-SingleLineInfilling.jsonl.gz",
    "multi-line": "HumanEval-MultiLineInfilling.jsonl.gz",
}

Row = dict[str, Any]
Variant = Callable[[Row], "str | None"]


def _nonblank(text: str) -> list[str]:
    return [line for line in text.split("\n") if line.strip()]


def _suffix_lines(row: Row, count: int = 3) -> str:
    """The suffix up to and including its ``count``-th non-blank line, blank lines kept."""
    kept: list[str] = []
    seen = 0
    for line in row["suffix"].split("\n"):
        if seen == count:
            break
        kept.append(line)
        seen += bool(line.strip())
    return "\n".join(kept) + "\n" if seen else ""


def _last_line(row: Row) -> str:
    return _nonblank(row["canonical_solution"])[-1] + "\n"


def _width(line: str) -> int:
    return len(line) - len(line.lstrip())


def _outdent(row: Row) -> str | None:
    """A ``return`` one level left of the block being completed (the shallower of the
    hole's first line and the suffix's next line), still inside the function: the model
    thinks the block is over. None when that level would be the function's own body (there
    a statement is indistinguishable from the canonical solution's own code) or when the
    hole starts inside brackets."""
    if _nonblank(row["prompt"])[-1].rstrip().endswith(("(", "[", "{", ",")):
        return None  # the hole starts inside brackets: its lines' indentation says nothing
    first = _width(_nonblank(row["canonical_solution"])[0])
    suffix = _nonblank(row["suffix"])
    level = min(first, _width(suffix[0]) if suffix else 0) - 4
    if level < len(_def_indent(row)) + 4:
        return None
    return str(row["canonical_solution"]) + " " * level + "return None\n"


def _def_indent(row: Row) -> str:
    """The indentation of the ``def`` of the entry point (the function holding the hole)."""
    match = re.search(rf"^([ \t]*)def {re.escape(row['entry_point'])}\b", row["prompt"], re.M)
    return match.group(1) if match else ""


VARIANTS: dict[str, Variant] = {
    "none": lambda row: row["canonical_solution"],
    "suffix": lambda row: row["canonical_solution"] + _suffix_lines(row),
    "repeat": lambda row: row["canonical_solution"] + _last_line(row) * 3,
    "def": lambda row: (
        row["canonical_solution"] + "\n\ndef main():\n    print(" + row["entry_point"] + "())\n"
    ),
    "main": lambda row: (
        row["canonical_solution"]
        + '\n\nif __name__ == "__main__":\n    import doctest\n\n    doctest.testmod()\n'
    ),
    "dedent": lambda row: (
        row["canonical_solution"] + _def_indent(row) + "print(" + row["entry_point"] + "([]))\n"
    ),
    "outdent": _outdent,
    "repeat+suffix": lambda row: row["canonical_solution"] + _last_line(row) + _suffix_lines(row),
}
"""Over-generation variants: the raw completion a model might return for a row (None: the
variant doesn't apply to it)."""


def recovered(row: Row, completion: str) -> bool:
    """Whether finalize turns ``completion`` back into exactly the canonical solution."""
    result = finalize(row["prompt"], completion, "\n" + row["suffix"], "python", single_line=False)
    return result.rstrip() == str(row["canonical_solution"]).rstrip()


def recovery(rows: Iterable[Row]) -> dict[str, Any]:
    """Exact recoveries per variant and overall, with the failing task ids per variant.

    ``tasks`` counts rows, ``tried`` the rows each variant applies to; rates are over those.
    """
    counts = dict.fromkeys(VARIANTS, 0)
    tried = dict.fromkeys(VARIANTS, 0)
    failures: dict[str, list[str]] = {name: [] for name in VARIANTS}
    total = 0
    for row in rows:
        total += 1
        for name, variant in VARIANTS.items():
            completion = variant(row)
            if completion is None:
                continue
            tried[name] += 1
            if recovered(row, completion):
                counts[name] += 1
            else:
                failures[name].append(row["task_id"])
    attempts = sum(tried.values())
    return {
        "tasks": total,
        "tried": tried,
        "recovered": counts,
        "rates": {name: counts[name] / tried[name] if tried[name] else 1.0 for name in counts},
        "overall": sum(counts.values()) / attempts if attempts else 0.0,
        "failures": failures,
    }


def load(path: Path) -> list[Row]:
    with gzip.open(path, "rt", encoding="utf-8") as lines:
        return [json.loads(line) for line in lines]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DATA, help="folder with the .jsonl.gz sets")
    parser.add_argument("--show", type=int, default=3, help="failing task ids shown per variant")
    args = parser.parse_args(argv)
    names = list(VARIANTS)
    print(f"{'set':<12} {'tasks':>6} " + " ".join(f"{n:>13}" for n in names) + f" {'overall':>8}")
    worst = 1.0
    for set_name, file_name in SETS.items():
        rows = load(args.data / file_name)
        started = time.perf_counter()
        report = recovery(rows)
        seconds = time.perf_counter() - started
        rates = " ".join(f"{report['rates'][n]:>13.1%}" for n in names)
        print(
            f"{set_name:<12} {report['tasks']:>6} {rates} {report['overall']:>8.1%}"
            f"  ({seconds:.1f} s)"
        )
        worst = min(worst, report["overall"])
        partial = [f"{n} {report['tried'][n]}" for n in names if report["tried"][n] < len(rows)]
        if partial:
            print(f"    tasks a variant applies to: {', '.join(partial)}")
        for name in names:
            failing = report["failures"][name]
            if failing and args.show:
                print(f"    {name}: {len(failing)} fail, e.g. {', '.join(failing[: args.show])}")
    return 0 if worst >= 0.95 else 1


if __name__ == "__main__":
    sys.exit(main())
