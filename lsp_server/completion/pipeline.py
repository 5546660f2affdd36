"""One completion from document text and cursor offset to the items to show.

Order of work, cheapest first: the cache (an earlier suggestion, possibly typed through), the
gate (whether and how much to complete here), an in-flight generation this cursor can follow,
and only then a new engine request, whose samples are post-processed and ranked.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from dataclasses import dataclass, field

import msgspec
import tree_sitter

from engine import Engine, GenerationRequest, timing
from engine.prompt import BuiltPrompt
from engine.templates import FimTemplate
from engine.tokenizer import PromptTokenizer
from lsp_server.completion.cache import CompletionCache, remainders
from lsp_server.completion.gate import Mode, decide
from lsp_server.completion.postprocess import finalize
from lsp_server.completion.stages import Stages
from lsp_server.completion.streams import Stream, Streams
from lsp_server.completion.view import view
from lsp_server.config import CompletionSettings, Settings
from lsp_server.context.gather import RepoContext, SecretAtCursor, prompt_with_context
from lsp_server.engine_host import EngineHost
from lsp_server.privacy import Redactor, allow_function, foreign_placeholder, restore
from lsp_server.workspace.service import WorkspaceService

log = logging.getLogger(__name__)


class Completion(msgspec.Struct, frozen=True):
    """What the pipeline produced, and why it is empty when it is.

    ``items`` are ranked, best first; ``text`` is the best one. ``source`` says where they came
    from: "engine", "cache", "follow" (an in-flight generation), "gate" (nothing asked).
    """

    text: str
    reason: str = ""
    raw: str = ""
    prompt_tokens: int = 0
    latency_ms: float = 0.0
    request_id: str = ""
    items: tuple[str, ...] = ()
    source: str = ""
    mode: str = ""
    typed: str = ""
    """Characters typed since the cursor the items were made for (cache and follow)."""
    origin: tuple[str, ...] = ()
    """The items as made, before ``typed`` was taken off them (cache and follow)."""
    scores: tuple[float, ...] = ()
    """Mean token log-probability of each item, when several samples were ranked."""


@dataclass(slots=True)
class ReuseStats:
    """How requests were served since start."""

    engine: int = 0
    cache: int = 0
    follow: int = 0
    gate: int = 0

    def count(self, source: str) -> None:
        if source in ("engine", "cache", "follow", "gate"):
            setattr(self, source, getattr(self, source) + 1)


@dataclass(slots=True)
class Reuse:
    """What a server keeps between requests: the cache and the generations in flight."""

    cache: CompletionCache = field(default_factory=CompletionCache)
    streams: Streams = field(default_factory=Streams)
    stats: ReuseStats = field(default_factory=ReuseStats)


class PromptParts(msgspec.Struct, frozen=True):
    """What turns a cursor into a prompt, without an engine (the `context` command uses it)."""

    template: FimTemplate
    tokenizer: PromptTokenizer
    settings: Settings
    profile_tokens: int
    """The profile's prompt budget; the smaller of it and the setting applies."""
    redactor: Redactor | None = None
    """Secret redaction (`privacy.redact`); None sends the text as it is."""


class PromptRefused(Exception):
    """No prompt may be sent from here: the file is never sent, or the cursor is in a secret."""


def render_prompt(
    parts: PromptParts,
    text: str,
    offset: int,
    language_id: str,
    *,
    path: str = "",
    workspace: WorkspaceService | None = None,
    stages: Stages | None = None,
    line_shift: int = 0,
) -> tuple[BuiltPrompt, RepoContext]:
    """The prompt for `offset` with repository context, secrets redacted; PromptRefused when the
    file is never sent (a credentials file, `privacy.exclude`) or the cursor is in a secret.
    `text` may be a view of the document (`line_shift` maps its window's lines back)."""
    settings = parts.settings
    root = workspace.roots[0] if workspace and workspace.roots else None
    allow = allow_function(settings.privacy.exclude, str(root) if root else None)
    if path and not allow(path):
        raise PromptRefused(
            "the file is never sent to a model (a credentials file or privacy.exclude)"
        )
    try:
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
            redactor=parts.redactor,
            stages=stages,
            line_shift=line_shift,
            memo=workspace.context_memo if workspace else None,
            memo_scope=tuple(settings.privacy.exclude),
        )
    except SecretAtCursor as exc:
        raise PromptRefused(str(exc)) from None


def rejoins_suffix(raw: str, item: str, suffix: str) -> bool:
    """Whether the model, past what is shown, went on with the suffix's next line of code.

    The shown text then ends exactly where the code after the cursor takes over: the best
    evidence of a fit from a model that cannot see the suffix (prefix-only templates), and
    what ranks candidates first, before their mean log-probability.
    """
    rest = raw[len(item) :] if raw.startswith(item) else ""
    wanted = _first_code_line(suffix)
    return bool(wanted) and _first_code_line(rest) == wanted


def _first_code_line(text: str) -> str:
    """The first non-blank line of `text`, stripped ("" when none), without splitting all of
    it (a suffix may be a whole file)."""
    start = 0
    while start <= len(text):
        end = text.find("\n", start)
        end = len(text) if end < 0 else end
        line = text[start:end].strip()
        if line:
            return line
        start = end + 1
    return ""


@dataclass(frozen=True, slots=True)
class _Job:
    """One engine request and how to turn its samples into items."""

    engine: Engine
    request: GenerationRequest
    prefix: str
    suffix: str
    language_id: str
    mode: Mode
    postprocess: bool
    document: str = ""
    """The whole document: placeholders it has itself are not restored."""
    stages: Stages | None = None
    raw: list[str] = field(default_factory=list)
    scores: list[float] = field(default_factory=list)

    def finalize(self, text: str, *, syntax: bool = True) -> str:
        return finalize(
            self.prefix,
            text,
            self.suffix,
            self.language_id,
            stop=self.request.stop,
            single_line=self.mode is Mode.SINGLE,
            syntax=syntax,
        )

    def settled(self, text: str, previous: str) -> bool:
        """Whether post-processing already cut ``text`` before its last complete line, so
        nothing the model adds can be shown and the generation may stop early (checked when
        a line completes; the language's stop sequences work this way, not as engine stops,
        because they must not cut the completion's own first line)."""
        if not self.postprocess or self.request.n != 1:
            return False
        end = text.rfind("\n")
        if end < 0 or previous.rfind("\n") == end:
            return False
        lines = text[:end]
        return len(self.finalize(lines, syntax=False)) < len(lines.rstrip())

    async def run(self, stream: Stream) -> tuple[str, ...]:
        samples: dict[int, str] = {}
        scores: dict[int, float] = {}
        stages = self.stages or Stages()
        first = True
        generation = self.engine.generate(self.request)
        with timing.timed(stages.mark):
            async with contextlib.aclosing(generation):  # type: ignore[type-var]
                async for chunk in generation:
                    if first:
                        stages.mark("firstToken")
                        first = False
                    # The model saw placeholders for secrets; what it writes gets the values
                    # back.
                    text = restore(chunk.text, self.document)
                    samples[chunk.index] = text
                    if chunk.mean_logprob is not None:
                        scores[chunk.index] = chunk.mean_logprob
                    if chunk.index == 0:
                        previous = stream.text
                        stream.grow(text)
                        if not chunk.finished and self.settled(text, previous):
                            break
        stages.mark("generation")
        try:
            return self._items(samples, scores)
        finally:
            stages.mark("postprocess")

    def _items(self, samples: dict[int, str], scores: dict[int, float]) -> tuple[str, ...]:
        """The samples post-processed, ranked and deduplicated."""
        self.raw.extend(samples[i] for i in sorted(samples))
        if not self.postprocess:
            return tuple(
                text
                for text in self.raw[:1]
                if text and not foreign_placeholder(text, self.document)
            )
        made = {i: self.finalize(text) for i, text in samples.items()}

        def rank(i: int) -> tuple[bool, float]:
            return (rejoins_suffix(samples[i], made[i], self.suffix), scores.get(i, 0.0))

        items: list[str] = []
        for index in sorted(samples, key=rank, reverse=True):
            item = made[index]
            if foreign_placeholder(item, self.document):
                continue  # a placeholder the document lacks: never shown
            if item and item not in items:
                items.append(item)
                if index in scores:
                    self.scores.append(scores[index])
        return tuple(items)


def lora_for(settings: CompletionSettings, language_id: str) -> str:
    """The LoRA adapter for a completion in `language_id` ("" for none)."""
    return settings.lora_by_language.get(language_id) or settings.lora or ""


def _request(
    settings: CompletionSettings,
    prompt: str,
    stop: list[str],
    invoked: bool,
    request_id: str,
    language_id: str = "",
) -> GenerationRequest:
    n = settings.candidates if invoked and settings.postprocess else 1
    return GenerationRequest(
        prompt=prompt,
        max_tokens=settings.max_tokens,
        temperature=settings.candidate_temperature if n > 1 else settings.temperature,
        stop=stop,
        n=n,
        logprobs=n > 1,
        request_id=request_id or f"cmpl-{uuid.uuid4().hex}",
        lora=lora_for(settings, language_id),
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
    invoked: bool = False,
    reuse: Reuse | None = None,
    key: str = "",
    tree: tree_sitter.Tree | None = None,
    offset_bytes: int | None = None,
    stages: Stages | None = None,
    line: int | None = None,
    line_shift: int | None = None,
) -> Completion:
    """Gate, reuse, or gather context, render the prompt, generate and post-process.

    ``invoked`` is an explicit request by the user (several ranked candidates, no gating on
    identifiers, strings or comments). ``reuse`` shares the cache and in-flight generations
    between requests; ``key`` (the document) scopes which generation a new one supersedes.
    ``tree`` is the document's current tree-sitter tree, when the caller keeps one (the gate
    parses a window around the cursor otherwise), ``offset_bytes`` the cursor's UTF-8 offset
    in it. ``stages`` records where the time went. A big document is seen through a `view`
    (its head and a window around the cursor, whose ``line`` is given when known); a caller
    that gives a view already says what its window's lines are in ``line_shift``. Cancelling
    the caller aborts the generation
    inside the engine (after a short grace when ``reuse`` is given, so the next keystroke can
    follow it).
    """
    started = time.perf_counter()
    stages = stages if stages is not None else Stages(started)

    def done(
        items: tuple[str, ...],
        source: str,
        reason: str = "",
        mode: Mode = Mode.MULTI,
        typed: str = "",
        origin: tuple[str, ...] = (),
    ) -> Completion:
        if reuse is not None:
            reuse.stats.count(source)
        return Completion(
            items[0] if items else "",
            "" if items else reason,
            latency_ms=(time.perf_counter() - started) * 1000,
            items=items,
            source=source,
            mode=mode.value,
            typed=typed,
            origin=origin,
        )

    settings = host.settings.completion
    if not settings.enabled:
        return Completion("", "completions are disabled in settings")
    engine, template, tokenizer = host.engine, host.template, host.tokenizer
    if engine is None or template is None or tokenizer is None or not host.ready:
        return Completion("", f"engine is {host.state.status.value}")
    if "\x00" in text:
        return Completion("", "binary document")
    if line_shift is None:  # the whole document: look at a view of it
        seen = view(text, offset, line, prompt_tokens=settings.prompt_tokens)
        text, offset, line_shift = seen.text, seen.offset, seen.line_shift
    prefix, suffix = text[:offset], text[offset:]
    tag = f"{language_id}|{'invoked' if invoked else 'auto'}|{int(settings.postprocess)}"
    shared = reuse if settings.cache else None  # the settings may turn reuse off
    if shared is not None:
        hit = shared.cache.get(prefix, suffix, tag=tag)
        stages.mark("cache")
        if hit is not None:
            return done(hit.items, "cache", typed=hit.typed, origin=hit.origin)

    mode = Mode.MULTI
    if settings.postprocess:
        decision = decide(
            prefix, suffix, language_id, invoked=invoked, tree=tree, offset_bytes=offset_bytes
        )
        stages.mark("gate")
        if decision.mode is Mode.NONE:
            return done((), "gate", f"not here: {decision.reason}", Mode.NONE)
        mode = decision.mode

    if settings.debounce_ms and not invoked:
        # A keystroke within the pause cancels this request before it costs anything.
        await asyncio.sleep(settings.debounce_ms / 1000)
        stages.mark("debounce")

    if shared is not None and not invoked:
        found = shared.streams.find(key, prefix, suffix, tag)
        if found is not None:
            stream, typed = found
            made = await stream.result()
            rest = remainders(made, typed)
            stages.mark("follow")
            if rest:
                return done(rest, "follow", mode=mode, typed=typed, origin=made)

    parts = PromptParts(
        template, tokenizer, host.settings, host.profile.prompt_tokens, host.redactor
    )
    try:
        prompt, _ = render_prompt(
            parts,
            text,
            offset,
            language_id,
            path=path,
            workspace=workspace,
            stages=stages,
            line_shift=line_shift,
        )
    except PromptRefused as exc:
        return done((), "gate", str(exc), Mode.NONE)
    stop = [*template.stop, *settings.stop]
    if settings.postprocess and mode is Mode.SINGLE:
        stop.append("\n")
    job = _Job(
        engine=engine,
        request=_request(settings, prompt.text, stop, invoked, request_id, language_id),
        prefix=prefix,
        suffix=suffix,
        language_id=language_id,
        mode=mode,
        postprocess=settings.postprocess,
        document=text,
        stages=stages,
    )

    async def produce(stream: Stream) -> tuple[str, ...]:
        items = await job.run(stream)
        if shared is not None:
            shared.cache.put(prefix, suffix, items, tag=tag)
        return items

    if reuse is not None:
        stream = reuse.streams.start(key, prefix, suffix, tag, produce)
    else:
        stream = Stream(prefix, suffix, tag, produce, grace_s=0)
    items = await stream.result()
    result = msgspec.structs.replace(
        done(items, "engine", "the model's text was empty after post-processing", mode),
        raw=job.raw[0] if job.raw else "",
        prompt_tokens=prompt.prompt_tokens,
        request_id=job.request.request_id,
        scores=tuple(job.scores),
    )
    log.debug(
        "completion %s: %d prompt tokens, %d items, %.1f ms (%s)",
        job.request.request_id,
        prompt.prompt_tokens,
        len(items),
        result.latency_ms,
        stages,
    )
    return result
