"""From a problem in a document to a proposed edit: region, prompt, edit model, answer, diff.

Shared by the code actions and `coder-lsp fix`. Nothing here writes files or knows LSP; every
way of not producing an edit is a `FixError` whose message is shown to the user.
"""

from __future__ import annotations

import contextlib
import logging
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path

import msgspec
import tree_sitter

from engine import Engine, EngineError, EngineNotReady, GenerationRequest
from engine.chat import ChatTemplate
from engine.tokenizer import PromptTokenizer
from lsp_server.completion.syntax import error_count
from lsp_server.config import Settings
from lsp_server.context.gather import display_path, gather_context
from lsp_server.engine_host import EngineHost
from lsp_server.fixes.answer import AnswerError, extract_code
from lsp_server.fixes.edits import EditError, Replacement, replace_region
from lsp_server.fixes.prompt import (
    EditPrompt,
    FailingTestCode,
    Problem,
    PromptTooLarge,
    fix_prompt,
    tests_prompt,
)
from lsp_server.fixes.region import Region, enclosing_definition, fix_region
from lsp_server.fixes.reports import TESTS_SOURCE
from lsp_server.fixes.test_files import TestTarget, import_hint, merge_tests, test_file_for
from lsp_server.fixes.under_test import code_under_test
from lsp_server.languages import language_id as language_of
from lsp_server.privacy import allow_function, foreign_placeholder, restore
from lsp_server.workspace.service import WorkspaceService

log = logging.getLogger(__name__)

ReadText = Callable[[Path], str | None]
"""The current text of a file: the editor's copy when open, else the disk's; None if absent."""


class FixError(Exception):
    """Why no edit is proposed; the message is shown to the user as it is."""


class Answer(msgspec.Struct, frozen=True):
    """What the edit model said, and how the request went."""

    text: str
    """The prefill and the generated text."""
    finish_reason: str | None
    prompt_tokens: int
    latency_ms: float
    request_id: str


class Proposal(msgspec.Struct, frozen=True):
    """A fix: the file it changes, before and after, and the minimal replacements between."""

    path: str
    old_text: str
    new_text: str
    replacements: list[Replacement]
    region: Region
    answer: Answer
    explanation: str = ""
    redacted: dict[str, int] = {}
    """Secrets replaced in the prompt, by kind."""


class TestsProposal(msgspec.Struct, frozen=True):
    """Generated tests: the test file before (None when it is to be created) and after."""

    target: TestTarget
    old_text: str | None
    new_text: str
    name: str
    answer: Answer


def _root(workspace: WorkspaceService | None) -> Path | None:
    return workspace.roots[0] if workspace and workspace.roots else None


def _check_allowed(settings: Settings, path: str, root: Path | None) -> Callable[[str], bool]:
    allow = allow_function(settings.privacy.exclude, str(root) if root else None)
    if path and not allow(path):
        raise FixError(
            f"{Path(path).name} is never sent to a model (a credentials file or privacy.exclude)"
        )
    return allow


async def generate(
    engine: Engine,
    prompt: EditPrompt,
    *,
    temperature: float,
    request_id: str = "",
    document: str = "",
) -> Answer:
    """Run `prompt` on the edit model; cancelling the caller aborts the request. The model saw
    placeholders for secrets: the answer gets their values back (but for placeholders that
    `document` itself has)."""
    request_id = request_id or f"fix-{uuid.uuid4().hex[:12]}"
    request = GenerationRequest(
        prompt=prompt.text,
        max_tokens=prompt.max_tokens,
        temperature=temperature,
        stop=list(prompt.stop),
        request_id=request_id,
    )
    started = time.perf_counter()
    text, reason = "", None
    try:
        stream = engine.generate(request)
        async with contextlib.aclosing(stream):  # type: ignore[type-var]
            async for chunk in stream:
                if chunk.index == 0:
                    text, reason = chunk.text, chunk.finish_reason
    except EngineError as exc:
        raise FixError(f"the edit model failed: {exc}") from exc
    latency = (time.perf_counter() - started) * 1000
    answer = restore(prompt.prefill + text, document)
    return Answer(answer, reason, prompt.tokens, latency, request_id)


def _check_finished(answer: Answer, max_tokens: int) -> None:
    if answer.finish_reason == "length":
        raise FixError(
            f"the model's answer was cut at {max_tokens} tokens before it finished "
            "(fixes.maxTokens, or the model's context length)"
        )
    if answer.finish_reason == "abort":
        raise FixError("the request was cancelled")


async def _answer_code(
    engine: Engine,
    prompt: EditPrompt,
    settings: Settings,
    request_id: str,
    *,
    language_id: str,
    original: str = "",
    document: str = "",
) -> tuple[Answer, str]:
    """Run `prompt` and take the code out of the answer; FixError says why there is none."""
    answer = await generate(
        engine,
        prompt,
        temperature=settings.fixes.temperature,
        request_id=request_id,
        document=document,
    )
    if foreign_placeholder(answer.text, document):
        raise FixError("the model's answer has a placeholder for a secret it was not shown")
    log.debug("edit model answer (%s): %r", answer.finish_reason, answer.text)
    try:
        code = extract_code(answer.text, original=original, language_id=language_id)
    except AnswerError as exc:
        _check_finished(answer, prompt.max_tokens)
        raise FixError(str(exc)) from None
    _check_finished(answer, prompt.max_tokens)
    return answer, code


def _explanation(answer: str) -> str:
    """The text before the answer's first code block."""
    return answer.split("```", 1)[0].strip()


def _line_start(text: str, line: int) -> int:
    """Offset of the start of 0-based `line` (the end of the text past the last line)."""
    offset = 0
    for _ in range(line):
        nl = text.find("\n", offset)
        if nl < 0:
            return len(text)
        offset = nl + 1
    return offset


class _Target(msgspec.Struct, frozen=True):
    """The file a fix rewrites, when it is not the document the problem was found in."""

    path: str
    text: str
    language_id: str
    offset: int


def _retarget(
    workspace: WorkspaceService | None,
    read: ReadText | None,
    *,
    path: str,
    text: str,
    language_id: str,
    problems: Sequence[Problem],
    allow: Callable[[str], bool],
) -> _Target | None:
    """For a test failing on its own line: the function it calls there, when the index knows
    it and it may be read and sent."""
    failing = [p for p in problems if p.source == TESTS_SOURCE]
    if workspace is None or read is None or not path or not failing:
        return None
    lines = text.splitlines()
    line = lines[failing[0].line] if 0 <= failing[0].line < len(lines) else ""
    root = str(workspace.roots[0]) if workspace.roots else None
    symbol = code_under_test(workspace.index, path, line, language_id, root)
    if symbol is None or not allow(symbol.path):
        return None
    other = read(Path(symbol.path))
    if other is None:
        return None
    offset = _line_start(other, symbol.name_line)
    return _Target(symbol.path, other, language_of(symbol.path), offset)


async def propose_fix(
    host: EngineHost,
    *,
    text: str,
    language_id: str,
    path: str,
    start: int,
    end: int,
    problems: Sequence[Problem] = (),
    selection: bool = False,
    explain: bool = False,
    workspace: WorkspaceService | None = None,
    tree: tree_sitter.Tree | None = None,
    request_id: str = "",
    read: ReadText | None = None,
) -> Proposal:
    """Ask the edit model to fix the code around [start, end] of `text`; FixError says why not.

    When the problem is a test failing on its own assertion and `read` is given, the fix is
    for the function the test calls there (found in the workspace index), with the test as
    context; `Proposal.path` then names that file.
    """
    settings = host.settings
    root = _root(workspace)
    shown_root = str(root) if root else None
    allow = _check_allowed(settings, path, root)
    test: FailingTestCode | None = None
    target = (
        None
        if selection
        else _retarget(
            workspace,
            read,
            path=path,
            text=text,
            language_id=language_id,
            problems=problems,
            allow=allow,
        )
    )
    if target is not None:
        test_region = fix_region(text, language_id, start, end, tree=tree)
        test = FailingTestCode(
            display_path(path, shown_root), test_region.text(text), tuple(text.splitlines())
        )
        path, text, language_id = target.path, target.text, target.language_id
        start = end = target.offset
        tree = None
    region = fix_region(
        text,
        language_id,
        start,
        end,
        max_lines=settings.fixes.max_region_lines,
        selection=selection,
        tree=tree,
    )
    code = region.text(text)
    if not code.strip():
        raise FixError("there is no code to fix here")
    engine, tokenizer, chat = await _editor(host)
    context = gather_context(
        path=path or "untitled",
        text=text,
        offset=region.end,
        language_id=language_id,
        index=workspace.index if workspace and path else None,
        recent=None,
        tokenizer=tokenizer,
        budget_tokens=settings.fixes.context_tokens,
        root=shown_root,
        visible=(region.end - region.start, 0),
        allow=allow,
    )
    try:
        prompt = fix_prompt(
            chat=chat,
            tokenizer=tokenizer,
            context_len=host.max_model_len,
            max_tokens=settings.fixes.max_tokens,
            path=display_path(path, shown_root) if path else "untitled",
            language_id=language_id,
            document=text,
            code=code,
            first_line=region.first_line,
            problems=problems,
            definitions=context.files(),
            explain=explain,
            stop=settings.fixes.stop,
            kind=region.kind,
            test=test,
            redactor=host.redactor,
        )
    except PromptTooLarge as exc:
        raise FixError(str(exc)) from None
    answer, fixed = await _answer_code(
        engine,
        prompt,
        settings,
        request_id,
        original=code,
        language_id=language_id,
        document=text + ("\n" + test.code if test is not None else ""),
    )
    try:
        new_text, replacements = replace_region(text, region.start, region.end, fixed, language_id)
    except EditError as exc:
        raise FixError(str(exc)) from None
    return Proposal(
        path=path,
        old_text=text,
        new_text=new_text,
        replacements=replacements,
        region=region,
        answer=answer,
        explanation=_explanation(answer.text) if explain else "",
        redacted=prompt.redacted,
    )


async def _editor(host: EngineHost) -> tuple[Engine, PromptTokenizer, ChatTemplate]:
    try:
        return await host.editor()
    except EngineNotReady as exc:
        raise FixError(f"no edit model: {exc}") from None
    except Exception as exc:  # building a separate edit engine failed
        log.error("the edit model could not start", exc_info=True)
        raise FixError(f"the edit model could not start: {exc}") from None


async def propose_tests(
    host: EngineHost,
    *,
    text: str,
    language_id: str,
    path: str,
    offset: int,
    read: ReadText,
    workspace: WorkspaceService | None = None,
    tree: tree_sitter.Tree | None = None,
    request_id: str = "",
) -> TestsProposal:
    """Ask the edit model for unit tests of the function or class at `offset`, merged into the
    project's test file for this module (created when missing)."""
    settings = host.settings
    root = _root(workspace)
    allow = _check_allowed(settings, path, root)
    if not path:
        raise FixError("save the file first: tests are written next to it")
    region = enclosing_definition(text, language_id, offset, offset, tree=tree)
    if region is None or not region.name:
        raise FixError("put the cursor in a function or class to generate its tests")
    target = test_file_for(Path(path), language_id, root)
    existing = text if target.same_file else read(target.path) if target.exists else None
    engine, tokenizer, chat = await _editor(host)
    context = gather_context(
        path=path,
        text=text,
        offset=region.end,
        language_id=language_id,
        index=workspace.index if workspace else None,
        recent=None,
        tokenizer=tokenizer,
        budget_tokens=settings.fixes.context_tokens // 2,
        root=str(root) if root else None,
        visible=(region.end - region.start, 0),
        allow=allow,
    )
    shown_root = str(root) if root else None
    try:
        prompt = tests_prompt(
            chat=chat,
            tokenizer=tokenizer,
            context_len=host.max_model_len,
            max_tokens=settings.fixes.max_tokens,
            path=display_path(path, shown_root),
            language_id=language_id,
            name=region.name,
            code=region.text(text),
            import_hint=import_hint(Path(path), language_id, root),
            existing="" if target.same_file else existing or "",
            existing_path=display_path(str(target.path), shown_root),
            definitions=context.files(),
            stop=settings.fixes.stop,
            redactor=host.redactor,
        )
    except PromptTooLarge as exc:
        raise FixError(str(exc)) from None
    answer, code = await _answer_code(
        engine,
        prompt,
        settings,
        request_id,
        language_id=target.language_id,
        document=text + "\n" + (existing or ""),
    )
    merged = merge_tests(existing, code, target.language_id)
    before = error_count(target.language_id, existing) if existing is not None else 0
    after = error_count(target.language_id, merged)
    if after is not None and after > (before or 0):
        raise FixError("the generated tests do not parse; nothing was changed")
    if existing is not None and merged == existing:
        raise FixError("the model proposed no tests")
    return TestsProposal(
        target=target, old_text=existing, new_text=merged, name=region.name, answer=answer
    )
