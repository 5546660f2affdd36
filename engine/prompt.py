"""Token-budgeted FIM prompt assembly: whole lines nearest the cursor first, repository
context (other files' code) before them."""

from __future__ import annotations

import weakref
from collections.abc import Callable, Iterator, Sequence
from pathlib import PurePosixPath

import msgspec

from engine.templates import REPO_MARKERS, FimTemplate
from engine.tokenizer import PromptTokenizer

_CACHE_MAX = 65_536
TRUST_AFTER = 32
"""Prompts counted whole, each no more than its line-by-line estimate, before a tokenizer's
estimates stand for whole counts."""
CHECK_EVERY = 16
"""Once they do, one prompt in this many is still counted whole."""


class _Counts:
    """What is known of one tokenizer: its counts of lines, and whether its line-by-line
    estimate of a prompt has ever been below the prompt's whole count.

    Counting a whole prompt costs as much as the rest of its assembly (a millisecond for
    1,500 tokens). Code tokenizers merge across line joints only what the estimate counts
    apart (blank lines, trailing whitespace): the estimate is then an upper bound, and a
    prompt within budget by it is within budget. That is checked, not assumed: the first
    `TRUST_AFTER` prompts and one in `CHECK_EVERY` after them are counted whole, and a single
    estimate found low means every later prompt is counted whole.
    """

    __slots__ = ("broken", "checked", "lines", "since_check")

    def __init__(self) -> None:
        self.lines: dict[str, int] = {}
        self.checked = 0
        self.since_check = 0
        self.broken = False

    def whole_count_needed(self) -> bool:
        if self.broken or self.checked < TRUST_AFTER:
            return True
        self.since_check += 1
        return self.since_check % CHECK_EVERY == 0

    def record(self, estimate: int, whole: int) -> None:
        self.checked += 1
        if whole > estimate:
            self.broken = True


_counts: weakref.WeakKeyDictionary[object, _Counts] = weakref.WeakKeyDictionary()


class ContextFile(msgspec.Struct, frozen=True):
    """Code from another file to show the model before the current file."""

    path: str
    """Path as the model should see it (relative to the repository root)."""
    text: str


class BuiltPrompt(msgspec.Struct, frozen=True):
    """A rendered prompt and what of the prefix and suffix it kept."""

    text: str
    """The prompt to send, without BOS (which the engine's tokenizer may add)."""
    prefix: str
    """The part of the prefix kept (ends at the cursor)."""
    suffix: str
    """The part of the suffix kept (starts at the cursor)."""
    prompt_tokens: int
    """Token count of `text` (no special tokens added), at most the budget: exact when
    `counted`, else the line-by-line estimate (see `build_prompt`)."""
    truncated_prefix: bool = False
    """Some of the prefix was left out."""
    truncated_suffix: bool = False
    """Some of the suffix was left out."""
    context_files: int = 0
    """How many of the given context files were rendered (in their order, skipping those
    that did not fit)."""
    context_tokens: int = 0
    """Estimated tokens of the rendered context files (each counted alone)."""
    counted: bool = True
    """`text` was counted whole (not only line by line)."""


def _counts_of(tokenizer: PromptTokenizer) -> _Counts:
    """Per-tokenizer counts, kept across calls (lines repeat from keystroke to keystroke)."""
    try:
        counts = _counts.get(tokenizer)
        if counts is None:
            counts = _counts[tokenizer] = _Counts()
    except TypeError:  # not weak-referenceable or not hashable: no reuse across calls
        return _Counts()
    if len(counts.lines) > _CACHE_MAX:
        counts.lines.clear()
    return counts


def _lines_backward(text: str) -> Iterator[tuple[str, bool]]:
    """Lines of `text` (without newlines) from the last to the first, each with whether a
    newline precedes it."""
    end = len(text)
    while True:
        start = text.rfind("\n", 0, end) + 1
        yield text[start:end], start > 0
        if start == 0:
            return
        end = start - 1


def _lines_forward(text: str) -> Iterator[tuple[str, bool]]:
    """Lines of `text` (without newlines) from the first to the last, each with whether a
    newline precedes it."""
    start = 0
    while True:
        nl = text.find("\n", start)
        if nl < 0:
            yield text[start:], start > 0
            return
        yield text[start:nl], start > 0
        start = nl + 1


class _Side:
    """Lines taken from one side of the cursor, nearest first, while they fit a limit.

    A line is counted together with the newline before it: byte-level BPE tokenizers merge a
    newline with the indentation after it, so this is close to the count of the joined text.
    """

    def __init__(
        self,
        lines: Iterator[tuple[str, bool]],
        clean: Callable[[str], str],
        count: Callable[[str], int],
        first_extra: int = 0,
    ) -> None:
        self._lines = lines
        self._clean = clean
        self._count = count
        self._first_extra = first_extra
        self._pending: tuple[str, int] | None = None
        self.kept: list[str] = []
        self.counts: list[int] = []
        self.used = 0
        self.exhausted = False
        self.closed = False
        self.dropped = False

    def fill(self, limit: int) -> None:
        """Take lines in order while the running total stays within `limit`."""
        while not self.closed:
            if self._pending is None:
                item = next(self._lines, None)
                if item is None:
                    self.exhausted = True
                    return
                line, newline_before = item
                line = self._clean(line)
                n = self._count("\n" + line if newline_before else line)
                self._pending = (line, n + (0 if self.kept else self._first_extra))
            line, n = self._pending
            if self.used + n > limit:
                return
            self.kept.append(line)
            self.counts.append(n)
            self.used += n
            self._pending = None

    def drop(self) -> int:
        """Drop the farthest kept line; returns its estimated tokens."""
        self.kept.pop()
        n = self.counts.pop()
        self.used -= n
        self.dropped = True
        return n

    @property
    def truncated(self) -> bool:
        """Whether lines beyond the kept ones were left out."""
        return self.dropped or self.closed or not self.exhausted


def _cut_left(line: str, limit: int, count: Callable[[str], int]) -> str:
    """The longest end of `line` (by characters) that encodes to at most `limit` tokens."""
    lo, hi = 0, len(line)
    while lo < hi:
        mid = (lo + hi) // 2
        if count(line[mid:]) <= limit:
            hi = mid
        else:
            lo = mid + 1
    return line[hi:]


_HASH_EXTS = (
    ".py .pyi .pyx .rb .sh .bash .zsh .fish .pl .pm .r .jl .yaml .yml .toml .cfg .ini .mk "
    ".cmake .ex .exs .nim .ps1 .tcl .coffee .cr .dockerfile"
)
_DASH_EXTS = ".lua .sql .hs .elm .ada .adb .ads .vhd .vhdl"
_HASH_COMMENT = frozenset(_HASH_EXTS.split())
_DASH_COMMENT = frozenset(_DASH_EXTS.split())
_HASH_NAMES = frozenset({"makefile", "dockerfile", "gemfile", "rakefile", "cmakelists.txt"})


def comment_prefix(path: str) -> str:
    """The line-comment start for a file: ``#`` for Python-like, ``--`` for Lua/SQL/Haskell,
    ``//`` otherwise (C-family and most brace languages)."""
    name = PurePosixPath(path.replace("\\", "/")).name.lower()
    suffix = PurePosixPath(name).suffix
    if suffix in _HASH_COMMENT or name in _HASH_NAMES:
        return "#"
    if suffix in _DASH_COMMENT:
        return "--"
    return "//"


class _Layout(msgspec.Struct, frozen=True):
    """Where repository context goes: ``head blocks* tail`` before the FIM frame (repository
    formats), or ``blocks* lead`` at the start of the prefix part (path comments)."""

    fmt: str
    head: str = ""
    tail: str = ""
    lead: str = ""

    def block(self, path: str, text: str) -> str:
        body = text.strip("\n")
        if self.fmt == "qwen":  # Qwen2.5-Coder: a newline after each file
            return f"{REPO_MARKERS['qwen'][1]}{path}\n{body}\n\n"
        if self.fmt == "starcoder2":
            return f"{REPO_MARKERS['starcoder2'][1]}{path}\n{body}\n"
        return f"{comment_prefix(path)} path: {path}\n{body}\n\n"

    def render(self, template: FimTemplate, blocks: str, prefix: str, suffix: str) -> str:
        if self.fmt:
            return self.head + blocks + self.tail + template.render(self.lead + prefix, suffix)
        return template.render(blocks + self.lead + prefix, suffix)


def _layout(fmt: str, file_path: str | None, repo_name: str) -> _Layout:
    """The fixed parts of the context layout for a repository format ("" for path comments).

    Qwen2.5-Coder: ``<|repo_name|>name\n`` ... ``<|file_sep|>current\n`` then the FIM part;
    StarCoder2: ``<repo_name>name`` ... ``<file_sep>`` then the FIM part, whose prefix starts
    with ``current\n``.
    """
    if fmt in REPO_MARKERS:
        name_token, sep = REPO_MARKERS[fmt]
        if fmt == "qwen":
            head = f"{name_token}{repo_name}\n" if repo_name else ""
            return _Layout(fmt, head=head, tail=f"{sep}{file_path}\n" if file_path else "")
        head = f"{name_token}{repo_name}" if repo_name else ""
        return _Layout(fmt, head=head, tail=sep, lead=f"{file_path}\n" if file_path else "")
    lead = f"{comment_prefix(file_path)} path: {file_path}\n" if file_path else ""
    return _Layout("", lead=lead)


def build_prompt(
    template: FimTemplate,
    tokenizer: PromptTokenizer,
    prefix: str,
    suffix: str,
    budget_tokens: int,
    prefix_share: float = 0.75,
    *,
    context: Sequence[ContextFile] = (),
    file_path: str | None = None,
    repo_name: str = "",
    context_share: float = 0.3,
) -> BuiltPrompt:
    """Render `template` with as much of `prefix` and `suffix` as fits in `budget_tokens`.

    Whole lines are kept outwards from the cursor: the prefix's current (partial) line always,
    then earlier lines nearest first; the rest of the cursor line in the suffix, then later
    lines. After the markers' own tokens, the prefix gets `prefix_share` of the budget and the
    suffix the rest; when one side runs out of text its unused share goes to the other (for a
    prefix-only template the suffix is ignored and the prefix gets everything; that is not
    reported as truncation). The kept suffix ends with a newline unless it is the whole
    suffix. If the current line alone does not fit, it is cut from the left by characters and
    nothing before it is kept.

    Repository context comes first, so that it is a stable prefix across keystrokes: the
    `context` files in their order (each whole or not at all, within `context_share` of
    `budget_tokens` and never crowding out the cursor line; what they leave goes to prefix
    and suffix), then `file_path`, the current file's path. Families with a repository format
    (`FimTemplate.repo_format`) get it, when the tokenizer has its tokens: Qwen2.5-Coder
    ``<|repo_name|>repo\n<|file_sep|>path\ntext\n...<|file_sep|>current\n<|fim_prefix|>...``,
    StarCoder2 ``<repo_name>repo<file_sep>path\ntext<file_sep><fim_prefix>current\n...``.
    Other families get path comments (``# path: a/b.py``, ``// path: a/b.ts``) before each
    file at the start of the prefix part (inside DeepSeek's ``fim begin``). `repo_name` is
    only shown by the repository formats.

    Only the lines that can fit are looked at. Each is counted once, with the newline before it
    (counts are cached per tokenizer across calls); the rendered text is then counted exactly
    and, should token merges at line joints put it over budget, lines are dropped farthest
    first (then context files, last first) until it fits. A tokenizer whose estimates have
    proved to be upper bounds gets that whole count only now and then (`_Counts`).

    Marker strings written literally in the user's text would tokenize as the markers
    themselves, so every occurrence is removed from the text, context and paths included (see
    `FimTemplate.strip_markers`); the kept prefix and suffix are then the end and start of the
    text so cleaned.

    Raises ValueError when the budget cannot even hold the template's markers.
    """
    if not 0.0 <= prefix_share <= 1.0:
        raise ValueError(f"prefix_share must be within [0, 1], got {prefix_share}")
    if not 0.0 <= context_share <= 1.0:
        raise ValueError(f"context_share must be within [0, 1], got {context_share}")
    counts = _counts_of(tokenizer)
    cache = counts.lines

    def count(text: str) -> int:
        n = cache.get(text)
        if n is None:
            n = cache[text] = len(tokenizer.encode(text))
        return n

    frame_tokens = count(template.render("", ""))
    if frame_tokens > budget_tokens:
        raise ValueError(
            f"a budget of {budget_tokens} tokens cannot hold the markers of template "
            f"{template.name!r} ({frame_tokens} tokens)"
        )
    clean = template.strip_markers

    def clean_path(path: str) -> str:
        return clean(path.replace("\r", " ").replace("\n", " ")).strip()

    layout = _Layout("")
    if context or file_path or repo_name:
        fmt = template.repo_format
        if fmt and not all(count(m) == 1 for m in template.repo_markers()):
            fmt = ""  # the tokenizer lacks the format's tokens: path comments instead
        layout = _layout(fmt, clean_path(file_path) if file_path else None, clean_path(repo_name))
        fixed = count(layout.render(template, "", "", ""))
        if fixed > budget_tokens:
            layout = _Layout("")  # no room even for the path: no context at all
            context = ()
        else:
            frame_tokens = fixed
    available = budget_tokens - frame_tokens

    backward = _lines_backward(prefix)
    line, newline_before = next(backward)
    current = clean(line)
    current_tokens = count("\n" + current if newline_before else current)

    # Context files in order, each whole, within their share; never at the cursor line's cost.
    blocks: list[str] = []
    block_counts: list[int] = []
    context_limit = max(0, min(int(budget_tokens * context_share), available - current_tokens))
    context_used = 0
    for item in context:
        text = clean(item.text)
        if not text.strip():
            continue
        block = layout.block(clean_path(item.path), text)
        n = count(block)
        if context_used + n <= context_limit:
            blocks.append(block)
            block_counts.append(n)
            context_used += n
    available -= context_used

    current_cut = current_tokens > available
    before = _Side(backward, clean, count)
    if current_cut:  # nothing before a cut line may be kept
        current = _cut_left(current, available, count)
        current_tokens = count(current)
        before.closed = True
    # The kept suffix ends with a newline when lines follow it: one token reserved for it.
    trailing_newline = suffix.endswith("\n")
    body = suffix[:-1] if trailing_newline else suffix
    suffix_lines = _lines_forward(body) if template.uses_suffix and suffix else iter(())
    after = _Side(suffix_lines, clean, count, first_extra=1 if "\n" in suffix else 0)
    prefix_budget = int(available * prefix_share) if template.uses_suffix else available
    suffix_budget = available - prefix_budget

    before.used = current_tokens
    before.fill(max(prefix_budget, current_tokens))
    room = available - before.used
    after.fill(room if before.exhausted else min(suffix_budget, room))
    if after.exhausted:
        before.fill(available - after.used)
    if before.exhausted:
        after.fill(available - before.used)

    whole, first = counts.whole_count_needed(), True
    while True:
        kept_prefix = "\n".join([*reversed(before.kept), current])
        kept_suffix = "\n".join(after.kept)
        if after.kept and (after.truncated or trailing_newline):
            kept_suffix += "\n"
        text = layout.render(template, "".join(blocks), kept_prefix, kept_suffix)
        if not whole:
            total = frame_tokens + context_used + before.used + after.used
            break
        total = len(tokenizer.encode(text))
        if first:
            counts.record(frame_tokens + context_used + before.used + after.used, total)
            first = False
        over = total - budget_tokens
        if over <= 0:
            break
        # The estimate was low (tokens merged differently in the joined text): drop lines,
        # farthest first, from the side over its share; then context files; cut the current
        # line last.
        while over > 0:
            if after.kept and (after.used > suffix_budget or not before.kept):
                over -= after.drop()
            elif before.kept:
                over -= before.drop()
            elif blocks:
                blocks.pop()
                over -= block_counts.pop()
            else:
                current = _cut_left(current, max(0, count(current) - over), count)
                current_cut = True
                before.closed = True
                break

    return BuiltPrompt(
        text=text,
        prefix=kept_prefix,
        suffix=kept_suffix,
        prompt_tokens=total,
        truncated_prefix=current_cut or before.truncated,
        truncated_suffix=after.truncated,
        context_files=len(blocks),
        context_tokens=sum(block_counts),
        counted=whole,
    )


__all__ = ["BuiltPrompt", "ContextFile", "build_prompt", "comment_prefix"]
