"""Instruction prompts for fixes and generated tests, fitted to the edit model's context.

A fix prompt holds the problems (diagnostics with the line they point at, and a failing
test's output), definitions of the symbols the code uses, and the code to rewrite. The answer
is prefilled with an opening code fence so that even a small model answers with code, and the
closing fence stops generation. What does not fit is dropped in order: definitions, then the
oldest part of the test output; code that does not fit is an error.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import msgspec

from engine.chat import ChatTemplate
from engine.prompt import ContextFile
from engine.tokenizer import PromptTokenizer
from lsp_server.privacy.redact import Redactor

FENCE_TAGS = {
    "javascriptreact": "jsx",
    "typescriptreact": "tsx",
    "shellscript": "sh",
    "plaintext": "",
}
LANGUAGE_NAMES = {
    "python": "Python",
    "javascript": "JavaScript",
    "javascriptreact": "JavaScript (JSX)",
    "typescript": "TypeScript",
    "typescriptreact": "TypeScript (TSX)",
    "java": "Java",
    "c": "C",
    "cpp": "C++",
    "go": "Go",
    "rust": "Rust",
    "plaintext": "text",
}
TEST_FRAMEWORKS = {
    "python": "pytest (plain test functions and assert)",
    "java": "JUnit 5",
    "go": "the standard testing package",
    "rust": "#[test] functions",
    "javascript": "Jest-style describe/test/expect",
    "javascriptreact": "Jest-style describe/test/expect",
    "typescript": "Jest-style describe/test/expect",
    "typescriptreact": "Jest-style describe/test/expect",
    "c": "plain assert() calls in a main function",
    "cpp": "GoogleTest",
}
CLOSING_FENCE = "\n```"
MIN_ANSWER_TOKENS = 32
DETAIL_LINES = 40
"""Most lines of a failing test's output shown (its end, where the innermost frames are)."""


class PromptTooLarge(ValueError):
    """The code to rewrite does not fit the edit model's context."""


class Problem(msgspec.Struct, frozen=True):
    """Something wrong at a line of the document: a diagnostic or a failing test."""

    line: int
    """0-based line in the document."""
    message: str
    source: str = ""
    details: str = ""
    """A failing test's traceback or output."""


class FailingTestCode(msgspec.Struct, frozen=True):
    """The test whose failure the fix is for, when the code to fix is what it calls."""

    path: str
    code: str
    lines: tuple[str, ...]
    """The test file's lines (the problems' line numbers refer to it)."""


class EditPrompt(msgspec.Struct, frozen=True):
    """A rendered instruction prompt and how to sample its answer."""

    text: str
    prefill: str
    """The start of the answer, already in `text`; the answer is `prefill` + generated."""
    tokens: int
    max_tokens: int
    stop: tuple[str, ...]
    redacted: dict[str, int] = {}
    """Secrets replaced in `text`, by kind."""


def fence_tag(language_id: str) -> str:
    return FENCE_TAGS.get(language_id, language_id)


def language_name(language_id: str) -> str:
    return LANGUAGE_NAMES.get(language_id, language_id or "code")


def _block(code: str, tag: str) -> str:
    return f"```{tag}\n{code.rstrip()}\n```"


def _definitions(files: Sequence[ContextFile], tag: str) -> str:
    if not files:
        return ""
    blocks = "\n".join(f"`{f.path}`:\n{_block(f.text, tag)}" for f in files)
    return f"Definitions this code uses, for reference (do not repeat them):\n{blocks}\n\n"


def _problems(problems: Sequence[Problem], lines: Sequence[str], where: str = "") -> str:
    if not problems:
        return "No problem was reported; find the bug from what the code is meant to do.\n\n"
    out = [f"Problems reported{where}:"]
    for p in problems:
        shown = lines[p.line].strip() if 0 <= p.line < len(lines) else ""
        where = f"line {p.line + 1}" + (f" `{shown[:120]}`" if shown else "")
        source = f" [{p.source}]" if p.source else ""
        out.append(f"- {where}: {p.message.strip()}{source}")
    return "\n".join(out) + "\n\n"


def _details(problems: Sequence[Problem], max_lines: int) -> str:
    texts = [p.details.strip() for p in problems if p.details.strip()]
    if not texts or max_lines <= 0:
        return ""
    lines = "\n\n".join(dict.fromkeys(texts)).splitlines()[-max_lines:]
    return "Failing test output (end):\n```\n" + "\n".join(lines) + "\n```\n\n"


Render = Callable[[Sequence[ContextFile], int], str]
"""The message for the definitions and the number of test-output lines to show."""


class _Fitter:
    """Renders a message with fewer extras until it fits the context."""

    def __init__(
        self,
        chat: ChatTemplate,
        tokenizer: PromptTokenizer,
        context_len: int,
        redactor: Redactor | None = None,
    ) -> None:
        self.chat = chat
        self.tokenizer = tokenizer
        self.context_len = context_len
        self.redactor = redactor

    def fit(
        self,
        render: Render,
        *,
        prefill: str,
        answer_tokens: int,
        max_tokens: int,
        definitions: Sequence[ContextFile],
        detail_lines: int,
        stop: tuple[str, ...],
    ) -> EditPrompt:
        defs = list(definitions)
        details = detail_lines
        while True:
            text = self.chat.render(render(defs, details), prefill)
            redacted: dict[str, int] = {}
            if self.redactor is not None:
                # Regions, tests and definitions are whole lines: redacting the rendered prompt
                # sees every secret whole, and the count below includes the placeholders.
                red = self.redactor.redact(text)
                text, redacted = red.text, dict(red.kinds)
            tokens = len(self.tokenizer.encode(text))
            room = self.context_len - tokens
            if room >= min(answer_tokens, max_tokens):
                return EditPrompt(
                    text=text,
                    prefill=prefill,
                    tokens=tokens,
                    max_tokens=max(1, min(max_tokens, room)),
                    stop=stop,
                    redacted=redacted,
                )
            if defs:
                defs.pop()
            elif details > 0:
                details = details // 2 if details > 4 else 0
            else:
                raise PromptTooLarge(
                    f"the code is too large for the edit model's context ({tokens} prompt "
                    f"tokens, {self.context_len} in all); select fewer lines"
                )


def _answer_budget(max_tokens: int, code_tokens: int) -> int:
    """Tokens a rewrite of `code_tokens` may take: room to grow, but not to ramble on."""
    return min(max_tokens, 2 * code_tokens + 2 * MIN_ANSWER_TOKENS)


def fix_prompt(
    *,
    chat: ChatTemplate,
    tokenizer: PromptTokenizer,
    context_len: int,
    max_tokens: int,
    path: str,
    language_id: str,
    document: str,
    code: str,
    first_line: int,
    problems: Sequence[Problem],
    definitions: Sequence[ContextFile] = (),
    explain: bool = False,
    stop: Sequence[str] = (),
    kind: str = "lines",
    test: FailingTestCode | None = None,
    redactor: Redactor | None = None,
) -> EditPrompt:
    """The prompt asking for `code` (lines from `first_line` of `document`) with the bug fixed.

    Instruction models get a request; base models (`chat.style == "document"`) a document
    that a corrected version naturally continues. With `explain`, an instruction model first
    explains the bug, then gives the code (no prefill); otherwise the answer is prefilled with
    the opening fence. With `test`, the problems are that test's failures and `code` is what it
    calls.
    """
    tag = fence_tag(language_id)
    lines = test.lines if test is not None else tuple(document.splitlines())
    in_test = f" in the test `{test.path}`" if test is not None else ""
    test_block = (
        f"The failing test, from `{test.path}`:\n{_block(test.code, tag)}\n\n" if test else ""
    )
    last_line = first_line + max(0, code.count("\n") - (1 if code.endswith("\n") else 0))
    language = language_name(language_id)
    explain = explain and chat.style == "instruct"
    code_tokens = len(tokenizer.encode(code))

    def instruct(defs: Sequence[ContextFile], detail_lines: int) -> str:
        reply = (
            "First explain the bug in one or two sentences. Then give the corrected code in "
            f"one ```{tag} block"
            if explain
            else f"Reply with the corrected code only, in one ```{tag} block"
        )
        return (
            f"Fix the bug in this {language} code from `{path}`.\n\n"
            + _problems(problems, lines, in_test)
            + _details(problems, detail_lines)
            + test_block
            + _definitions(defs, tag)
            + f"Code to fix (lines {first_line + 1}-{last_line + 1} of the file):\n"
            + _block(code, tag)
            + f"\n\n{reply}: the whole code above with the bug fixed, keeping its names, "
            "signatures and indentation, and changing nothing else."
        )

    what = "function" if kind == "function" else "class" if kind == "class" else "code"

    def document_style(defs: Sequence[ContextFile], detail_lines: int) -> str:
        errors = "".join(f"Error: {p.message.strip()}\n" for p in problems)
        if test is not None:
            return (
                _definitions(defs, tag)
                + f"Here is a {language} test from `{test.path}` that fails.\n\n"
                + _block(test.code, tag)
                + "\n\n"
                + errors
                + "\n"
                + _details(problems, detail_lines)
                + f"Here is the buggy {what} it calls, from `{path}`.\n\n"
                + _block(code, tag)
                + f"\n\nHere is the corrected {what}:\n\n"
            )
        return (
            _definitions(defs, tag)
            + f"Here is a buggy {language} {what} from `{path}`"
            + (" and the error its test reports" if problems else "")
            + ".\n\n"
            + _block(code, tag)
            + "\n\n"
            + (errors + "\n" if errors else "")
            + _details(problems, detail_lines)
            + f"Here is the corrected {what}:\n\n"
        )

    prefill = "" if explain else f"```{tag}\n"
    stops = (*chat.stop, *stop) if explain else (*chat.stop, CLOSING_FENCE, *stop)
    return _Fitter(chat, tokenizer, context_len, redactor).fit(
        instruct if chat.style == "instruct" else document_style,
        prefill=prefill,
        answer_tokens=code_tokens + MIN_ANSWER_TOKENS,
        max_tokens=_answer_budget(max_tokens, code_tokens),
        definitions=definitions,
        detail_lines=DETAIL_LINES,
        stop=stops,
    )


def tests_prompt(
    *,
    chat: ChatTemplate,
    tokenizer: PromptTokenizer,
    context_len: int,
    max_tokens: int,
    path: str,
    language_id: str,
    name: str,
    code: str,
    import_hint: str = "",
    existing: str = "",
    existing_path: str = "",
    definitions: Sequence[ContextFile] = (),
    stop: Sequence[str] = (),
    redactor: Redactor | None = None,
) -> EditPrompt:
    """The prompt asking for a test file for `name` (its definition is `code`); in Python the
    answer is prefilled with the import of `name` from `import_hint`."""
    tag = fence_tag(language_id)
    language = language_name(language_id)
    framework = TEST_FRAMEWORKS.get(language_id, "the language's usual test framework")
    head = "\n".join(existing.splitlines()[:60])
    shown_existing = (
        f"The test file `{existing_path}` already has:\n" + _block(head, tag) + "\n\n"
        if head.strip()
        else ""
    )
    where = f"It lives in `{import_hint}`.\n\n" if import_hint and language_id != "python" else ""

    def instruct(defs: Sequence[ContextFile], detail_lines: int) -> str:
        return (
            f"Write unit tests with {framework} for `{name}` from `{path}`.\n\n"
            + where
            + shown_existing
            + _definitions(defs, tag)
            + "Code under test:\n"
            + _block(code, tag)
            + f"\n\nReply with one ```{tag} block holding a complete test file: imports first, "
            "then a few focused tests of normal cases, edge cases and errors"
            + (" (new tests only)." if shown_existing else ".")
        )

    def document_style(defs: Sequence[ContextFile], detail_lines: int) -> str:
        return (
            _definitions(defs, tag)
            + f"Here is `{name}`, {language} code from `{path}`.\n\n"
            + where
            + _block(code, tag)
            + f"\n\n{shown_existing}Here are its unit tests, written with {framework}:\n\n"
        )

    prefill = f"```{tag}\n"
    if language_id == "python" and import_hint:
        prefill += f"from {import_hint} import {name}\n"
    return _Fitter(chat, tokenizer, context_len, redactor).fit(
        instruct if chat.style == "instruct" else document_style,
        prefill=prefill,
        answer_tokens=128,
        max_tokens=max_tokens,
        definitions=definitions,
        detail_lines=0,
        stop=(*chat.stop, CLOSING_FENCE, *stop),
    )


__all__ = [
    "EditPrompt",
    "FailingTestCode",
    "Problem",
    "PromptTooLarge",
    "fence_tag",
    "fix_prompt",
    "language_name",
    "tests_prompt",
]
