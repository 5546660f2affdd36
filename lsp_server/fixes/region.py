"""The part of a document a fix rewrites: the enclosing function or class, or whole lines.

A model is shown, and may replace, only this region. Definitions are found with tree-sitter;
without a grammar (or outside any definition) the region is the lines of the range itself,
widened to the surrounding paragraph.
"""

from __future__ import annotations

import msgspec
import tree_sitter

from lsp_server.workspace.languages import ts_language

# Definition node types per language, functions before the containers they may sit in.
_DEFINITIONS: dict[str, frozenset[str]] = {
    "python": frozenset({"function_definition", "class_definition"}),
    "javascript": frozenset(
        {
            "function_declaration",
            "generator_function_declaration",
            "method_definition",
            "class_declaration",
        }
    ),
    "typescript": frozenset(
        {
            "function_declaration",
            "generator_function_declaration",
            "method_definition",
            "class_declaration",
            "interface_declaration",
        }
    ),
    "java": frozenset(
        {
            "method_declaration",
            "constructor_declaration",
            "class_declaration",
            "interface_declaration",
            "enum_declaration",
            "record_declaration",
        }
    ),
    "go": frozenset({"function_declaration", "method_declaration", "type_declaration"}),
    "rust": frozenset({"function_item", "impl_item", "struct_item", "enum_item", "trait_item"}),
    "c": frozenset({"function_definition", "struct_specifier"}),
    "cpp": frozenset({"function_definition", "class_specifier", "struct_specifier"}),
}
_DEFINITIONS["javascriptreact"] = _DEFINITIONS["javascript"]
_DEFINITIONS["typescriptreact"] = _DEFINITIONS["typescript"]

_CLASSES = frozenset(
    {
        "class_definition",
        "class_declaration",
        "interface_declaration",
        "enum_declaration",
        "record_declaration",
        "type_declaration",
        "impl_item",
        "struct_item",
        "enum_item",
        "trait_item",
        "struct_specifier",
        "class_specifier",
    }
)
# Statements that hold a function as a value: `const f = () => ...`.
_VALUE_HOLDERS = frozenset({"lexical_declaration", "variable_declaration"})
_FUNCTION_VALUES = frozenset({"arrow_function", "function_expression", "function"})
_NAMES = frozenset({"identifier", "field_identifier", "type_identifier", "property_identifier"})

CONTEXT_LINES = 20
"""Lines kept on each side of the problem when a definition is too large to send whole."""


class Region(msgspec.Struct, frozen=True):
    """Whole lines of a document: `start` is a line start, `end` a line end after its newline
    (or the end of the text). Lines are 0-based and inclusive."""

    start: int
    end: int
    first_line: int
    last_line: int
    name: str = ""
    kind: str = "lines"
    """"function", "class" or "lines"."""

    def text(self, document: str) -> str:
        return document[self.start : self.end]


def _parse(language_id: str, text: str) -> tree_sitter.Tree | None:
    language = ts_language(language_id)
    if language is None:
        return None
    return tree_sitter.Parser(language).parse(text.encode("utf-8"))


def _char_offset(text: str, data: bytes, byte: int) -> int:
    return len(data[:byte].decode("utf-8", errors="replace"))


def _byte_offset(text: str, offset: int) -> int:
    return len(text[:offset].encode("utf-8"))


def _name(node: tree_sitter.Node) -> str:
    if node.type in _FUNCTION_VALUES and node.parent is not None:
        node = node.parent  # the variable declarator
    named = node.child_by_field_name("name")
    if named is not None and named.text is not None:
        return named.text.decode("utf-8", errors="replace")
    declarator = node.child_by_field_name("declarator")  # C and C++ functions
    while declarator is not None:
        if declarator.type in _NAMES or declarator.type in (
            "qualified_identifier",
            "destructor_name",
            "operator_name",
        ):
            return (declarator.text or b"").decode("utf-8", errors="replace")
        declarator = declarator.child_by_field_name("declarator")
    return ""


def _definition(node: tree_sitter.Node, types: frozenset[str]) -> tree_sitter.Node | None:
    """`node` as a definition (its decorated or exported statement), else None."""
    if node.type in types:
        outer = node
    elif node.type in _FUNCTION_VALUES:
        holder = node.parent
        if holder is None or holder.type != "variable_declarator":
            return None
        statement = holder.parent
        if statement is None or statement.type not in _VALUE_HOLDERS:
            return None
        outer = statement
    else:
        return None
    while outer.parent is not None and outer.parent.type in (
        "decorated_definition",
        "export_statement",
    ):
        outer = outer.parent
    return outer


def definitions_around(
    text: str,
    language_id: str,
    start: int,
    end: int,
    *,
    tree: tree_sitter.Tree | None = None,
) -> list[tuple[tree_sitter.Node, tree_sitter.Node]]:
    """(outer statement, definition node) pairs containing [start, end], innermost first."""
    types = _DEFINITIONS.get(language_id)
    if types is None:
        return []
    tree = tree or _parse(language_id, text)
    if tree is None:
        return []
    lo, hi = _byte_offset(text, start), _byte_offset(text, end)
    node: tree_sitter.Node | None = tree.root_node.descendant_for_byte_range(lo, hi)
    found: list[tuple[tree_sitter.Node, tree_sitter.Node]] = []
    while node is not None:
        outer = _definition(node, types)
        if outer is not None and outer.start_byte <= lo and hi <= outer.end_byte:
            found.append((outer, node))
        node = node.parent
    return found


def _line_bounds(text: str, start: int, end: int) -> tuple[int, int]:
    """Offsets of the start of `start`'s line and past the end of `end`'s line."""
    lo = text.rfind("\n", 0, start) + 1
    if end > lo and end > 0 and text[end - 1] == "\n":
        end -= 1  # a range ending at a line start does not take that line
    nl = text.find("\n", max(end, lo))
    hi = len(text) if nl < 0 else nl + 1
    return lo, hi


def _span(text: str, lo: int, hi: int) -> Region:
    """The region of the whole lines from offset `lo` (a line start) to `hi` (a line end)."""
    first = text.count("\n", 0, lo)
    last = first + text.count("\n", lo, hi) - (1 if text[lo:hi].endswith("\n") else 0)
    return Region(lo, hi, first, max(first, last))


def lines_region(text: str, start: int, end: int) -> Region:
    """The whole lines covering [start, end]."""
    return _span(text, *_line_bounds(text, start, end))


def _paragraph(text: str, start: int, end: int, max_lines: int) -> Region:
    """The lines of [start, end] widened to blank lines, at most `max_lines`."""
    lo, hi = _line_bounds(text, start, end)
    for _ in range(max_lines):
        if lo == 0:
            break
        prev = text.rfind("\n", 0, lo - 1) + 1
        if not text[prev:lo].strip():
            break
        lo = prev
    for _ in range(max_lines):
        if hi >= len(text) or not text[hi : text.find("\n", hi) + 1 or len(text)].strip():
            break
        nl = text.find("\n", hi)
        hi = len(text) if nl < 0 else nl + 1
    return _span(text, lo, hi)


def enclosing_definition(
    text: str,
    language_id: str,
    start: int,
    end: int | None = None,
    *,
    tree: tree_sitter.Tree | None = None,
) -> Region | None:
    """The innermost function or class containing [start, end], as whole lines."""
    found = definitions_around(text, language_id, start, start if end is None else end, tree=tree)
    if not found:
        return None
    outer, node = found[0]
    data = text.encode("utf-8")
    lo = _char_offset(text, data, outer.start_byte)
    hi = _char_offset(text, data, outer.end_byte)
    region = lines_region(text, lo, max(lo, hi))
    kind = "class" if node.type in _CLASSES else "function"
    return msgspec.structs.replace(region, name=_name(node), kind=kind)


def fix_region(
    text: str,
    language_id: str,
    start: int,
    end: int,
    *,
    max_lines: int = 200,
    selection: bool = False,
    tree: tree_sitter.Tree | None = None,
) -> Region:
    """What a fix of [start, end] rewrites.

    A selection is rewritten as selected (whole lines). Otherwise the enclosing function or
    class when it has at most `max_lines` lines, else the lines around the range within it;
    without a definition, the paragraph around the range.
    """
    if selection:
        return lines_region(text, start, end)
    found = enclosing_definition(text, language_id, start, end, tree=tree)
    if found is not None and found.last_line - found.first_line < max_lines:
        return found
    around = lines_region(text, start, end)
    if found is None:
        if language_id in _DEFINITIONS:
            return _widen(text, around, CONTEXT_LINES // 4, None)
        return _paragraph(text, start, end, CONTEXT_LINES)
    return _widen(text, around, CONTEXT_LINES, found)


def _widen(text: str, region: Region, lines: int, within: Region | None) -> Region:
    lo, hi = region.start, region.end
    floor, ceiling = (within.start, within.end) if within else (0, len(text))
    for _ in range(lines):
        if lo <= floor:
            break
        lo = text.rfind("\n", 0, lo - 1) + 1
    for _ in range(lines):
        if hi >= ceiling:
            break
        nl = text.find("\n", hi)
        hi = len(text) if nl < 0 else nl + 1
    return _span(text, max(lo, floor), min(hi, ceiling))


__all__ = [
    "Region",
    "definitions_around",
    "enclosing_definition",
    "fix_region",
    "lines_region",
]
