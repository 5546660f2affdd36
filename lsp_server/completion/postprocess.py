"""Post-processing of a raw model completion: a pure function, usable without a server.

:func:`finalize` applies small named rules in order; each takes the completion and the
:class:`Context` and returns the trimmed completion (``""`` means "show nothing"). Rules only
ever cut the completion's end (or, for an echo of the text right of the cursor, its last
characters); none adds text.

The order (:data:`RULES`) goes from cheap and certain to costly and heuristic:

1. :func:`cut_at_stop`: stop sequences are hard boundaries (what follows is never wanted).
2. :func:`keep_first_line`: in single-line mode nothing after the first line is shown, so
   the later rules look only at what may be shown.
3. :func:`cut_repeated_lines`: a model that loops repeats a line; cut the loop before the
   other rules try to make sense of it.
4. :func:`cut_at_dedent`: code after the completion left its block is not an answer for
   this hole; cutting it first leaves a completion that ends where the suffix goes on, so
5. :func:`cut_suffix_overlap` can require an echo of the suffix to be the completion's end
   (a line of the completion's own code that happens to equal the suffix's next line is
   followed by more code), and echoed closers are gone before
6. :func:`balance_brackets` counts brackets against what the suffix closes.
7. :func:`check_syntax`: last, and the only rule that parses: it sees an already short
   completion, so it parses few candidates, and only catches what the rules above could not.
8. :func:`drop_blank` before 9. :func:`strip_trailing_whitespace`: a completion reduced to
   whitespace is dropped whole; one with content loses its trailing whitespace.

All rules work on windows of the document around the cursor (:data:`WINDOW_LINES` lines each
way), so a huge file costs no more than a small one.
"""

from __future__ import annotations

import bisect
import functools
import itertools
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from lsp_server.completion.syntax import error_count

__all__ = [
    "DEFAULT_STOPS",
    "LANGUAGE_STOPS",
    "RULES",
    "WINDOW_LINES",
    "Context",
    "Rule",
    "finalize",
    "language_stops",
]

DEFAULT_STOPS: tuple[str, ...] = ("\n\n\n",)
"""Stop sequences safe in every language: two blank lines end any sensible completion."""

_JS_STOPS = ("\nfunction ", "\nasync function ", "\nexport ", "\nclass ", "\nimport ")
_JAVA_STOPS = ("\npublic ", "\nprotected ", "\nprivate ", "\nclass ", "\ninterface ")
_C_STOPS = ("\n#include ", "\nint main(")
_CPP_STOPS = (*_C_STOPS, "\nclass ", "\nnamespace ", "\ntemplate")
LANGUAGE_STOPS: dict[str, tuple[str, ...]] = {
    "python": ("\ndef ", "\nasync def ", "\nclass ", "\nif __name__", "\n@"),
    "javascript": _JS_STOPS,
    "javascriptreact": _JS_STOPS,
    "typescript": (*_JS_STOPS, "\ninterface "),
    "typescriptreact": (*_JS_STOPS, "\ninterface "),
    "java": (*_JAVA_STOPS, "\nimport ", "\npackage ", "\nabstract class ", "\nfinal class "),
    "c": _C_STOPS,
    "cpp": _CPP_STOPS,
    "go": ("\nfunc ", "\ntype ", "\nimport ", "\npackage "),
    "rust": ("\nfn ", "\npub fn ", "\nimpl ", "\nstruct ", "\nenum ", "\nmod ", "\nuse ", "\n#["),
}
"""Starts of a new top-level definition, per language id. Unlike :data:`DEFAULT_STOPS` they
only cut after the completion's first non-blank line: a completion that *is* a new
definition keeps it, and only a second one is cut."""

WINDOW_LINES = 200
"""Lines of the document before and after the cursor that the rules look at."""

_WINDOW_CHARS = 20_000
"""...and at most this many characters each way (minified code has few, huge lines)."""

SYNTAX_AFTER_LINES = 40
"""Lines after the cursor that the syntax check parses at least, up to the next top-level
statement: what a completion breaks shows near it, and a parse recovering from an error costs
as much as the text that follows."""

_FAMILIES: dict[str, str] = {
    "python": "python",
    "javascript": "js",
    "javascriptreact": "js",
    "typescript": "js",
    "typescriptreact": "js",
    "java": "c",
    "c": "c",
    "cpp": "c",
    "rust": "rust",
    "go": "go",
}
"""Lexical family of a language id: how strings and comments look. Absent: unknown."""


@dataclass(frozen=True, slots=True)
class Context:
    """What the rules may look at besides the completion itself.

    ``before``, ``after`` and ``cursor_line`` are derived: the last :data:`WINDOW_LINES` lines
    of the prefix, the first ones of the suffix, and the cursor line's text left of the cursor.
    """

    prefix: str
    suffix: str
    language_id: str
    stop: tuple[str, ...]
    single_line: bool
    before: str = field(init=False)
    after: str = field(init=False)
    cursor_line: str = field(init=False)

    def __post_init__(self) -> None:
        before = _tail_lines(self.prefix, WINDOW_LINES, _WINDOW_CHARS)
        object.__setattr__(self, "before", before)
        object.__setattr__(self, "after", _head_lines(self.suffix, WINDOW_LINES, _WINDOW_CHARS))
        object.__setattr__(self, "cursor_line", before[before.rfind("\n") + 1 :])

    @property
    def family(self) -> str | None:
        """How the language's strings and comments look, or None for an unknown language."""
        return _FAMILIES.get(self.language_id)


Rule = Callable[[str, Context], str]


def finalize(
    prefix: str,
    completion: str,
    suffix: str,
    language_id: str,
    *,
    stop: Sequence[str] = (),
    single_line: bool | None = None,
    syntax: bool = True,
) -> str:
    """The text to insert at the cursor for a raw ``completion``, or ``""`` to show nothing.

    ``stop`` adds to :data:`DEFAULT_STOPS` (and the language's :data:`LANGUAGE_STOPS`).
    ``single_line=None`` decides from the cursor: with code to its right on the same line,
    only one line is kept. ``syntax=False`` skips :func:`check_syntax`, the one rule that
    parses (for a cheap check on a completion still being generated).
    """
    if single_line is None:
        single_line = _code_right_of_cursor(suffix)
    context = Context(
        prefix=prefix,
        suffix=suffix,
        language_id=language_id,
        stop=(*stop, *DEFAULT_STOPS),
        single_line=single_line,
    )
    for rule in RULES:
        if rule is check_syntax and not syntax:
            continue
        completion = rule(completion, context)
        if not completion:
            return ""
    return completion


def language_stops(language_id: str) -> tuple[str, ...]:
    """The language's definition stops (:data:`LANGUAGE_STOPS`), ``()`` for other languages."""
    return LANGUAGE_STOPS.get(language_id, ())


# --- stop sequences ---------------------------------------------------------------------------


def cut_at_stop(completion: str, context: Context) -> str:
    """Cut at the earliest stop sequence: the caller's and the defaults anywhere (empty ones
    are ignored), the language's only after the first non-blank line."""
    cut = _earliest(completion, context.stop, 0)
    stops = language_stops(context.language_id)
    first_line_end = _first_nonblank_line_end(completion)
    if stops and first_line_end is not None:
        cut = min(cut, _earliest(completion, stops, first_line_end))
    return completion[:cut]


# --- single line ------------------------------------------------------------------------------


def keep_first_line(completion: str, context: Context) -> str:
    """In single-line mode keep only the completion's first line."""
    if not context.single_line:
        return completion
    return completion.split("\n", 1)[0]


# --- repeated lines ---------------------------------------------------------------------------


def cut_repeated_lines(completion: str, context: Context) -> str:
    """Cut at a line that repeats the previous non-blank line (a model looping).

    Lines compare without trailing whitespace but with indentation, and only lines with a
    letter or digit count: ``}`` or ``)`` may follow each other. A completion that starts a
    line compares its first line with the prefix's last non-blank line.
    """
    previous = None if context.cursor_line.strip() else _last_nonblank_line(context.before)
    for start, line in _lines(completion):
        text = (context.cursor_line + line if start == 0 else line).rstrip()
        if not text.strip():
            continue
        if text == previous and _has_alnum(text):
            return completion[:start]
        previous = text
    return completion


# --- suffix overlap ---------------------------------------------------------------------------


def cut_suffix_overlap(completion: str, context: Context) -> str:
    """Remove what repeats the suffix: whole lines, then characters right of the cursor.

    Lines: cut at the first completion line that repeats the suffix's next non-blank line
    (see :func:`_repeats_suffix` for when two lines are the same). Characters: when the
    completion ends with the suffix's first characters (``x)`` before ``)`` right of the
    cursor, or a last line that starts the suffix's next line again), those go, unless they
    are punctuation the completion itself needs (the ``)`` of ``foo()`` before ``)``).
    """
    completion = _cut_suffix_lines(completion, context)
    head = _suffix_head(context.after)
    for size in range(min(len(completion), len(head)), 0, -1):
        overlap = head[:size]
        if completion.endswith(overlap) and _removable(overlap, completion):
            return completion[:-size]
    return completion


def _suffix_head(after: str) -> str:
    """The suffix up to the end of its next line with code: the cursor line's rest if it has
    code, else through the next non-blank line (a completion may end half-way into it)."""
    end = after.find("\n")
    while end != -1:
        if after[:end].strip():
            break
        end = after.find("\n", end + 1)
    return (after if end == -1 else after[:end]).replace("\r", "")


def _cut_suffix_lines(completion: str, context: Context) -> str:
    after_lines = context.after.split("\n")
    if after_lines[0].strip():
        return completion  # code right of the cursor: the next line is that, not a full line
    ahead = [line.rstrip() for line in after_lines[1:] if line.strip()]
    ahead = ahead[: _ECHO_LINES + _SKIPPED_LINES]
    if not ahead:
        return completion
    lines = [
        (start, (context.cursor_line + line if start == 0 else line).rstrip())
        for start, line in _lines(completion)
    ]
    if context.cursor_line.strip():
        lines = lines[1:]  # the first line continues the cursor's line: not a whole line
    written = [(start, text) for start, text in lines if text.strip()]
    for index, (start, _) in enumerate(written):
        rest = [text for _, text in written[index:]]
        if _repeats_suffix(rest, ahead[:_ECHO_LINES]) or any(
            _rejoins_suffix(rest, ahead[skip:]) for skip in range(1, len(ahead))
        ):
            return completion[:start]
    return completion


def _rejoins_suffix(written: list[str], wanted: list[str]) -> bool:
    """Whether the completion's last lines repeat the suffix from a later line on: a model
    that cannot see the suffix writes the hole, misses a line or two the suffix has, then
    goes on with the suffix's code. Weaker evidence than an echo of the next line, so it
    takes :data:`_ECHO_LINES` agreeing lines (one line alone is often the completion's own,
    symmetric code: the ``append(c)`` of both branches)."""
    return len(written) >= _ECHO_LINES and _repeats_suffix(written, wanted[:_ECHO_LINES])


def _repeats_suffix(written: list[str], wanted: list[str]) -> bool:
    """Whether the completion's last lines ``written`` repeat the suffix's next ``wanted``.

    The first line must be the suffix's next non-blank line, and so on for the next one
    (:data:`_ECHO_LINES` lines are enough evidence). With fewer, the echo must be the
    completion's end: one matching line of code followed by others the suffix doesn't have is
    the completion's own code (a ``return False`` of another branch). Lines compare stripped
    *and* at the same indentation: the same text at another depth is another statement (a
    ``}`` closing an inner block), and a model that echoes the suffix copies its indentation.
    """
    pairs = list(zip(written, wanted, strict=False))
    if len(pairs) < min(len(written), _ECHO_LINES):
        return False  # the suffix ends, the completion goes on
    return all(
        mine.strip() == theirs.strip() and _indent(mine) == _indent(theirs)
        for mine, theirs in pairs
    )


def _removable(overlap: str, completion: str) -> bool:
    """Whether ``overlap``, at the end of ``completion``, re-types the suffix.

    Anything with a letter or digit is an echo. Punctuation alone is an echo only if the
    completion doesn't need it: closers it has more of than openers (it closes a bracket the
    prefix opened, and the suffix already does), openers it doesn't close, quotes it has an
    odd number of. Whitespace alone is never removed.
    """
    if not overlap.strip():
        return False
    if _has_alnum(overlap):
        return True
    for char in set(overlap):
        if char in _CLOSE_OF:  # an opener
            spare = completion.count(char) - completion.count(_CLOSE_OF[char])
        elif char in _OPEN_OF:  # a closer
            spare = completion.count(char) - completion.count(_OPEN_OF[char])
        elif char in "\"'`":
            spare = completion.count(char) % 2
        else:
            continue
        if overlap.count(char) > spare:
            return False
    return True


# --- brackets ---------------------------------------------------------------------------------


def balance_brackets(completion: str, context: Context) -> str:
    """Stop where the completion closes more brackets than the suffix leaves open.

    Brackets are counted outside strings and comments (roughly, per language; unknown
    languages are left alone). The prefix leaves some brackets open; the suffix closes some
    of them; the completion may close the rest, the *deficit*. A closer beyond the deficit
    duplicates one the suffix has: cut before it, unless the completion reopens one later
    (``} else {``, or a list closed and the next one opened, its closer in the suffix).
    Outside Python, a line that closes the whole deficit with the ``}`` of a definition (a
    function, a class, a literal) finishes what was being completed: keep it, cut after it,
    since what follows would be new code outside it. The ``}`` of a control statement
    (``if``, ``for``...) doesn't: the function goes on (the indentation rule watches it).
    Closing ``)`` or ``]``, or any bracket in Python, only ends an expression: the code may
    go on too.
    """
    family = context.family
    if family is None:
        return completion
    deficit = _bracket_deficit(context.before, context.after, family)
    scan = _scan(context.before, completion, family)
    depth = 0  # relative to the cursor: negative once prefix brackets are closed
    overshoot: int | None = None  # a closer past the deficit, not reopened since
    events = iter(scan.events)
    event = next(events, None)
    for start, line in _lines(completion):
        end = start + len(line)
        closes_block = False  # a definition's block: a function, a class, a literal
        while event is not None and event[0] < end:
            offset, char = event
            if char in _CLOSE_OF:
                depth += 1
                if depth >= -deficit:
                    overshoot = None
            else:
                if depth <= 0 and len(scan.open) + depth > 0:
                    opener, position = scan.open[len(scan.open) - 1 + depth]
                    closes_block |= opener == "{" and not _is_control(context.before, position)
                depth -= 1
                if depth < -deficit and overshoot is None:
                    overshoot = offset
            event = next(events, None)
        finished = closes_block and deficit > 0 and depth == -deficit
        if finished and family != "python" and completion[end:].strip():
            return completion[:end]
    return completion if overshoot is None else completion[:overshoot]


def _is_control(text: str, position: int) -> bool:
    """Whether the ``{`` at ``position`` opens a control statement's block (``if``, ``for``,
    ``else``...), judged by its line's first word."""
    line = text[text.rfind("\n", 0, position) + 1 : position]
    return _CONTROL.match(line) is not None


def _bracket_deficit(before: str, after: str, family: str) -> int:
    """Brackets open at the cursor that the suffix does not close.

    A word typed at the cursor opens or closes no bracket, string or comment: the prefix is
    taken without it, so the deficit computed at a word's first letter serves its next ones
    (the suffix is lexed again otherwise)."""
    return _count_deficit(before[: _word_start(before)], after, family)


@functools.lru_cache(maxsize=64)
def _count_deficit(before: str, after: str, family: str) -> int:
    scan = _scan(before, after, family)
    depth = 0
    closed = 0
    for _, char in scan.events:
        if char in _CLOSE_OF:
            depth += 1
        elif depth > 0:
            depth -= 1
        else:
            closed += 1
    return max(0, len(scan.open) - closed)


# --- indentation ------------------------------------------------------------------------------


def cut_at_dedent(completion: str, context: Context) -> str:
    """Cut where the completion leaves the block being completed by indentation.

    The block is the innermost one holding both the cursor and the suffix's next non-blank
    line, so its floor is the shallower of the two indentations (the end of the file counts
    as column 0; a suffix line like ``}`` or ``else:`` belongs to the block it ends, one
    level deeper). A line below the floor may be a sibling branch (``elif x:`` between two
    parts of an ``if``): it is kept if the completion comes back, ending at the floor or on
    a block header (``:``, ``{``) that the suffix's line continues; in Python every step
    deeper after such a dip must follow a header. Otherwise cut at the dip. In Python,
    leaving the body of the enclosing ``def``/``class`` is a hard floor: always cut there (a
    function nested in a function is part of it, see :func:`_python_body_floor`).

    Blank lines, lines inside strings, and lines inside brackets (left open by the prefix or
    opened by the completion) don't count, but a line inside brackets, code in a dict
    literal, still may not leave the function. A completion that starts mid-line starts at
    its line's indentation (its statement's, inside brackets the prefix opened).
    """
    first_break = completion.find("\n")
    if first_break == -1 or completion[first_break:].isspace():
        return completion  # one line of code: nothing to leave a block with
    cursor = _cursor_indent(completion, context)
    if cursor is None:
        return completion
    python = context.language_id == "python"
    hard = _python_body_floor(context.before, cursor) if python else 0
    in_string = _inside_spans(context.before, completion, context.family, brackets=False)
    for start, line in _lines(completion)[1:]:
        if line.strip() and not in_string(start) and _indent(line) < hard:
            completion = completion[:start]
            break
    inside = _inside_spans(context.before, completion, context.family)
    checked = [
        (start, line)
        for start, line in _lines(completion)
        if start > 0 and line.strip() and not inside(start)
    ]
    if all(_indent(line) >= max(cursor, hard) for _, line in checked):
        return completion  # never below the cursor: no floor to find (the suffix's costs)
    floor = max(min(cursor, _suffix_indent(context)), hard)
    dips = [index for index, (_, line) in enumerate(checked) if _indent(line) < floor]
    if not dips:
        return completion
    lines = [line for _, line in checked]
    for cut in (len(checked), *reversed(dips[1:])):
        if _comes_back(lines[dips[0] : cut], floor, context.language_id):
            return completion if cut == len(checked) else completion[: checked[cut][0]]
    return completion[: checked[dips[0]][0]]


def _comes_back(lines: list[str], floor: int, language_id: str) -> bool:
    """Whether ``lines``, starting below the floor, end where the suffix can follow."""
    if language_id == "python":
        for previous, line in itertools.pairwise(lines):
            if _indent(line) > _indent(previous) and not _is_header(previous, language_id):
                return False
    last = lines[-1]
    return _indent(last) >= floor or _is_header(last, language_id)


def _is_header(line: str, language_id: str) -> bool:
    """A line that opens an indented block: ends with ``:`` (and outside Python ``{``)."""
    code = _strip_comment(line, language_id).rstrip()
    return code.endswith(":") or (language_id != "python" and code.endswith("{"))


def _cursor_indent(completion: str, context: Context) -> int | None:
    """The indentation of the cursor's block: its line's, or the completion's first line's
    (its statement's if the prefix left brackets open).

    After a block header (a line ending in ``:``, or ``{`` outside Python) the cursor is in
    a new block, one level deeper.
    """
    statement = _statement_indent(context.before, context.family)
    if statement is not None:
        return statement
    cursor_line = context.cursor_line
    if cursor_line.strip():
        deeper = _is_header(cursor_line, context.language_id)
        return _indent(cursor_line) + (1 if deeper else 0)
    for start, line in _lines(completion):
        if line.strip():
            return _indent(cursor_line + line if start == 0 else line)
    return None


def _suffix_indent(context: Context) -> int:
    """The indentation a completion line may have to stay in the suffix's next line's block."""
    return _next_line_indent(context.before, context.after, context.family)


@functools.lru_cache(maxsize=64)
def _next_line_indent(before: str, after: str, family: str | None) -> int:
    # The first lines of `after` are lexed, more only when none of them counts: whether a
    # line starts inside a string, comment or brackets depends on the text before it only.
    size = _FIRST_LOOK
    while True:
        seen = after[:size]
        inside = _inside_spans(before, seen, family)
        whole = len(seen) == len(after)
        lines = _lines(seen)[1:]
        for start, line in lines if whole else lines[:-1]:  # the last may go on past `seen`
            if line.strip() and not inside(start):
                return _indent(line) + (1 if _continues_block(line) else 0)
        if whole:
            return 0
        size = len(after)  # lexed again whole: growing by steps lexes the start again each time


_FIRST_LOOK = 2048
"""Characters of the suffix lexed first when looking for its next line of code."""


def _continues_block(line: str) -> bool:
    """A closer or an ``else``-like line: it belongs to the block it ends, one level deeper."""
    return _CONTINUES.match(line) is not None


def _python_body_floor(before: str, cursor: int) -> int:
    """The lowest indentation inside the Python function or class enclosing the cursor.

    Walk up the prefix's outline to the first ``def``/``class`` line. A function nested in
    another function is part of it (a closure's helper), so the walk goes on through ``def``
    parents, and returns the outermost one's body; a method's class is not its function.
    0 at module level.
    """
    cut = before.rfind("\n") + 1
    lines = _outline(before[:cut])
    *body, (_, _, cursor_inside) = lines  # the cursor line starts where the body ends
    limit = cursor
    floor = 0
    for _, line, inside in reversed([*body, (cut, before[cut:], cursor_inside)]):
        if not line.strip() or inside or line.lstrip().startswith("#"):
            continue
        indent = _indent(line)
        if indent >= limit:
            continue
        definition = _PY_DEFINITION.match(line)
        if floor and (definition is None or definition.group(1) == "class"):
            break  # the parent of the function found is not a function
        if definition is not None:
            floor = indent + 1
            if definition.group(1) == "class":
                break
        limit = indent
        if limit == 0:
            break
    return floor


@functools.lru_cache(maxsize=16)
def _outline(body: str) -> tuple[tuple[int, str, bool], ...]:
    """(start, line, starts inside a string, comment or brackets) for each line of the
    Python text `body`, and last for where the line after it starts. Kept while a line is
    typed: only the cursor's line changes then."""
    inside = _inside_spans("", body, "python")
    return tuple((start, line, inside(start)) for start, line in _lines(body))


# --- syntax -----------------------------------------------------------------------------------


def check_syntax(completion: str, context: Context) -> str:
    """Keep the longest part of the completion that adds no syntax error.

    The window around the cursor is parsed without the completion and with each candidate:
    the whole completion first, then ever shorter whole-line prefixes of it. The first whose
    count of ERROR and MISSING nodes is no higher than without the completion wins (the
    document without it may have errors: it has a hole). If none does, only the first
    non-blank line is kept: it is where the cursor is, often rightly half-finished
    (``foo(a,`` with more to type), and cutting never reaches into a line. No grammar: left
    alone.
    """
    before, after = _syntax_window(context)
    baseline = error_count(context.language_id, before + after)
    if baseline is None:
        return completion
    ends = [start + len(line) for start, line in _lines(completion)]
    tried: set[str] = set()
    for end in reversed(ends):
        candidate = completion[:end].rstrip()
        if not candidate or candidate in tried:
            continue
        tried.add(candidate)
        count = error_count(context.language_id, before + candidate + after)
        if count is not None and count <= baseline:
            return completion[:end]
    first = _first_nonblank_line_end(completion)
    return completion if first is None else completion[:first]


def _syntax_window(context: Context) -> tuple[str, str]:
    """The prefix window started at a line in column 0 (a parse starting mid-block begins
    with an error that could swallow the rest), and the suffix window."""
    before = context.before
    top_level = _TOP_LEVEL_LINE.search(before)
    after = context.after
    # Cut before a top-level statement at least SYNTAX_AFTER_LINES down (not inside a string
    # or brackets, as a rule: a cut inside one makes every reparse relex up to the cut).
    nearest = len(_head_lines(after, SYNTAX_AFTER_LINES, _WINDOW_CHARS))
    statement = _STATEMENT_START.search(after, nearest)
    if statement is not None:
        after = after[: statement.start() + 1]
    return (before[top_level.start() :] if top_level else before), after


# --- blank and trailing whitespace ------------------------------------------------------------


def drop_blank(completion: str, context: Context) -> str:
    """A completion that is empty or only whitespace becomes ``""``."""
    return completion if completion.strip() else ""


def strip_trailing_whitespace(completion: str, context: Context) -> str:
    """Drop whitespace (newlines included) at the very end; inner lines are left alone."""
    return completion.rstrip()


RULES: tuple[Rule, ...] = (
    cut_at_stop,
    keep_first_line,
    cut_repeated_lines,
    cut_at_dedent,
    cut_suffix_overlap,
    balance_brackets,
    check_syntax,
    drop_blank,
    strip_trailing_whitespace,
)
"""The rules :func:`finalize` applies, in order (the module docstring says why this one)."""


# --- helpers ----------------------------------------------------------------------------------

_SKIPPED_LINES = 2
"""Suffix lines a completion may skip before it rejoins the suffix (see _rejoins_suffix)."""
_ECHO_LINES = 2
"""Suffix lines a completion must repeat to be an echo (fewer if it ends, or the suffix does)."""
_OPEN_OF = {")": "(", "]": "[", "}": "{"}
_CLOSE_OF = {"(": ")", "[": "]", "{": "}"}
_ALNUM = re.compile(r"[^\W_]")
_TOP_LEVEL_LINE = re.compile(r"^\S", re.MULTILINE)
_STATEMENT_START = re.compile(r"\n[^\s)\]}]")
_BLANK_REST = re.compile(r"[^\S\n]*(?:\n|\Z)")
_PY_DEFINITION = re.compile(r"\s*(?:async\s+)?(def|class)\b")
_CONTROL = re.compile(
    r"\s*(?:}\s*)?(?:if|else|for|foreach|while|do|switch|select|try|catch|finally|case|default)\b"
)
_CONTINUES = re.compile(r"\s*(?:[)\]}]|(?:else|elif|except|finally)\b)")

_BRACKET = r"[()\[\]{}]"
_DOUBLE = r'"(?:\\.|[^"\\\n])*"?'
_SINGLE = r"'(?:\\.|[^'\\\n])*'?"
_CHAR = r"'(?:\\.[^'\n]{0,8}|[^'\\\n])'"  # a char literal; a lone ' (Rust lifetime) is code
_C_COMMENTS = r"//[^\n]*|/\*.*?(?:\*/|\Z)"
_TOKENS: dict[str, re.Pattern[str]] = {
    "python": re.compile(
        "|".join(
            (
                r"\#[^\n]*",
                r'"""(?:\\.|[^\\])*?(?:"""|\Z)',
                r"'''(?:\\.|[^\\])*?(?:'''|\Z)",
                _DOUBLE,
                _SINGLE,
                _BRACKET,
            )
        ),
        re.DOTALL,
    ),
    "js": re.compile(
        "|".join((_C_COMMENTS, r"`(?:\\.|[^`\\])*`?", _DOUBLE, _SINGLE, _BRACKET)), re.DOTALL
    ),
    "c": re.compile(
        "|".join((_C_COMMENTS, r'""".*?(?:"""|\Z)', _DOUBLE, _CHAR, _BRACKET)), re.DOTALL
    ),
    "go": re.compile("|".join((_C_COMMENTS, r"`[^`]*`?", _DOUBLE, _CHAR, _BRACKET)), re.DOTALL),
    "rust": re.compile("|".join((_C_COMMENTS, r'"(?:\\.|[^"\\])*"?', _CHAR, _BRACKET)), re.DOTALL),
}
"""Per family: comments, strings and brackets; brackets inside the first two don't count."""


@dataclass(frozen=True, slots=True)
class _Scan:
    """Brackets of ``text`` after ``head``, lexed as a continuation of ``head``."""

    open: list[tuple[str, int]]
    """(opener, offset in ``head``) for the brackets ``head`` leaves open, innermost last."""
    events: list[tuple[int, str]]
    """(offset in ``text``, bracket) outside strings and comments, in order."""
    spans: list[tuple[int, int]]
    """(start, end) offsets in ``text`` of strings and comments, clipped to ``text``."""


def _scan(head: str, text: str, family: str) -> _Scan:
    """Lex ``head + text`` and report the state at their junction and what ``text`` holds.

    Only ``head``'s last line (or the string or comment open there) is lexed again with
    ``text``; the rest of ``head`` is lexed once per ``head`` (:func:`_head_state`).
    """
    # The word at the end of `head` (identifier characters) opens nor closes anything: the
    # state is that of the head without it, cached over a word's keystrokes.
    resume, head_stack = _head_state(head[: _word_start(head)], family)
    stack = list(head_stack)
    split = len(head) - resume
    events: list[tuple[int, str]] = []
    spans: list[tuple[int, int]] = []
    for match in _TOKENS[family].finditer(head[resume:] + text):
        start, end = match.span()
        token = match.group()
        if len(token) == 1 and token in "()[]{}":
            if start >= split:
                events.append((start - split, token))
            elif token in _CLOSE_OF:
                stack.append((token, resume + start))
            elif stack and stack[-1][0] == _OPEN_OF[token]:
                stack.pop()
        elif end > split:
            spans.append((max(start, split) - split, end - split))
    return _Scan(stack, events, spans)


_AROUND_WORDS = frozenset(" \t()[]{},.;:=+-<>!&|^%~?@")
"""Characters next to which a word may come and go without changing any token."""


def _word_start(text: str) -> int:
    """Where the identifier characters at the end of `text` begin, when they follow a
    character that pairs with nothing (a space, an operator, a bracket) on a line with no
    quote, comment or escape before them; else the end itself (taking them away could then
    join what is left into another string or comment, or end one elsewhere)."""
    start = len(text)
    while start > 0 and (text[start - 1].isalnum() or text[start - 1] in "_$"):
        start -= 1
    if start == 0 or text[start - 1] not in _AROUND_WORDS:
        return len(text)
    line = text[text.rfind("\n", 0, start) + 1 : start]
    return len(text) if any(c in line for c in "'\"`/#*\\") else start


@functools.lru_cache(maxsize=64)
def _head_state(head: str, family: str) -> tuple[int, tuple[tuple[str, int], ...]]:
    """Where to resume lexing ``head`` followed by more text, and the brackets open there.

    That is the start of ``head``'s last line (a token may join it and the text, like ``/``
    and ``/``), or earlier, the start of a string or comment still open on that line.
    """
    resume = head.rfind("\n") + 1
    stack: list[tuple[str, int]] = []
    for match in _TOKENS[family].finditer(head):
        start, end = match.span()
        if end > resume:
            resume = min(start, resume)
            break
        token = match.group()
        if len(token) == 1 and token in "()[]{}":
            if token in _CLOSE_OF:
                stack.append((token, start))
            elif stack and stack[-1][0] == _OPEN_OF[token]:
                stack.pop()
    return resume, tuple(stack)


def _expression_brackets(family: str) -> str:
    """Openers of brackets that hold (parts of) one statement: not ``{`` blocks, in Python all."""
    return "([{" if family == "python" else "(["


@functools.lru_cache(maxsize=64)
def _statement_indent(before: str, family: str | None) -> int | None:
    """With the cursor inside brackets the prefix opened (the arguments of a call spread over
    lines), the indentation of the line where the outermost of them opened; else None."""
    if family is None:
        return None
    stack = _scan(before, "", family).open
    blocks = [index for index, (char, _) in enumerate(stack) if char == "{"]
    if family != "python" and blocks:
        stack = stack[blocks[-1] + 1 :]
    if not stack:
        return None
    line_start = before.rfind("\n", 0, stack[0][1]) + 1
    return _indent(before[line_start:])


def _inside_spans(
    head: str, text: str, family: str | None, *, brackets: bool = True
) -> Callable[[int], bool]:
    """A test: is this offset of ``text`` (continuing ``head``) inside a string or comment,
    or (with ``brackets``) inside expression brackets (:func:`_expression_brackets`), the
    prefix's included?"""
    if family is None:
        return lambda _: False
    scan = _scan(head, text, family)
    expression = _expression_brackets(family) if brackets else ""
    stack = [char for char, _ in scan.open]
    depth = sum(char in expression for char in stack)
    ranges = list(scan.spans)
    opened_at = -1  # the outermost open expression bracket; -1: the prefix's
    for offset, char in scan.events:
        if char in _CLOSE_OF:
            stack.append(char)
            if char in expression:
                depth += 1
                if depth == 1:
                    opened_at = offset
        elif stack and stack.pop() in expression:
            depth -= 1
            if depth == 0:
                ranges.append((opened_at, offset))
    if depth > 0:
        ranges.append((opened_at, len(text)))
    ranges.sort()
    starts = [start for start, _ in ranges]
    reach = list(itertools.accumulate((end for _, end in ranges), max))  # farthest end so far

    def inside(offset: int) -> bool:
        index = bisect.bisect_left(starts, offset)  # ranges starting strictly before offset
        return index > 0 and reach[index - 1] >= offset

    return inside


def _lines(text: str) -> list[tuple[int, str]]:
    """(start offset, line without its newline) for every line of ``text``."""
    result: list[tuple[int, str]] = []
    start = 0
    for line in text.split("\n"):
        result.append((start, line))
        start += len(line) + 1
    return result


def _indent(line: str) -> int:
    """Width of a line's leading whitespace (a tab counts 4)."""
    expanded = line.expandtabs(4)
    return len(expanded) - len(expanded.lstrip())


def _has_alnum(text: str) -> bool:
    return _ALNUM.search(text) is not None


def _strip_comment(line: str, language_id: str) -> str:
    """The line without a trailing comment (a ``#`` or ``//`` in a string is not one)."""
    family = _FAMILIES.get(language_id)
    if family is None:
        return line
    for match in _TOKENS[family].finditer(line):
        if match.group().startswith(("#", "//", "/*")):
            return line[: match.start()]
    return line


def _earliest(text: str, stops: Sequence[str], start: int) -> int:
    """Offset of the earliest non-empty stop in ``text[start:]``, or ``len(text)``."""
    found = (text.find(stop, start) for stop in stops if stop)
    return min((i for i in found if i != -1), default=len(text))


def _first_nonblank_line_end(text: str) -> int | None:
    """Offset of the newline that ends the first non-blank line, None if there is none."""
    for start, line in _lines(text):
        if line.strip():
            end = start + len(line)
            return end if end < len(text) else None
    return None


def _last_nonblank_line(before: str) -> str | None:
    """The last non-blank line above the cursor's line, without trailing whitespace."""
    end = before.rfind("\n")
    while end > 0:
        start = before.rfind("\n", 0, end) + 1
        if before[start:end].strip():
            return before[start:end].rstrip()
        end = start - 1
    return None


def _tail_lines(text: str, lines: int, chars: int) -> str:
    """The last ``lines`` lines of ``text`` (the last, partial one counts), within ``chars``."""
    start = len(text)
    for _ in range(lines):
        start = text.rfind("\n", 0, start)
        if start == -1:
            break
    window_start = start + 1
    if len(text) - window_start > chars:
        cut = text.find("\n", len(text) - chars)
        window_start = cut + 1 if cut != -1 else len(text) - chars
    return text[window_start:]


def _head_lines(text: str, lines: int, chars: int) -> str:
    """The first ``lines`` lines of ``text`` (the cursor's line's rest counts), within ``chars``."""
    end = -1
    for _ in range(lines):
        end = text.find("\n", end + 1)
        if end == -1:
            end = len(text)
            break
    if end > chars:
        cut = text.rfind("\n", 0, chars)
        end = cut if cut > 0 else chars
    return text[:end]


def _code_right_of_cursor(suffix: str) -> bool:
    """Whether the rest of the cursor's line holds anything but whitespace."""
    return _BLANK_REST.match(suffix) is None
