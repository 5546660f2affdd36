"""`coder-lsp fix FILE:LINE`: print the fix the edit model proposes, as a unified diff.

The problem is what `--message` says, plus any failing test that the workspace's test reports
place on that line. The file is never written: apply the diff with `git apply` or `patch`.
"""

from __future__ import annotations

import difflib
import os
import sys
from collections import Counter
from pathlib import Path

from engine import EngineStatus
from lsp_server.cli.output import err, stderr_progress
from lsp_server.cli.workspace import (
    engine_url,
    host_for,
    indexed_workspace,
    settings_for,
    use_engine,
)
from lsp_server.fixes.prompt import Problem
from lsp_server.fixes.propose import FixError, propose_fix
from lsp_server.fixes.reports import ReportStore
from lsp_server.languages import language_id
from lsp_server.privacy import summary


def _line_span(text: str, line: int) -> tuple[int, int]:
    """Offsets of the start and end of 1-based `line`."""
    start = 0
    for _ in range(line - 1):
        start = text.index("\n", start) + 1
    end = text.find("\n", start)
    return start, len(text) if end < 0 else end


def _problems(path: Path, line: int, root: Path, store: ReportStore, message: str) -> list[Problem]:
    problems = [Problem(line=line - 1, message=message)] if message else []
    for failing in store.problems_in(str(path)):
        if failing.line == line:
            problems.append(
                Problem(
                    line=line - 1,
                    message=f"{failing.test} failed: {failing.message}",
                    source="coder-lsp tests",
                    details=failing.details,
                )
            )
    return problems


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None


def unified_diff(old: str, new: str, name: str) -> str:
    """A `git apply`-able diff of one file."""
    lines = difflib.unified_diff(
        old.splitlines(keepends=True),
        new.splitlines(keepends=True),
        fromfile=f"a/{name}",
        tofile=f"b/{name}",
    )
    out = []
    for text in lines:
        out.append(text if text.endswith("\n") else text + "\n\\ No newline at end of file\n")
    return "".join(out)


async def run(
    path: Path,
    line: int,
    *,
    message: str,
    explain: bool,
    profile: str | None,
    workspace: Path | None,
    config: Path | None,
    engine: str | None = None,
) -> int:
    try:
        text = path.read_text(encoding="utf-8")
        start, end = _line_span(text, line)
    except (OSError, UnicodeDecodeError) as exc:
        err(f"coder-lsp fix: {exc}")
        return 2
    except ValueError:
        err(f"coder-lsp fix: line {line} is outside {path} ({text.count(chr(10)) + 1} lines)")
        return 2
    root, settings = settings_for(path, workspace, config)
    settings = use_engine(settings, engine_url(engine))
    host = host_for(profile, settings, "fix")
    if host is None:
        return 2
    resolved = path.resolve()
    store = ReportStore([root], settings.tests, settings.workspace.exclude)
    store.update(store.scan())
    problems = _problems(resolved, line, root, store, message)
    service = indexed_workspace(root, settings, "fix")
    state = await host.start(stderr_progress)
    try:
        if state.status is not EngineStatus.READY:
            err(f"coder-lsp fix: engine failed: {state.reason}")
            return 1
        proposal = await propose_fix(
            host,
            text=text,
            language_id=language_id(path),
            path=str(resolved),
            start=start,
            end=end,
            problems=problems,
            explain=explain,
            workspace=service,
            read=_read,
        )
    except FixError as exc:
        err(f"coder-lsp fix: no fix: {exc}")
        return 1
    finally:
        await host.shutdown()
    state_text = "redacted" if settings.privacy.redact else "redaction is off (privacy.redact)"
    err(f"coder-lsp fix: {state_text}: {summary(Counter(proposal.redacted))}")
    if proposal.explanation:
        err(proposal.explanation)
    changed = Path(proposal.path)
    shown = os.path.relpath(changed, root) if changed.is_relative_to(root) else str(changed)
    sys.stdout.write(unified_diff(proposal.old_text, proposal.new_text, shown))
    return 0
