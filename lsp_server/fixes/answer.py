"""The code in an instruction model's fix answer: the best fenced block, tolerant of chatter.

The server prefills the answer with an opening fence and may stop generation at the closing
one, so the text given here usually starts with ```` ```python ```` and may end inside the
block. Models still add chatter around (and sometimes inside) the block, quote the code they
were given, show shell commands or output, re-open a fence the prefill had already opened,
or end with a special token written out as text. :func:`extract_code` picks the block that
is the fix and raises :class:`AnswerError`, whose message is shown to the user, when there
is none.
"""

from __future__ import annotations

import difflib
import re

import msgspec

from lsp_server.fixes.edits import trim_blank

__all__ = ["AnswerError", "Block", "extract_code", "parse_blocks"]


class AnswerError(ValueError):
    """Why an answer gives no usable code; str() is shown to the user."""


class Block(msgspec.Struct, frozen=True):
    """One fenced block of an answer."""

    tag: str
    """The info string's first word, lower-cased (``python`` for ```` ```python title="x" ````)."""
    code: str
    """The content without the fence's indentation, blank edge lines and chatter edge lines;
    ends with a newline unless empty."""
    closed: bool
    """Whether a closing fence ended the block (the last one may run to the answer's end)."""


NO_CODE_BLOCK = "the model's answer has no code block"

# Tokens that never belong to code: whatever follows one is not part of the answer.
_END_TOKENS = (
    "<|EOT|>",
    "<\uff5cend\u2581of\u2581sentence\uff5c>",  # DeepSeek: fullwidth bars, U+2581 blanks
    "<|end\u2581of\u2581sentence|>",
    "<|end_of_sentence|>",
    "<end_of_turn>",
    "<start_of_turn>",
    "<|im_end|>",
    "<|im_start|>",
    "<|endoftext|>",
    "<|eot_id|>",
    "<|file_separator|>",
)
# Tokens that could be text in some code (HTML/JSX `</s>`): removed only at the very end.
_TRAILING_TOKENS = ("</s>", "<eos>", "<|end|>")

_FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})(?P<info>.*)$")

# LSP language id -> info-string tags that mean "code in this language".
_TAGS: dict[str, frozenset[str]] = {
    "python": frozenset({"python", "py", "python3", "py3", "pycon"}),
    "javascript": frozenset({"javascript", "js", "jsx", "mjs", "cjs", "node"}),
    "javascriptreact": frozenset({"javascript", "js", "jsx"}),
    "typescript": frozenset({"typescript", "ts", "tsx", "javascript", "js"}),
    "typescriptreact": frozenset({"typescript", "ts", "tsx", "javascript", "js", "jsx"}),
    "java": frozenset({"java"}),
    "go": frozenset({"go", "golang"}),
    "c": frozenset({"c", "h"}),
    "cpp": frozenset({"cpp", "c++", "cxx", "cc", "hpp", "c", "h"}),
    "rust": frozenset({"rust", "rs"}),
    "shellscript": frozenset({"bash", "sh", "shell", "zsh"}),
}
# Tags of blocks that are not a fix: commands to run, their output, a patch.
_NOT_CODE = frozenset(
    {
        "bash",
        "sh",
        "shell",
        "zsh",
        "fish",
        "console",
        "shell-session",
        "shellsession",
        "terminal",
        "powershell",
        "ps1",
        "pwsh",
        "cmd",
        "bat",
        "batch",
        "text",
        "txt",
        "plaintext",
        "plain",
        "output",
        "out",
        "log",
        "stdout",
        "stderr",
        "diff",
        "patch",
    }
)
_SHELL_LINE = re.compile(
    r"^(?:[$%>] |\$$)"
    r"|^(?:sudo |)(?:pip3?|pipx|uv|poetry|conda|pytest|py\.test|tox|nox|npm|npx|yarn|pnpm"
    r"|mvn|gradle|\./gradlew|cargo|rustc|make|cd|ls|git|javac|tsc|jest|vitest)(?:\s|$)"
    r"|^python3?(?: -m| \S+\.py)(?:\s|$)"
    r"|^node \S+\.[cm]?js(?:\s|$)"
    r"|^go (?:test|run|build|get|mod|install|vet)(?:\s|$)"
    r"|^java (?:-\S+|\S+\.java)(?:\s|$)"
    r"|^Traceback \(most recent call last\):$"
)
_INLINE_CODE = re.compile(r"`[^`]*`")
_BULLET = re.compile(r"^(?:[-*+]|\d+[.)])\s+")
_FIRST_WORD = re.compile(r"^[A-Z][A-Za-z'\u2019]*[,:!.]?$")
_PLAIN_WORD = re.compile(r"^[A-Za-z'\u2019,-]+$")


def _strip_special_tokens(text: str) -> str:
    """Cut at the first end-of-turn token; drop ambiguous ones at the very end."""
    for token in _END_TOKENS:
        index = text.find(token)
        if index >= 0:
            text = text[:index]
    while True:
        stripped = text.rstrip()
        for token in _TRAILING_TOKENS:
            if stripped.endswith(token):
                text = stripped[: -len(token)]
                break
        else:
            return text


def _is_prose_line(line: str) -> bool:
    """A line of English chatter ("Here is the fixed function:"), never a line of code.

    Chatter sits at column 0, starts with a capitalised word and has at least three words;
    it either ends like a sentence (``.``, ``!``, ``?``, ``:``) or is words only. A markdown
    bold heading (``**Explanation:**``) counts too.
    """
    if not line or line[0] in " \t":
        return False
    text = _INLINE_CODE.sub("code", line.rstrip())
    if re.fullmatch(r"\*\*[^*]+\*\*:?", text):
        return True
    text = _BULLET.sub("", text).replace("**", "")
    words = text.split()
    if len(words) < 3 or not _FIRST_WORD.match(words[0]):
        return False
    if text[-1] in ".!?:" and not text.endswith(("::", "...")):
        return True
    return all(_PLAIN_WORD.match(word) for word in words)


def _is_prose(lines: list[str]) -> bool:
    content = [line for line in lines if line.strip()]
    return bool(content) and all(_is_prose_line(line) for line in content)


def _peel_chatter(lines: list[str]) -> list[str]:
    """Drop leading and trailing paragraphs of chatter from a block that also has code."""
    lines = trim_blank(lines)
    if _is_prose(lines):
        return lines
    start, end = 0, len(lines)
    while start < end and (not lines[start].strip() or _is_prose_line(lines[start])):
        start += 1
    while end > start and (not lines[end - 1].strip() or _is_prose_line(lines[end - 1])):
        end -= 1
    return trim_blank(lines[start:end])


def _dedent(line: str, indent: int) -> str:
    """``line`` without up to ``indent`` leading whitespace characters."""
    cut = 0
    while cut < indent and cut < len(line) and line[cut] in " \t":
        cut += 1
    return line[cut:]


def _tag(info: str) -> str:
    word = info.strip().split(maxsplit=1)[0] if info.strip() else ""
    word = word.strip("{}").lstrip(".").lower()
    return word.removeprefix("language-").split(",", 1)[0]


def _make_block(tag: str, lines: list[str], closed: bool) -> Block:
    if not closed:
        # Generation cut off inside a closing fence leaves one or two fence characters.
        trimmed = trim_blank(lines)
        if trimmed and re.fullmatch(r"[ \t]*(?:`{1,2}|~{1,2})[ \t]*", trimmed[-1]):
            lines = trimmed[:-1]
    lines = _peel_chatter(lines)
    if lines:
        last = lines[-1]
        for token in _TRAILING_TOKENS:
            if last.rstrip().endswith(token):
                last = last.rstrip()[: -len(token)]
        lines = trim_blank([*lines[:-1], last])
    return Block(tag=tag, code="\n".join(lines) + "\n" if lines else "", closed=closed)


def parse_blocks(answer: str) -> list[Block]:
    """The fenced blocks of ``answer`` in order (special tokens and line endings handled).

    Fences are ```` ``` ```` or ``~~~`` (3 or more, optional info string, any indentation,
    which is removed from the content). A line with an opening fence *and* an info string
    inside a block of the same fence character starts a new block: models re-open the fence
    the prefill opened, or keep talking inside it and then open their own.
    """
    text = _strip_special_tokens(answer.replace("\r\n", "\n").replace("\r", "\n"))
    blocks: list[Block] = []
    current: list[str] | None = None
    tag, char, length, indent = "", "", 0, 0
    for line in text.split("\n"):
        match = _FENCE.match(line)
        fence = match.group("fence") if match else ""
        info = match.group("info").strip() if match else ""
        if match and fence[0] == "`" and "`" in info:
            match = None  # not a fence: a backtick fence's info string has no backticks
        if current is not None and match and fence[0] == char and len(fence) >= length:
            blocks.append(_make_block(tag, current, closed=True))
            current = None
            if not info:
                continue
        if current is not None:
            current.append(_dedent(line, indent))
        elif match:
            current = []
            tag, char, length = _tag(info), fence[0], len(fence)
            indent = len(match.group("indent"))
    if current is not None:
        blocks.append(_make_block(tag, current, closed=False))
    return blocks


def _words(code: str) -> list[str]:
    return [line.strip() for line in code.split("\n") if line.strip()]


def _looks_like_shell(code: str) -> bool:
    lines = _words(code)
    return bool(lines) and all(_SHELL_LINE.match(line) and " = " not in line for line in lines)


def _tier(block: Block, language_id: str) -> int:
    """How likely a block is the fix: 3 code of this language (or untagged), 2 code tagged
    as another language, 1 commands, output or a patch, 0 chatter."""
    wanted = _TAGS.get(language_id, frozenset({language_id} if language_id else ()))
    if _is_prose(block.code.split("\n")):
        return 0
    if _looks_like_shell(block.code) and language_id != "shellscript":
        return 1  # even when tagged ```python: models mislabel commands
    if block.tag in wanted:
        return 3
    if block.tag in _NOT_CODE:
        return 1
    if not block.tag or not language_id:
        return 3
    return 2


def _quote(code: str, limit: int = 100) -> str:
    text = " ".join(_words(code))
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "\u2026"


def extract_code(answer: str, *, original: str = "", language_id: str = "") -> str:
    """The code of the fix in ``answer`` (prefill included), ending with a newline.

    Among several blocks, commands, output and chatter are ignored when a block of code
    exists, and so is a block that only quotes ``original`` when another one differs; of
    the rest, the block whose lines are most like ``original``'s wins, ties going to the
    longest. Raises :class:`AnswerError` when the answer has no usable block.
    """
    blocks = parse_blocks(answer)
    if not blocks:
        raise AnswerError(NO_CODE_BLOCK)
    candidates = [block for block in blocks if block.code.strip()]
    if not candidates:
        raise AnswerError("the model's answer has an empty code block")
    tiers = {id(block): _tier(block, language_id) for block in candidates}
    best = max(tiers.values())
    if best == 0:
        raise AnswerError(
            f'the model proposed no change (its answer has no code: "{_quote(candidates[0].code)}")'
        )
    if best == 1:
        raise AnswerError(
            "the model's answer has no code for this file, only commands, output or a patch"
        )
    candidates = [block for block in candidates if tiers[id(block)] == best]
    reference = _words(original)
    if reference:
        changed = [block for block in candidates if _words(block.code) != reference]
        candidates = changed or candidates

    def score(block: Block) -> tuple[float, int]:
        matcher = difflib.SequenceMatcher(None, reference, _words(block.code), autojunk=False)
        return (matcher.ratio() if reference else 0.0), len(block.code)

    return max(candidates, key=score).code
