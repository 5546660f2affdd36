"""One completion from document text and cursor offset to the text to insert."""

from __future__ import annotations

import contextlib
import logging
import time
import uuid

import msgspec

from engine import GenerationRequest
from engine.prompt import BuiltPrompt
from engine.templates import FimTemplate
from engine.tokenizer import PromptTokenizer
from lsp_server.completion.postprocess import finalize
from lsp_server.config import Settings
from lsp_server.context.gather import RepoContext, prompt_with_context
from lsp_server.engine_host import EngineHost
from lsp_server.privacy import allow_function
from lsp_server.workspace.service import WorkspaceService

log = logging.getLogger(__name__)


class Completion(msgspec.Struct, frozen=True):
    """What the pipeline produced, and why it is empty when it is."""

    text: str
    reason: str = ""
    raw: str = ""
    prompt_tokens: int = 0
    latency_ms: float = 0.0
    request_id: str = ""


def code_right_of_cursor(suffix: str) -> bool:
    """Whether the cursor's line has non-blank text after the cursor."""
    return bool(suffix.split("\n", 1)[0].strip())


class PromptParts(msgspec.Struct, frozen=True):
    """What turns a cursor into a prompt, without an engine (the `context` command uses it)."""

    template: FimTemplate
    tokenizer: PromptTokenizer
    settings: Settings
    profile_tokens: int
    """The profile's prompt budget; the smaller of it and the setting applies."""


def render_prompt(
    parts: PromptParts,
    text: str,
    offset: int,
    language_id: str,
    *,
    path: str = "",
    workspace: WorkspaceService | None = None,
) -> tuple[BuiltPrompt, RepoContext] | None:
    """The prompt for `offset` with repository context; None when privacy.exclude forbids."""
    settings = parts.settings
    root = workspace.roots[0] if workspace and workspace.roots else None
    allow = allow_function(settings.privacy.exclude, str(root) if root else None)
    if path and not allow(path):
        return None
    return prompt_with_context(
        template=parts.template,
        tokenizer=parts.tokenizer,
        path=path or "untitled",
        text=text,
        offset=offset,
        language_id=language_id,
        index=workspace.index if workspace else None,
        recent=workspace.recent if workspace else None,
        budget_tokens=min(settings.completion.prompt_tokens, parts.profile_tokens),
        context_tokens=settings.completion.context_tokens if path else 0,
        time_budget_ms=settings.completion.context_ms,
        root=str(root) if root else None,
        repo_name=root.name if root else "",
        allow=allow,
    )


async def complete(
    host: EngineHost,
    text: str,
    offset: int,
    language_id: str,
    *,
    path: str = "",
    workspace: WorkspaceService | None = None,
    request_id: str = "",
) -> Completion:
    """Gather context, render the prompt, generate, post-process.

    Cancelling the caller aborts the generation inside the engine.
    """
    started = time.perf_counter()
    settings = host.settings.completion
    if not settings.enabled:
        return Completion("", "completions are disabled in settings")
    engine, template, tokenizer = host.engine, host.template, host.tokenizer
    if engine is None or template is None or tokenizer is None or not host.ready:
        return Completion("", f"engine is {host.state.status.value}")
    if "\x00" in text:
        return Completion("", "binary document")
    prefix, suffix = text[:offset], text[offset:]
    parts = PromptParts(template, tokenizer, host.settings, host.profile.prompt_tokens)
    rendered = render_prompt(parts, text, offset, language_id, path=path, workspace=workspace)
    if rendered is None:
        return Completion("", "the file matches privacy.exclude")
    prompt, _ = rendered
    single_line = code_right_of_cursor(suffix)
    stop = [*template.stop, *settings.stop]
    if single_line:
        stop.append("\n")
    request = GenerationRequest(
        prompt=prompt.text,
        max_tokens=settings.max_tokens,
        temperature=settings.temperature,
        stop=stop,
        request_id=request_id or f"cmpl-{uuid.uuid4().hex}",
    )
    raw = ""
    stream = engine.generate(request)
    async with contextlib.aclosing(stream):  # type: ignore[type-var]
        async for chunk in stream:
            if chunk.index == 0:
                raw = chunk.text
    result = finalize(prefix, raw, suffix, language_id, stop=stop, single_line=single_line)
    latency = (time.perf_counter() - started) * 1000
    log.debug(
        "completion %s: %d prompt tokens, %.0f ms",
        request.request_id,
        prompt.prompt_tokens,
        latency,
    )
    return Completion(
        result,
        "" if result else "the model's text was empty after post-processing",
        raw=raw,
        prompt_tokens=prompt.prompt_tokens,
        latency_ms=latency,
        request_id=request.request_id,
    )
