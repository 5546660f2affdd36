"""From the code of a fix to a minimal edit of the document.

:func:`replace_region` fits the code into the region it replaces (:func:`fit_region`: line
endings, base indentation, tabs, echoed surroundings, edge blank lines), refuses a fix that
changes nothing or breaks the syntax of a file that parsed, and returns the smallest
replacements (:func:`minimal_replacements`) that :func:`to_text_edits` turns into LSP edits.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence

import msgspec
import tree_sitter
from lsprotocol import types

from lsp_server.completion.syntax import error_count
from lsp_server.positions import position_at
from lsp_server.workspace.languages import ts_language

__all__ = [
    "EditError",
    "Replacement",
    "fit_region",
    "minimal_replacements",
    "replace_region",
    "to_text_edits",
]


class EditError(ValueError):
    """Why no edit is proposed; str() is shown to the user."""


class Replacement(msgspec.Struct, frozen=True):
    """Replace ``original[start:end]`` by ``text``."""

    start: int
    """Offset into the original document text (a Python str index)."""
    end: int
    text: str


_LINE_BREAK = re.compile(r"\r\n|\r|\n")
_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)")
_ATTACHMENT = ("@", "//", "/*", "*", "#")
_CLOSERS = ")]}"


def _lines(text: str) -> list[str]:
    """``text`` split after each LSP line break (``\\n``, ``\\r\\n``, ``\\r``), endings kept."""
    lines = _LINE.findall(text)
    rest = len(text) - sum(map(len, lines))
    if rest:
        lines.append(text[-rest:])
    return lines


def _newline(text: str, default: str = "\n") -> str:
    match = _LINE_BREAK.search(text)
    return match.group() if match else default


def _indent(line: str) -> str:
    return line[: len(line) - len(line.lstrip(" \t"))]


def _width(line: str) -> int:
    return len(_indent(line).expandtabs(4))


def _is_attachment(line: str) -> bool:
    return line.strip().startswith(_ATTACHMENT)


def _header(lines: list[str], head: int) -> int:
    """The index of the line after the decorators, annotations and comments that start at
    ``lines[head]`` (at its indentation, or a ``/* ... */`` block): the definition's line."""
    width = _width(lines[head])
    index = head
    if lines[index].strip().startswith("/*"):
        while index < len(lines) - 1 and "*/" not in lines[index]:
            index += 1
        index += 1
    while index < len(lines) - 1 and _width(lines[index]) == width and _is_attachment(lines[index]):
        index += 1
    return min(index, len(lines) - 1)


def _block_end(lines: list[str], head: int) -> int:
    """The index after the indentation block that starts at ``lines[head]``.

    Decorators, annotations and comments at the head's indentation come first; then the
    header line; then every line indented deeper, and lines at the head's indentation that
    start with a closing bracket (``}`` of a Java method, ``):`` of a long Python ``def``).
    """
    return _body_end(lines, _header(lines, head), _width(lines[head]))


def _body_end(lines: list[str], header: int, width: int) -> int:
    """The index after the lines that follow ``lines[header]`` deeper than ``width`` (or at
    it, starting with a closing bracket)."""
    end = header + 1
    for after, line in enumerate(lines[header + 1 :], start=header + 2):
        if not line.strip():
            continue
        if _width(line) > width or (_width(line) == width and line.strip()[0] in _CLOSERS):
            end = after
        else:
            break
    return end


def _find(line: str, code_lines: list[str]) -> int | None:
    """Where the code repeats ``line`` (stripped, exactly once), or None.

    When the model changed that line (a fixed signature), its start up to the first ``(``
    (``def total(``) is looked for instead.
    """
    wanted = line.strip()
    found = [i for i, code in enumerate(code_lines) if code.strip() == wanted]
    if not found and "(" in wanted:
        key = wanted[: wanted.index("(") + 1]
        found = [i for i, code in enumerate(code_lines) if code.strip().startswith(key)]
    return found[0] if len(found) == 1 else None


def _cut_echo(region_lines: list[str], code_lines: list[str]) -> list[str]:
    """The code without echoed surroundings: when the region is one indentation block of
    several lines (a function, a method, a class), the block of the code that starts with the
    same definition line. A region of one line (a statement) may well be fixed by adding lines.

    The definition line is looked for, not the decorators or comments above it (``@Override``
    repeats); the code's own ones are kept when the region starts with some.
    """
    if len(region_lines) < 2 or _block_end(region_lines, 0) != len(region_lines):
        return code_lines
    anchor = _header(region_lines, 0)
    found = _find(region_lines[anchor], code_lines)
    if found is None:
        return code_lines
    head, width = found, _width(code_lines[found])
    while anchor and head > 0 and _is_attachment(code_lines[head - 1]):
        if _width(code_lines[head - 1]) < width:
            break
        head -= 1  # the code's decorators and comments, when the region has some
    return trim_blank(code_lines[head : _body_end(code_lines, found, _width(code_lines[found]))])


def _step(lines: list[str], base: str, default: int) -> int:
    """The smallest indentation step (in columns) of ``lines`` beyond ``base``."""
    steps = [
        _width(line) - len(base.expandtabs(4))
        for line in lines
        if line.strip() and _width(line) > len(base.expandtabs(4))
    ]
    return min(steps, default=default)


def _reindent(region_lines: list[str], code_lines: list[str]) -> list[str]:
    """The code at the region's base indentation, in the region's tabs-or-spaces style."""
    target = _indent(region_lines[0])
    base = _indent(code_lines[0])
    region_tabs = any(line.startswith("\t") for line in region_lines)
    region_spaces = any(line.startswith(" ") for line in region_lines)
    code_tabs = any(line.startswith("\t") for line in code_lines)
    code_spaces = any(line.startswith(" ") for line in code_lines)
    convert = (region_tabs and code_spaces and not code_tabs) or (
        region_spaces and not region_tabs and code_tabs and not code_spaces
    )
    if not convert and base == target:
        return code_lines
    code_step = _step(code_lines, base, 4)
    region_step = _step(region_lines, target, 4)
    base_width = len(base.expandtabs(4))
    result: list[str] = []
    for line in code_lines:
        if not line.strip():
            shifted = not convert and line.startswith(base) and line
            result.append(target + line[len(base) :] if shifted else "")
        elif not convert:
            rest = line[len(base) :] if line.startswith(base) else line.lstrip(" \t")
            result.append(target + rest)
        elif code_tabs:  # tabs to spaces: a tab is one of the region's indentation steps
            rel = _indent(line)[len(base) :] if line.startswith(base) else ""
            tabs = len(rel) - len(rel.lstrip("\t"))
            indent = " " * (tabs * region_step + len(rel) - tabs)
            result.append(target + indent + line.lstrip(" \t"))
        else:  # spaces to tabs: one indentation step of the code is a tab
            extra = max(_width(line) - base_width, 0)
            indent = "\t" * (extra // code_step) + " " * (extra % code_step)
            result.append(target + indent + line.lstrip(" \t"))
    return result


def trim_blank(lines: list[str]) -> list[str]:
    """`lines` without the blank lines at either end."""
    start, end = 0, len(lines)
    while start < end and not lines[start].strip():
        start += 1
    while end > start and not lines[end - 1].strip():
        end -= 1
    return lines[start:end]


def fit_region(region: str, code: str, *, newline: str = "\n") -> str:
    """``code`` made to replace ``region`` (whole lines of a document) in place.

    The code gets the region's line endings (``newline`` when the region has none), the
    region's base indentation and tabs-or-spaces style, loses surroundings it echoes (the
    whole class or file around the method asked for) and its edge blank lines; the region's
    leading and trailing blank lines (and so whether it ends with a line break) are kept.
    """
    newline = _newline(region, newline)
    region_lines = [line.rstrip("\r\n") for line in _lines(region)]
    code_lines = trim_blank(_LINE_BREAK.split(code))
    first = next((i for i, line in enumerate(region_lines) if line.strip()), None)
    if first is None:  # a blank region: nothing to fit to
        ends = bool(region) and region[-1] in "\r\n"
        return newline.join(code_lines) + (newline if ends else "")
    last = max(i for i, line in enumerate(region_lines) if line.strip())
    kept = _lines(region)
    lead = "".join(kept[:first])
    trail = kept[last][len(region_lines[last]) :] + "".join(kept[last + 1 :])
    body = region_lines[first : last + 1]
    if code_lines:
        code_lines = _reindent(body, _cut_echo(body, code_lines))
    return lead + newline.join(code_lines) + trail


def _splits_crlf(text: str, offset: int) -> bool:
    return 0 < offset < len(text) and text[offset - 1] == "\r" and text[offset] == "\n"


def minimal_replacements(old: str, new: str) -> list[Replacement]:
    """The replacements (sorted, disjoint, offsets into ``old``) that turn ``old`` into ``new``.

    A line diff (:class:`difflib.SequenceMatcher`, no autojunk), each changed run of lines
    trimmed of the characters it shares at both ends, so a one-character fix is a
    one-character replacement; a pure insertion or deletion then moves to where it reads
    best (word boundaries). A ``\\r\\n`` is never split: LSP has no position inside it.
    """
    old_lines, new_lines = _lines(old), _lines(new)
    old_starts = [0]
    for line in old_lines:
        old_starts.append(old_starts[-1] + len(line))
    new_starts = [0]
    for line in new_lines:
        new_starts.append(new_starts[-1] + len(line))
    matcher = difflib.SequenceMatcher(None, old_lines, new_lines, autojunk=False)
    result: list[Replacement] = []
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        if op == "equal":
            continue
        start, end = old_starts[i1], old_starts[i2]
        text = new[new_starts[j1] : new_starts[j2]]
        segment = old[start:end]
        prefix = 0
        limit = min(len(segment), len(text))
        while prefix < limit and segment[prefix] == text[prefix]:
            prefix += 1
        suffix = 0
        limit -= prefix
        while suffix < limit and segment[-1 - suffix] == text[-1 - suffix]:
            suffix += 1
        if prefix and _splits_crlf(old, start + prefix):
            prefix -= 1
        if suffix and _splits_crlf(old, end - suffix):
            suffix -= 1
        result.append(
            _slide(old, start, start + prefix, end - suffix, text[prefix : len(text) - suffix])
        )
    return result


def _boundary(before: str, after: str) -> int:
    """How good a place between two characters is for an edit to start or end."""
    if not before or not after:
        return 6
    if before in "\r\n" or after in "\r\n":
        return 5
    if before.isspace() or after.isspace():
        return 3
    if not (before.isalnum() or before == "_") or not (after.isalnum() or after == "_"):
        return 2
    return 0


def _slide(old: str, floor: int, start: int, end: int, text: str) -> Replacement:
    """A pure insertion or deletion moved left (not before ``floor``) to where its ends are
    the best boundaries, the rightmost on ties: ``items[start:s|tart + s|ize]`` becomes
    ``items[start:|start + |size]`` but ``a[i:]| + b[j:]|`` stays as it is."""
    if (start == end) == (not text):
        return Replacement(start, end, text)
    edit = text or old[start:end]
    best, best_score = (start, edit), -1
    while True:
        score = _boundary(old[start - 1 : start], edit[0]) + _boundary(edit[-1], old[end : end + 1])
        if score > best_score:
            best, best_score = (start, edit), score
        if start <= floor or old[start - 1] != edit[-1] or _splits_crlf(old, start - 1):
            break
        if not text and _splits_crlf(old, end - 1):
            break
        start, end, edit = start - 1, end - 1, edit[-1] + edit[:-1]
    start, edit = best
    return Replacement(start, start + (0 if text else len(edit)), text and edit)


def _first_error_line(language_id: str, text: str, near: int) -> int:
    """The 1-based line of the first syntax error of ``text`` at or after offset ``near``
    (where the fix starts).

    Tree-sitter's ERROR nodes can be coarse: one that starts before ``near`` (a class whose
    method broke) is placed where it ends, which for the innermost one is where the parser
    gave up. MISSING nodes are placed where they are. Without any error after ``near``, the
    first error of the file.
    """
    language = ts_language(language_id)
    if language is None:
        return position_at(text, near)[0] + 1
    data = text.encode("utf-8", "surrogatepass")
    root = tree_sitter.Parser(language).parse(data).root_node
    near_byte = len(text[:near].encode("utf-8", "surrogatepass"))
    points: list[int] = []
    first: int | None = None
    pending = [root]
    while pending:
        node = pending.pop()
        if not node.has_error and not node.is_missing:
            continue
        if node.is_error or node.is_missing:
            first = node.start_byte if first is None else min(first, node.start_byte)
            if node.start_byte >= near_byte:
                points.append(node.start_byte)
            elif node.end_byte > near_byte:
                points.append(node.end_byte)
        pending.extend(node.children)
    point = min(points, default=near_byte if first is None else first)
    offset = len(data[:point].decode("utf-8", "surrogatepass"))
    return position_at(text, offset)[0] + 1


def replace_region(
    text: str, start: int, end: int, code: str, language_id: str
) -> tuple[str, list[Replacement]]:
    """The document with ``text[start:end]`` replaced by ``code`` fitted to it, and the
    minimal replacements (inside ``[start, end]``, offsets into ``text``) that make it.

    Raises :class:`EditError` when the fix changes nothing, or when the language has a
    grammar and the fix adds syntax errors (any, to a file that parsed; more, to one that
    did not), naming the line of the first error.
    """
    if not 0 <= start <= end <= len(text):
        raise EditError(f"the region {start}-{end} is outside the document")
    region = text[start:end]
    fitted = fit_region(region, code, newline=_newline(text))
    new_text = text[:start] + fitted + text[end:]
    if new_text == text:
        raise EditError("the model proposed no change")
    before = error_count(language_id, text)
    if before is not None:
        after = error_count(language_id, new_text) or 0
        if (before == 0 and after > 0) or after > before:
            line = _first_error_line(language_id, new_text, start)
            raise EditError(f"the proposed fix does not parse (line {line})")
    replacements = [
        Replacement(r.start + start, r.end + start, r.text)
        for r in minimal_replacements(region, fitted)
    ]
    return new_text, replacements


def to_text_edits(text: str, replacements: Sequence[Replacement]) -> list[types.TextEdit]:
    """LSP edits (UTF-16 positions in ``text``) for replacements of ``text``."""
    edits: list[types.TextEdit] = []
    for replacement in replacements:
        start = types.Position(*position_at(text, replacement.start))
        end = types.Position(*position_at(text, replacement.end))
        edits.append(types.TextEdit(range=types.Range(start, end), new_text=replacement.text))
    return edits
