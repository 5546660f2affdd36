"""Whether to complete at a cursor, and how much, decided before any model call.

`decide` looks only at windows of text around the cursor (never the whole document) and,
for languages with a tree-sitter grammar, at a syntax tree: the server's tree of the whole
document when it passes one, else a tree of a window parsed here. That window runs from
the nearest line above the cursor that starts like a declaration (a keyword: Python
``def`` / ``class``, Go ``func``, ...; at most 200 lines up), else from about 100 lines up,
to 30 lines below the cursor. Other languages get the text rules only.

Automatic trigger (`invoked=False`), first rule that matches:

1. NONE "empty document": the document is whitespace only (checked only for documents
   under 64 KiB; larger ones are never "empty").
2. NONE "mid-identifier": identifier characters both left and right of the cursor
   (Unicode letters, digits, `_`, combining marks, `$` in JS/TS/Java/PHP). At the end of an
   identifier completion goes on.
3. NONE "code right of cursor": right of the cursor on its line, ignoring a trailing
   comment, there is more than closing punctuation: at most 4 characters of ``)]}>"'`;:,``
   and whitespace are allowed (``print(|)`` completes, ``foo(|a, b)`` does not; ``>``
   closes generics such as ``List<|>``).
4. NONE "inside string" / "inside comment": the tree has a string or comment node strictly
   around the cursor (right after a closing quote is outside; at the end of a line comment
   is inside), docstrings included and f-string / template substitutions excluded; or the
   cursor line's text has an unterminated string or a line comment before the cursor (an
   unterminated string is an ERROR node in the tree, so the line is read as text too).
5. MULTI "after block opener": the line left of the cursor ends with a block opener and
   the right is blank (or only closing punctuation, in brace languages): ``:`` in Python
   (trailing comments ignored), ``{`` (not ``${``) elsewhere, ``case ...:`` / ``default:``
   in C-like languages.
6. MULTI when the cursor line is blank (whitespace both sides) and either the previous
   non-blank, non-comment line ends with a block opener ("after block opener"), or the
   block below is empty: the next non-blank line is less indented than the cursor
   ("end of block"), is a closing ``}`` in a brace language ("empty block"), or there is
   none ("end of file").
7. SINGLE otherwise ("after code", "blank line", "start of line").

Invoked trigger (`invoked=True`, the user asked): never NONE. Identifiers, strings and
comments do not matter. MULTI when the document is empty (the prompt still has the file's
path and repository context, and the user asked), when the cursor line is blank, or after
a block opener as in rule 5 (outside strings and comments of the cursor line); SINGLE when
code is right of the cursor or the cursor is after code on its line.

Line breaks may be ``\\n``, ``\\r\\n`` or ``\\r``. Known limits: a string left open over
several lines (a Python triple-quoted string or a JS template literal being typed, with
no closing quote anywhere below) is not seen as a string: tree-sitter makes an ERROR node
of it and the text of the cursor line alone does not show it. A window parsed here
can start inside a multi-line string or comment, which flips its reading (starting at a
declaration line makes that rare; a docstring longer than 200 lines, or a string with
declaration-like lines in it, can still do it).
"""

from __future__ import annotations

import enum
import itertools
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

import tree_sitter

from lsp_server.workspace.languages import ts_language

__all__ = ["Decision", "Mode", "decide"]


class Mode(enum.Enum):
    """How much to complete."""

    NONE = "none"
    SINGLE = "single"
    MULTI = "multi"


@dataclass(frozen=True, slots=True)
class Decision:
    """The gate's verdict and a short reason for logs."""

    mode: Mode
    reason: str


# --- limits ------------------------------------------------------------------------------

_BEFORE_LINES = 100
"""Lines before the cursor line parsed when no tree is given and no declaration is near."""
_SEARCH_LINES = 200
_SEARCH_CHARS = 8192
"""How far up to look for a declaration to start a parsed window at."""
_AFTER_LINES = 30
"""Lines after the cursor line parsed when no tree is given."""
_BEFORE_CHARS = 6000
_AFTER_CHARS = 2000
_LINE_CHARS = 4096
"""The most of the cursor line looked at on either side of the cursor."""
_SCAN_LINES = 50
"""The most lines looked at for the previous / next non-blank line."""
_EMPTY_CHECK_CHARS = 64 * 1024
"""Documents longer than this are never considered empty (no full scan)."""
_MAX_CLOSERS = 4
_CLOSERS = frozenset(")]}>\"'`;:,")
_TAB = 4


# --- per-language syntax ------------------------------------------------------------------


_NEVER = re.compile(r"(?!)")


@dataclass(frozen=True, slots=True)
class _Syntax:
    line_comments: tuple[str, ...] = ()
    block_comment: tuple[str, str] | None = None
    quotes: str = "\"'"
    triple_quotes: bool = False
    template_quote: str = ""
    """A quote whose strings hold ``${...}`` substitutions (JS/TS backticks)."""
    raw_quote: str = ""
    """A quote whose strings have no escapes (Go backticks)."""
    char_literals_only: bool = False
    """``'`` starts a string only as a closed character literal (Rust lifetimes)."""
    prose_apostrophes: bool = False
    """``'`` after a letter is an apostrophe, not a quote (text-only languages)."""
    colon_blocks: bool = False
    brace_blocks: bool = True
    case_labels: bool = False
    ident_extra: str = ""
    string_types: frozenset[str] = frozenset()
    comment_types: frozenset[str] = frozenset()
    line_comment_types: frozenset[str] = frozenset()
    """Comment node types that are always line comments (others are checked by text)."""
    code_types: frozenset[str] = frozenset()
    """Node types of code inside strings (f-string and template substitutions)."""
    special: re.Pattern[str] = field(default=_NEVER, init=False)
    """What starts a comment or a string."""

    def __post_init__(self) -> None:
        tokens: list[str] = [*self.line_comments]
        if self.block_comment:
            tokens.append(self.block_comment[0])
        if self.triple_quotes:
            tokens += ['"""', "'''"]
        tokens += list(self.quotes + self.template_quote + self.raw_quote)
        tokens.sort(key=len, reverse=True)
        if tokens:
            pattern = re.compile("|".join(re.escape(t) for t in tokens))
            object.__setattr__(self, "special", pattern)


_SLASHES = ("//",)
_C_BLOCK = ("/*", "*/")
_JS = _Syntax(
    line_comments=_SLASHES,
    block_comment=_C_BLOCK,
    template_quote="`",
    case_labels=True,
    ident_extra="$",
    string_types=frozenset({"string", "template_string", "regex", "template_literal_type"}),
    comment_types=frozenset({"comment", "html_comment"}),
    code_types=frozenset({"template_substitution", "template_type"}),
)
_C_STRINGS = frozenset({"string_literal", "char_literal", "system_lib_string"})
_C = _Syntax(
    line_comments=_SLASHES,
    block_comment=_C_BLOCK,
    case_labels=True,
    string_types=_C_STRINGS,
    comment_types=frozenset({"comment"}),
)
_CPP = _Syntax(
    line_comments=_SLASHES,
    block_comment=_C_BLOCK,
    case_labels=True,
    string_types=_C_STRINGS | {"raw_string_literal"},
    comment_types=frozenset({"comment"}),
)
_C_LIKE = _Syntax(line_comments=_SLASHES, block_comment=_C_BLOCK, case_labels=True)
_HASH = _Syntax(line_comments=("#",), brace_blocks=False)
_HASH_BRACES = _Syntax(line_comments=("#",))
_DASH = _Syntax(line_comments=("--",), brace_blocks=False)

_SYNTAX: dict[str, _Syntax] = {
    "python": _Syntax(
        line_comments=("#",),
        triple_quotes=True,
        colon_blocks=True,
        brace_blocks=False,
        string_types=frozenset({"string"}),
        comment_types=frozenset({"comment"}),
        line_comment_types=frozenset({"comment"}),
        code_types=frozenset({"interpolation"}),
    ),
    "javascript": _JS,
    "javascriptreact": _JS,
    "typescript": _JS,
    "typescriptreact": _JS,
    "java": _Syntax(
        line_comments=_SLASHES,
        block_comment=_C_BLOCK,
        case_labels=True,
        ident_extra="$",
        string_types=frozenset({"string_literal", "character_literal"}),
        comment_types=frozenset({"line_comment", "block_comment"}),
        line_comment_types=frozenset({"line_comment"}),
        code_types=frozenset({"string_interpolation"}),
    ),
    "c": _C,
    "cpp": _CPP,
    "go": _Syntax(
        line_comments=_SLASHES,
        block_comment=_C_BLOCK,
        raw_quote="`",
        case_labels=True,
        string_types=frozenset(
            {"interpreted_string_literal", "raw_string_literal", "rune_literal"}
        ),
        comment_types=frozenset({"comment"}),
    ),
    "rust": _Syntax(
        line_comments=_SLASHES,
        block_comment=_C_BLOCK,
        char_literals_only=True,
        string_types=frozenset({"string_literal", "raw_string_literal", "char_literal"}),
        comment_types=frozenset({"line_comment", "block_comment"}),
        line_comment_types=frozenset({"line_comment"}),
    ),
    # Languages without a grammar: text rules only.
    "csharp": _C_LIKE,
    "kotlin": _C_LIKE,
    "swift": _C_LIKE,
    "scala": _C_LIKE,
    "dart": _C_LIKE,
    "objective-c": _C_LIKE,
    "objective-cpp": _C_LIKE,
    "groovy": _C_LIKE,
    "scss": _C_LIKE,
    "less": _C_LIKE,
    "php": _Syntax(
        line_comments=("//", "#"), block_comment=_C_BLOCK, case_labels=True, ident_extra="$"
    ),
    "css": _Syntax(block_comment=_C_BLOCK),
    "shellscript": _HASH,
    "ruby": _HASH,
    "toml": _HASH,
    "makefile": _HASH,
    "dockerfile": _HASH,
    "elixir": _HASH,
    "julia": _HASH,
    "perl": _HASH_BRACES,
    "r": _HASH_BRACES,
    "powershell": _HASH_BRACES,
    "yaml": _Syntax(line_comments=("#",), brace_blocks=False, colon_blocks=True),
    "lua": _DASH,
    "haskell": _DASH,
    "sql": _Syntax(line_comments=("--",), block_comment=_C_BLOCK, brace_blocks=False),
}
_DEFAULT = _Syntax(prose_apostrophes=True)


# --- small text helpers ------------------------------------------------------------------

_EOL = re.compile(r"[\r\n]")
_BREAK = re.compile(r"\r\n?|\n")


def _is_ident(ch: str, extra: str) -> bool:
    return ch.isalnum() or ch == "_" or ch in extra or ("a" + ch).isidentifier()


def _indent(line: str) -> int:
    """Width of a line's leading whitespace, tabs at 4 columns."""
    ws = line[: len(line) - len(line.lstrip())]
    return len(ws.expandtabs(_TAB))


def _line_start(prefix: str) -> int:
    """String offset in `prefix` where the cursor's line starts (bounded search)."""
    lo = max(0, len(prefix) - _LINE_CHARS)
    nl = max(prefix.rfind("\n", lo), prefix.rfind("\r", lo))
    return nl + 1 if nl >= 0 else lo


def _lines_before(prefix: str, end: int) -> Iterator[str]:
    """Whole lines before `end` (the cursor line's start), nearest first, within a window."""
    if end == 0 or prefix[end - 1] not in "\r\n":
        return  # the first line, or a line too long to look past
    lo = max(0, end - _BEFORE_CHARS)
    if prefix.find("\r", lo, end) >= 0:
        parts = _BREAK.split(prefix[lo:end])
        parts.pop()  # "" after the last break
        yield from reversed(parts[1:] if lo > 0 else parts)  # the first is perhaps cut
        return
    pos = end - 1
    while True:
        i = prefix.rfind("\n", lo, pos)
        if i < 0:
            if lo == 0:
                yield prefix[:pos]
            return
        yield prefix[i + 1 : pos]
        pos = i


def _lines_after(suffix: str, start: int) -> Iterator[str | None]:
    """Whole lines from `start` (a line start) within a window; None if the text ends there."""
    hi = start + _AFTER_CHARS
    ended = hi >= len(suffix)
    if suffix.find("\r", start, hi) >= 0:
        parts = _BREAK.split(suffix[start:hi])
        if not ended:
            parts.pop()  # perhaps cut
        yield from parts
    else:
        pos = start
        while True:
            i = suffix.find("\n", pos, hi)
            if i < 0:
                if ended:
                    yield suffix[pos:]
                break
            yield suffix[pos:i]
            pos = i + 1
    if ended:
        yield None


# --- the cursor line read as text ----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Scan:
    state: str
    """"code", "string" or "comment" at the end of the scanned text."""
    at: int = -1
    """Where the open string or comment starts (the end of the code)."""


def _close_quote(text: str, j: int, quote: str, escapes: bool) -> int:
    """Offset after the quote closing a string opened at `j`, or -1."""
    k = j + len(quote)
    while True:
        e = text.find(quote, k)
        if e < 0:
            return -1
        if not escapes:
            return e + len(quote)
        # An odd run of backslashes before the quote escapes it.
        b = e
        while b > k and text[b - 1] == "\\":
            b -= 1
        if (e - b) % 2 == 0:
            return e + len(quote)
        k = e + 1


_RUST_CHAR = re.compile(r"'(?:[^\\'\r\n]|\\[^\r\n][^'\r\n]{0,8})'")


def _scan(text: str, syn: _Syntax, start: int = 0) -> _Scan:
    """Read one line (no line breaks) as code from `start`; the state at its end."""
    i = start
    while True:
        m = syn.special.search(text, i)
        if m is None:
            return _Scan("code")
        tok, j = m.group(), m.start()
        if tok in syn.line_comments:
            return _Scan("comment", j)
        if syn.block_comment is not None and tok == syn.block_comment[0]:
            k = text.find(syn.block_comment[1], j + len(tok))
            if k < 0:
                return _Scan("comment", j)
            i = k + len(syn.block_comment[1])
            continue
        if tok == "'" and j > 0 and text[j - 1].isdigit():
            i = j + 1  # a digit separator (C++ 1'000)
            continue
        if tok == "'" and syn.prose_apostrophes and j > 0 and text[j - 1].isalpha():
            i = j + 1  # an apostrophe in prose
            continue
        if tok == "'" and syn.char_literals_only:
            cm = _RUST_CHAR.match(text, j)
            i = cm.end() if cm else j + 1
            continue
        if tok == syn.template_quote:
            end = _close_template(text, j)
            if end == -2:
                return _Scan("code")  # inside an open ${...} substitution
            if end < 0:
                return _Scan("string", j)
            i = end
            continue
        end = _close_quote(text, j, tok, escapes=tok != syn.raw_quote)
        if end < 0:
            return _Scan("string", j)
        i = end


def _close_template(text: str, j: int) -> int:
    """End of a template string opened at `j`; -1 if open, -2 if open in a substitution."""
    k = j + 1
    n = len(text)
    while k < n:
        ch = text[k]
        if ch == "\\":
            k += 2
        elif ch == "`":
            return k + 1
        elif ch == "$" and text.startswith("{", k + 1):
            depth, k = 1, k + 2
            while k < n and depth:
                if text[k] == "{":
                    depth += 1
                elif text[k] == "}":
                    depth -= 1
                k += 1
            if depth:
                return -2
        else:
            k += 1
    return -1


def _code_of(line: str, syn: _Syntax) -> str | None:
    """A line's code without a trailing comment, stripped; None if it ends inside a string."""
    s = _scan(line, syn)
    if s.state == "string":
        return None
    return (line[: s.at] if s.state == "comment" else line).strip()


_CASE = re.compile(r"(?:case\b.*|default\s*):$")


def _opens_block(code: str, syn: _Syntax) -> bool:
    """Whether a line's code (comment-free, stripped) ends with a block opener."""
    if syn.colon_blocks and code.endswith(":") and not code.endswith("::"):
        return True
    if syn.brace_blocks and code.endswith("{") and not code.endswith("${"):
        return True
    return syn.case_labels and _CASE.match(code) is not None


# --- the tree ----------------------------------------------------------------------------

_local = threading.local()


def _parser(language_id: str, lang: tree_sitter.Language) -> tree_sitter.Parser:
    """A parser for the calling thread (a parser must not be shared between threads)."""
    parsers: dict[str, tree_sitter.Parser] | None = getattr(_local, "parsers", None)
    if parsers is None:
        parsers = _local.parsers = {}
    parser = parsers.get(language_id)
    if parser is None:
        parser = parsers[language_id] = tree_sitter.Parser(lang)
    return parser


def _enclosing(root: tree_sitter.Node, b: int, syn: _Syntax) -> tuple[str, tree_sitter.Node | None]:
    """The innermost string, comment or in-string code node strictly around byte offset `b`."""
    if b <= root.start_byte or b >= root.end_byte:
        return "code", None
    node: tree_sitter.Node | None = root.descendant_for_byte_range(b - 1, b + 1)
    while node is not None:
        if node.start_byte < b < node.end_byte:
            kind = node.type
            if kind in syn.code_types:
                return "code", node
            if kind in syn.string_types:
                return "string", node
            if kind in syn.comment_types:
                return "comment", node
        node = node.parent
    return "code", None


def _ends_in_line_comment(
    root: tree_sitter.Node, left: str, left_b: bytes, line_b: int, syn: _Syntax
) -> bool:
    """Whether a line comment that started on the cursor line runs up to the cursor."""
    code = left.rstrip()
    if not code:
        return False
    q = line_b + len(code.encode("utf-8", "surrogatepass")) - 1  # last non-blank byte
    if q < root.start_byte or q >= root.end_byte:
        return False
    node: tree_sitter.Node | None = root.descendant_for_byte_range(q, q + 1)
    while node is not None and node.start_byte <= q < node.end_byte:
        if node.type in syn.comment_types:
            if node.type in syn.line_comment_types:
                return True
            i = node.start_byte - line_b
            return i >= 0 and any(left_b.startswith(c.encode(), i) for c in syn.line_comments)
        if node.type in syn.string_types:
            return False
        node = node.parent
    return False


def _string_closed_before(root: tree_sitter.Node, q: int, b: int, syn: _Syntax) -> bool:
    """Whether the tree has a string node around byte `q` that closes by byte `b`."""
    if q < root.start_byte or q >= root.end_byte:
        return False
    node: tree_sitter.Node | None = root.descendant_for_byte_range(q, q + 1)
    while node is not None:
        if node.type in syn.string_types and node.start_byte <= q < node.end_byte:
            return node.end_byte <= b and not node.has_error
        node = node.parent
    return False


_JS_DECLARATION = re.compile(
    r"(?:export|import|function|class|const|let|var|async|interface|type|enum|declare"
    r"|abstract|namespace)\b|[ \t]+(?:public|private|protected|static|async|function)\b"
)
_DECLARATION: dict[str, re.Pattern[str]] = {
    "python": re.compile(r"[ \t]*(?:async[ \t]+def|def|class)[ \t]|@"),
    "javascript": _JS_DECLARATION,
    "javascriptreact": _JS_DECLARATION,
    "typescript": _JS_DECLARATION,
    "typescriptreact": _JS_DECLARATION,
    "java": re.compile(
        r"(?:package|import|public|private|protected|class|interface|enum|record|abstract"
        r"|final)\b|@|[ \t]+(?:public|private|protected|static)\b"
    ),
    "go": re.compile(r"(?:package|import|func|type|var|const)\b"),
    "rust": re.compile(
        r"(?:fn|pub|impl|struct|enum|trait|mod|use|const|static|type|extern|unsafe|async"
        r"|macro_rules!)\b|#\[|[ \t]+(?:pub|fn|async|unsafe)\b"
    ),
}
_DECLARATION_DEFAULT = re.compile(  # C and C++
    r"#|(?:static|extern|int|void|char|unsigned|signed|struct|class|namespace|template"
    r"|typedef|enum|union|const|inline|bool|double|float|long|short|using|auto)\b"
)
"""Lines that start like a declaration, so most likely not inside a string or comment."""


def _window_start(prefix: str, line_start: int, language_id: str) -> int:
    """Where a parsed window starts: the nearest line above the cursor that starts like a
    declaration (within `_SEARCH_LINES`), else a line start `_BEFORE_LINES` up."""
    safe = _DECLARATION.get(language_id, _DECLARATION_DEFAULT)
    lo = max(0, line_start - _SEARCH_CHARS)
    pos = line_start
    fallback = -1
    for n in range(_SEARCH_LINES):
        if n and safe.match(prefix, pos):  # not the cursor line: it may be a string's text
            return pos
        if n == _BEFORE_LINES:
            fallback = pos
        if pos == 0:
            return 0 if fallback < 0 else fallback
        i = prefix.rfind("\n", lo, pos - 1) if pos - 1 > lo else -1
        if i < 0:
            if lo == 0:
                pos = 0
                continue
            break
        pos = i + 1
    if fallback >= 0:
        return fallback
    # Fewer lines than that within the search: start _BEFORE_CHARS up, at a line start.
    lo = max(0, line_start - _BEFORE_CHARS)
    nl = prefix.find("\n", lo, line_start) if lo > 0 else -1
    return nl + 1 if nl >= 0 else lo


def _window_end(suffix: str) -> int:
    """Where a parsed window ends: after about `_AFTER_LINES` lines of `suffix`."""
    hi = min(len(suffix), _AFTER_CHARS)
    pos = 0
    for _ in range(_AFTER_LINES + 1):
        nl = suffix.find("\n", pos, hi)
        if nl < 0:
            return hi
        pos = nl + 1
    return pos


def _chars(data: bytes) -> int:
    """How many characters UTF-8 `data` holds (a tree out of step may cut one: ignored)."""
    try:
        return len(data.decode("utf-8", "surrogatepass"))
    except UnicodeDecodeError:
        return len(data.decode("utf-8", "ignore"))


def _text_state(
    prefix: str,
    suffix: str,
    language_id: str,
    syn: _Syntax,
    line_start: int,
    right: str,
    tree: tree_sitter.Tree | None,
    offset_bytes: int | None,
) -> str:
    """What the cursor is in: "string", "comment" or "code"."""
    left = prefix[line_start:]
    lang = ts_language(language_id) if syn.string_types else None
    root: tree_sitter.Node | None = None
    b = 0
    if lang is not None:
        if tree is not None:
            if offset_bytes is None:
                offset_bytes = len(prefix.encode("utf-8", "surrogatepass"))
            if offset_bytes >= 0:
                root, b = tree.root_node, offset_bytes
        if root is None:
            start = _window_start(prefix, line_start, language_id)
            before = prefix[start:].encode("utf-8", "surrogatepass")
            after = suffix[: _window_end(suffix)].encode("utf-8", "surrogatepass")
            root = _parser(language_id, lang).parse(before + after).root_node
            b = len(before)
    left_b = left.encode("utf-8", "surrogatepass")
    scan_from = 0
    if root is not None:
        kind, _ = _enclosing(root, b, syn)
        if kind != "code":
            return kind
        if _ends_in_line_comment(root, left, left_b, b - len(left_b), syn):
            return "comment"
        # A multi-line string or comment that ends on this line: read the line after it.
        line_b = b - len(left_b)
        kind, node = _enclosing(root, line_b, syn)
        if kind != "code" and node is not None and line_b < node.end_byte <= b:
            scan_from = _chars(left_b[: node.end_byte - line_b])
    s = _scan(left, syn, scan_from)
    if root is None:
        return s.state
    # With a tree, the text decides only for a string left open on the line, which the
    # tree cannot show (it makes an ERROR node of it).
    if s.state != "string" or _scan(left + right, syn, scan_from) != s:
        return "code"
    q = b - len(left_b) + len(left[: s.at].encode("utf-8", "surrogatepass"))
    return "code" if _string_closed_before(root, q, b, syn) else "string"


# --- the gate ----------------------------------------------------------------------------


def _blank(text: str) -> bool:
    return not text or text.isspace()


def decide(
    prefix: str,
    suffix: str,
    language_id: str,
    *,
    invoked: bool,
    tree: tree_sitter.Tree | None = None,
    offset_bytes: int | None = None,
) -> Decision:
    """Whether and how much to complete at the cursor between `prefix` and `suffix`.

    `tree` is an optional tree-sitter tree of the whole document (prefix + suffix), with
    `offset_bytes` the cursor's UTF-8 byte offset in it (computed from `prefix` if omitted).
    Without one, a window around the cursor is parsed. See the module docstring for rules.
    """
    syn = _SYNTAX.get(language_id, _DEFAULT)

    if len(prefix) + len(suffix) <= _EMPTY_CHECK_CHARS and _blank(prefix) and _blank(suffix):
        if invoked:
            return Decision(Mode.MULTI, "empty document")
        return Decision(Mode.NONE, "empty document")

    line_start = _line_start(prefix)
    left = prefix[line_start:]
    m = _EOL.search(suffix, 0, _LINE_CHARS)
    right_end = m.start() if m else min(len(suffix), _LINE_CHARS)
    right = suffix[:right_end]

    # Right of the cursor without a trailing comment.
    line_scan = _scan(left + right, syn)
    right_code = right
    if line_scan.state == "comment" and line_scan.at >= len(left):
        right_code = right[: line_scan.at - len(left)]
    right_chars = [c for c in right_code if not c.isspace()]
    only_closers = len(right_chars) <= _MAX_CLOSERS and all(c in _CLOSERS for c in right_chars)
    left_blank = _blank(left)
    line_blank = left_blank and _blank(right)

    if not invoked:
        if (
            prefix
            and suffix
            and _is_ident(prefix[-1], syn.ident_extra)
            and _is_ident(suffix[0], syn.ident_extra)
        ):
            return Decision(Mode.NONE, "mid-identifier")
        if not only_closers:
            return Decision(Mode.NONE, "code right of cursor")
        state = _text_state(prefix, suffix, language_id, syn, line_start, right, tree, offset_bytes)
        if state != "code":
            return Decision(Mode.NONE, f"inside {state}")

    # A block opener right before the cursor, on its line.
    if not left_blank and (only_closers if syn.brace_blocks else _blank(right_code)):
        s = _scan(left, syn)
        code = left.rstrip() if s.state == "code" else None
        if code and _opens_block(code, syn):
            return Decision(Mode.MULTI, "after block opener")

    if not line_blank:
        if invoked and right_chars:
            return Decision(Mode.SINGLE, "code right of cursor")
        return Decision(Mode.SINGLE, "after code" if not left_blank else "start of line")

    blank = Decision(Mode.SINGLE, "blank line")
    # A blank cursor line: after an opener, or at an empty block or the end of a block?
    for line in itertools.islice(_lines_before(prefix, line_start), _SCAN_LINES):
        code = _code_of(line, syn)
        if code is None:
            break
        if code:
            if _opens_block(code, syn):
                return Decision(Mode.MULTI, "after block opener")
            break
    if invoked:
        return Decision(Mode.MULTI, "blank line")
    if m is None:  # the last line, or one too long to see its end
        return Decision(Mode.MULTI, "end of file") if right_end == len(suffix) else blank
    below = m.end() + (1 if m.group() == "\r" and suffix.startswith("\n", m.end()) else 0)
    cursor_indent = len(left.expandtabs(_TAB))
    for after in itertools.islice(_lines_after(suffix, below), _SCAN_LINES + 1):
        if after is None:
            return Decision(Mode.MULTI, "end of file")
        if _blank(after):
            continue
        if _indent(after) < cursor_indent:
            return Decision(Mode.MULTI, "end of block")
        if syn.brace_blocks and after.lstrip().startswith("}"):
            return Decision(Mode.MULTI, "empty block")
        break
    return blank
