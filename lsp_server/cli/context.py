"""`coder-lsp context FILE:LINE:COL`: print the exact prompt a completion there would send.

No engine is started: the profile's tokenizer and template are enough to assemble the prompt
(repository context from the workspace index included), so users can see why a suggestion
came. Secrets are redacted exactly as for a completion; stderr says how many of which kinds
(never the values).
"""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

from engine.profiles import auto_profile, get_profile, prepare_model
from engine.templates import template_for
from engine.tokenizer import HFTokenizer, PromptTokenizer
from lsp_server.cli.output import err, stderr_progress
from lsp_server.cli.workspace import indexed_workspace, read_location, settings_for
from lsp_server.completion.pipeline import PromptParts, PromptRefused, render_prompt
from lsp_server.config import Settings, resolve_profile
from lsp_server.languages import language_id
from lsp_server.privacy import redactor_for, summary
from lsp_server.privacy.guard import GuardedTokenizer
from lsp_server.privacy.redact import Redactor


def tokenizer_for(settings: Settings, profile_model: str, redactor: Redactor) -> PromptTokenizer:
    """The tokenizer the server would count with: for the remote backend `engine.tokenizer`
    when set (a local directory or file, a model in the local cache, or "endpoint": the
    server's `/tokenize`, what is sent redacted), else the model's own."""
    engine = settings.engine
    choice = (engine.tokenizer or "") if engine.backend == "remote" else ""
    if choice == "endpoint":
        if not engine.endpoints:
            raise ValueError('engine.tokenizer = "endpoint" needs engine.endpoints')
        from engine.remote import EndpointTokenizer, api_key_from_env

        remote = EndpointTokenizer(
            engine.endpoints[0],
            engine.model or profile_model,
            api_key=api_key_from_env(engine.api_key_env),
            ca_bundle=engine.ca_bundle,
        )
        return GuardedTokenizer(remote, lambda: redactor)
    if choice:
        return HFTokenizer.from_model(
            prepare_model(choice) if choice.startswith("builtin:") else choice
        )
    model = prepare_model(engine.model or profile_model, stderr_progress)
    return HFTokenizer.from_model(model)


def run(
    path: Path,
    line: int,
    column: int,
    workspace: Path | None,
    profile: str | None,
    config: Path | None,
) -> int:
    """Print the prompt for `path` at 1-based `line` and `column` to stdout; notes to stderr."""
    location = read_location(path, line, column, "context")
    if location is None:
        return 2
    text, offset = location
    path = path.resolve()
    root, settings = settings_for(path, workspace, config)
    privacy = settings.privacy
    redactor = redactor_for(privacy.redact, privacy.patterns, privacy.allow)
    try:
        prof = get_profile(resolve_profile(profile, settings) or auto_profile())
        tokenizer = tokenizer_for(settings, prof.completion_model, redactor)
    except Exception as exc:  # unknown profile, model not available offline, bad tokenizer
        err(f"coder-lsp context: cannot load the tokenizer: {exc}")
        return 1
    template = template_for(prof.template).with_stops(prof.stop)
    service = indexed_workspace(root, settings, "context")
    parts = PromptParts(template, tokenizer, settings, prof.prompt_tokens, redactor)
    try:
        prompt, ctx = render_prompt(
            parts, text, offset, language_id(path), path=str(path), workspace=service
        )
    except PromptRefused as exc:
        err(f"coder-lsp context: {path}: {exc}: nothing is sent")
        return 1
    budget = min(settings.completion.prompt_tokens, prof.prompt_tokens)
    shown = ", ".join(f"{s.kind} {s.path}:{s.line + 1}" for s in ctx.snippets) or "none"
    err(
        f"coder-lsp context: profile {prof.name}, template {template.name}, "
        f"{prompt.prompt_tokens}/{budget} tokens; {len(ctx.snippets)} context snippets in "
        f"{prompt.context_files} of {len(ctx.files())} blocks, found in {ctx.elapsed_ms:.1f} ms "
        f"({shown})",
    )
    state = "redacted" if privacy.redact else "redaction is off (privacy.redact)"
    err(f"coder-lsp context: {state}: {summary(Counter(ctx.redacted))}")
    sys.stdout.write(prompt.text)  # exactly: no newline added
    sys.stdout.flush()
    return 0
