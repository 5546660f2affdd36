"""Fix outcomes of an edit model on small real bugs, through the same path as the code action.

Each bug is a small Python module, the line a failing test points at, and the failure message
a test run would report. The fix is proposed by `propose_fix` (region, prompt, the real
engine, answer parsing, minimal diff), then the fixed module is run against the bug's checks
in a sandboxed subprocess. Outcomes: "fixed" (the checks pass), "diff" (a well-formed edit
that does not fix the bug), or the message the user would see.

    .venv/bin/python bench/fixes.py [--profile cpu-small] [--show]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import time
from pathlib import Path

import msgspec

from lsp_server.cli.fix import unified_diff
from lsp_server.config import Settings
from lsp_server.engine_host import EngineHost
from lsp_server.fixes.prompt import Problem
from lsp_server.fixes.propose import FixError, propose_fix

RESULTS = Path(__file__).parent / "results" / "fixes.json"


class Bug(msgspec.Struct, frozen=True):
    name: str
    code: str
    line: int
    """1-based line the failure points at."""
    message: str
    checks: str
    """Asserts run against the module's namespace."""


BUGS = [
    Bug(
        "wrong-operator",
        "def add(a, b):\n    return a - b\n",
        2,
        "test_add failed: assert add(2, 3) == 5; AssertionError: assert -1 == 5",
        "assert add(2, 3) == 5\nassert add(-1, 1) == 0",
    ),
    Bug(
        "off-by-one-index",
        "def last(items):\n    return items[len(items)]\n",
        2,
        "test_last failed: IndexError: list index out of range",
        "assert last([1, 2, 3]) == 3\nassert last(['a']) == 'a'",
    ),
    Bug(
        "inverted-comparison",
        "def maximum(values):\n    best = values[0]\n    for v in values:\n"
        "        if v < best:\n            best = v\n    return best\n",
        4,
        "test_maximum failed: assert maximum([1, 5, 3]) == 5; AssertionError: assert 1 == 5",
        "assert maximum([1, 5, 3]) == 5\nassert maximum([-2, -7]) == -2",
    ),
    Bug(
        "missing-return",
        "def square(x):\n    x * x\n",
        2,
        "test_square failed: assert square(3) == 9; AssertionError: assert None == 9",
        "assert square(3) == 9\nassert square(-2) == 4",
    ),
    Bug(
        "misspelled-name",
        'def greet(name):\n    return "Hello, " + nam\n',
        2,
        "NameError: name 'nam' is not defined",
        "assert greet('Ada') == 'Hello, Ada'",
    ),
]


def passes(module: str, checks: str) -> bool:
    """Whether `checks` hold for `module`, run in a separate interpreter (10 s limit)."""
    program = module + "\n\n" + checks + "\n"
    try:
        proc = subprocess.run(
            [sys.executable, "-I", "-c", program], capture_output=True, timeout=10, text=True
        )
    except subprocess.TimeoutExpired:
        return False
    return proc.returncode == 0


async def run(profile: str, show: bool) -> list[dict[str, object]]:
    host = EngineHost.for_profile(profile, Settings())
    state = await host.start()
    if host.engine is None or not host.ready:
        raise SystemExit(f"engine failed: {state.reason}")
    rows: list[dict[str, object]] = []
    try:
        for bug in BUGS:
            lines = bug.code.split("\n")
            start = sum(len(line) + 1 for line in lines[: bug.line - 1])
            started = time.perf_counter()
            problem = Problem(line=bug.line - 1, message=bug.message)
            row: dict[str, object] = {"bug": bug.name}
            try:
                proposal = await propose_fix(
                    host,
                    text=bug.code,
                    language_id="python",
                    path=f"/bench/{bug.name.replace('-', '_')}.py",
                    start=start,
                    end=start,
                    problems=[problem],
                )
            except FixError as exc:
                row.update(outcome="message", message=str(exc))
            else:
                fixed = passes(proposal.new_text, bug.checks)
                row.update(
                    outcome="fixed" if fixed else "diff",
                    diff=unified_diff(bug.code, proposal.new_text, f"{bug.name}.py"),
                    tokens=proposal.answer.prompt_tokens,
                )
            row["seconds"] = round(time.perf_counter() - started, 1)
            rows.append(row)
            print(f"{bug.name:22} {row['outcome']:8} {row['seconds']:5} s", flush=True)
            if show:
                print(row.get("diff") or row.get("message"), flush=True)
    finally:
        await host.shutdown()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--profile", default="cpu-small")
    parser.add_argument("--show", action="store_true", help="print each diff or message")
    args = parser.parse_args()
    rows = asyncio.run(run(args.profile, args.show))
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps({"profile": args.profile, "bugs": rows}, indent=1) + "\n")
    counts = {k: sum(r["outcome"] == k for r in rows) for k in ("fixed", "diff", "message")}
    print(f"{args.profile}: {counts}")


if __name__ == "__main__":
    main()
