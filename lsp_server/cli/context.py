"""`coder-lsp context FILE:LINE:COL`: print the exact prompt a completion there would send.

No engine is started: the profile's tokenizer and template are enough to assemble the prompt
(repository context from the workspace index included), so users can see why a suggestion
came.
"""

from __future__ import annotations

import sys
from pathlib import Path

from engine.profiles import auto_profile, cache_root, get_profile, prepare_model
from engine.templates import template_for
from engine.tokenizer import HFTokenizer
from lsp_server.cli.complete import offset_of
from lsp_server.cli.progress import stderr_progress
from lsp_server.config import (
    load_settings,
    resolve_profile,
    source_from_toml_file,
    sources_from_workspace,
)
from lsp_server.context.gather import prompt_with_context
from lsp_server.languages import language_id
from lsp_server.workspace.index import WorkspaceIndex


def run(
    path: Path,
    line: int,
    column: int,
    workspace: Path | None,
    profile: str | None,
    config: Path | None,
) -> int:
    """Print the prompt for `path` at 1-based `line` and `column` to stdout; notes to stderr."""
    try:
        text = path.read_text(encoding="utf-8")
        offset = offset_of(text, line, column)
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        print(f"coder-lsp context: {exc}", file=sys.stderr)
        return 2
    path = path.resolve()
    root = (workspace or Path.cwd()).resolve()
    if not path.is_relative_to(root):
        root = path.parent
    sources = sources_from_workspace(root)
    if config is not None:
        sources.append(source_from_toml_file(config))
    settings, errors = load_settings(sources)
    for error in errors:
        print(f"coder-lsp: settings: {error}", file=sys.stderr)
    try:
        prof = get_profile(resolve_profile(profile, settings) or auto_profile())
        model = prepare_model(settings.engine.model or prof.completion_model, stderr_progress)
        tokenizer = HFTokenizer.from_model(model)
    except Exception as exc:  # unknown profile, model not available offline, bad tokenizer
        print(f"coder-lsp context: cannot load the tokenizer: {exc}", file=sys.stderr)
        return 1
    template = template_for(prof.template).with_stops(prof.stop)

    index: WorkspaceIndex | None = None
    if settings.workspace.index:
        index = WorkspaceIndex(
            [root],
            exclude=[*settings.workspace.exclude, *settings.privacy.exclude],
            cache_dir=cache_root() / "index",
            max_file_bytes=settings.workspace.max_file_kb * 1024,
        )
        stats = index.build()
        print(
            f"coder-lsp context: indexed {stats.files} files, {stats.symbols} symbols "
            f"({stats.parsed} parsed) in {stats.seconds:.1f} s",
            file=sys.stderr,
        )
    budget = min(settings.completion.prompt_tokens, prof.prompt_tokens)
    prompt, ctx = prompt_with_context(
        template=template,
        tokenizer=tokenizer,
        path=str(path),
        text=text,
        offset=offset,
        language_id=language_id(path),
        index=index,
        recent=None,
        budget_tokens=budget,
        context_tokens=settings.completion.context_tokens,
        time_budget_ms=settings.completion.context_ms,
        root=str(root),
        repo_name=root.name,
    )
    shown = ", ".join(f"{s.kind} {s.path}:{s.line + 1}" for s in ctx.snippets) or "none"
    print(
        f"coder-lsp context: profile {prof.name}, template {template.name}, "
        f"{prompt.prompt_tokens}/{budget} tokens; {len(ctx.snippets)} context snippets in "
        f"{prompt.context_files} of {len(ctx.files())} blocks, found in {ctx.elapsed_ms:.1f} ms "
        f"({shown})",
        file=sys.stderr,
    )
    sys.stdout.write(prompt.text)  # exactly: no newline added
    sys.stdout.flush()
    return 0
