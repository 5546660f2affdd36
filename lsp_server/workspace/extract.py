"""Definitions (functions, classes, methods, top-level constants) from tree-sitter trees.

One query per language finds the definition nodes; a little Python per definition then works
out what a query cannot say simply: the enclosing class (by walking up the tree), whether a
function is a method, the header without its body, and the doc comment. Definitions local to a
function body are skipped: the index is about what other code can refer to.
"""

from __future__ import annotations

import bisect
import functools
import logging
import re
import threading
from dataclasses import dataclass, field

import tree_sitter
from lsprotocol.types import SymbolKind

from lsp_server.workspace.languages import ts_language
from lsp_server.workspace.symbols import Symbol

log = logging.getLogger(__name__)

Node = tree_sitter.Node

MAX_DOC_CHARS = 8000
"""Longer docs are cut at a line boundary (generated files can carry huge comments)."""
MAX_CONSTANT_SIGNATURE = 200
"""A constant's signature is its declaration's first line, cut to this many characters."""

_KINDS: dict[str, SymbolKind] = {
    "function": SymbolKind.Function,
    "prototype": SymbolKind.Function,
    "method": SymbolKind.Method,
    "constructor": SymbolKind.Constructor,
    "class": SymbolKind.Class,
    "struct": SymbolKind.Struct,
    "interface": SymbolKind.Interface,
    "enum": SymbolKind.Enum,
    "type": SymbolKind.Class,
    "constant": SymbolKind.Constant,
    "variable": SymbolKind.Variable,
    "namespace": SymbolKind.Namespace,
    "module": SymbolKind.Module,
}
_FUNCTION_VALUES = frozenset(
    {"arrow_function", "function_expression", "function", "generator_function"}
)

_PY_CONSTANT = re.compile(r"_*[A-Z][A-Z0-9_]*[A-Z0-9]\Z")
_PY_STRING = re.compile(r"[rRuUbBfF]{0,2}('''|\"\"\"|'|\")(.*)\1\Z", re.DOTALL)
_IDENT = re.compile(r"[^\W\d]\w*")
_LONE_CR = re.compile(rb"\r(?!\n)")
_LINE_START = re.compile(rb"\r\n?|\n")


@dataclass(frozen=True)
class _Spec:
    """How to find and describe definitions in one language."""

    query: str
    containers: dict[str, bool]
    """Node types whose definitions nest inside them; True for class-like (methods)."""
    locals: frozenset[str]
    """Node types (function bodies) whose nested definitions are skipped."""
    wrappers: frozenset[str] = frozenset()
    """Parents that belong to a definition (decorators, `export`, `template <...>`)."""
    comments: frozenset[str] = frozenset({"comment"})
    skip_above: frozenset[str] = frozenset()
    """Siblings between a doc comment and its definition (Rust attributes)."""
    docstrings: bool = False
    """Python: the doc is the body's first string statement."""
    container_field: dict[str, str] = field(default_factory=dict)
    """The field holding a container's name when it is not `name`."""


_PYTHON = _Spec(
    query="""
(function_definition name: (identifier) @name) @function
(class_definition name: (identifier) @name) @class
(module (expression_statement
  (assignment left: (identifier) @name right: (_)) @constant))
""",
    containers={"class_definition": True},
    locals=frozenset({"function_definition", "lambda"}),
    wrappers=frozenset({"decorated_definition"}),
    docstrings=True,
)

_JS_QUERY = """
(function_declaration name: (identifier) @name) @function
(generator_function_declaration name: (identifier) @name) @function
(class_declaration name: (_) @name) @class
(class_body (method_definition name: (_) @name) @method)
(program (lexical_declaration kind: "const"
  (variable_declarator name: (identifier) @name) @constant))
(program (export_statement (lexical_declaration kind: "const"
  (variable_declarator name: (identifier) @name) @constant)))
(program (variable_declaration
  (variable_declarator name: (identifier) @name
    value: [(arrow_function) (function_expression)]) @function))
"""
_JS_LOCALS = frozenset(
    {
        "function_declaration",
        "generator_function_declaration",
        "function_expression",
        "generator_function",
        "arrow_function",
        "method_definition",
        "class_static_block",
    }
)
_JAVASCRIPT = _Spec(
    query=_JS_QUERY,
    containers={"class_declaration": True, "class": True},
    locals=_JS_LOCALS,
    wrappers=frozenset({"export_statement"}),
)
_TYPESCRIPT = _Spec(
    query=_JS_QUERY
    + """
(function_signature name: (identifier) @name) @prototype
(abstract_class_declaration name: (_) @name) @class
(interface_declaration name: (_) @name) @interface
(enum_declaration name: (_) @name) @enum
(type_alias_declaration name: (_) @name) @type
(interface_body (method_signature name: (_) @name) @method)
(class_body (abstract_method_signature name: (_) @name) @method)
(class_body (method_signature name: (_) @name) @method)
(internal_module name: (_) @name) @namespace
(module name: (_) @name) @namespace
""",
    containers={
        "class_declaration": True,
        "class": True,
        "abstract_class_declaration": True,
        "interface_declaration": True,
        "internal_module": False,
        "module": False,
    },
    locals=_JS_LOCALS,
    wrappers=frozenset({"export_statement", "ambient_declaration"}),
)
_JAVA = _Spec(
    query="""
(class_declaration name: (identifier) @name) @class
(record_declaration name: (identifier) @name) @class
(interface_declaration name: (identifier) @name) @interface
(annotation_type_declaration name: (identifier) @name) @interface
(enum_declaration name: (identifier) @name) @enum
(method_declaration name: (identifier) @name) @method
(constructor_declaration name: (identifier) @name) @constructor
(field_declaration (modifiers) @modifiers
  declarator: (variable_declarator name: (identifier) @name) @declarator) @constant
(constant_declaration
  declarator: (variable_declarator name: (identifier) @name) @declarator) @constant
""",
    containers={
        "class_declaration": True,
        "record_declaration": True,
        "interface_declaration": True,
        "annotation_type_declaration": True,
        "enum_declaration": True,
    },
    locals=frozenset(
        {
            "method_declaration",
            "constructor_declaration",
            "compact_constructor_declaration",
            "lambda_expression",
            "object_creation_expression",
            "static_initializer",
        }
    ),
    comments=frozenset({"line_comment", "block_comment"}),
)
_C_QUERY = """
(function_definition declarator: (_) @declarator) @function
(declaration declarator: [(function_declarator) (pointer_declarator)] @declarator) @prototype
(struct_specifier name: (_) @name body: (_)) @struct
(union_specifier name: (_) @name body: (_)) @struct
(enum_specifier name: (_) @name body: (_)) @enum
(type_definition type: [(struct_specifier body: (_)) (union_specifier body: (_))]
  declarator: (type_identifier) @name) @struct
(type_definition type: (enum_specifier body: (_)) declarator: (type_identifier) @name) @enum
(declaration (type_qualifier) @qualifier
  declarator: (init_declarator declarator: (identifier) @name)) @constant
"""
_C = _Spec(
    query=_C_QUERY,
    containers={"struct_specifier": True, "union_specifier": True},
    locals=frozenset({"function_definition"}),
)
_CPP = _Spec(
    query=_C_QUERY.replace(
        "[(function_declarator) (pointer_declarator)]",
        "[(function_declarator) (pointer_declarator) (reference_declarator)]",
    )
    + """
(field_declaration
  declarator: [(function_declarator) (pointer_declarator) (reference_declarator)] @declarator)
  @prototype
(class_specifier name: (_) @name body: (_)) @class
(namespace_definition name: (_) @name) @namespace
""",
    containers={
        "class_specifier": True,
        "struct_specifier": True,
        "union_specifier": True,
        "namespace_definition": False,
    },
    locals=frozenset({"function_definition", "lambda_expression"}),
    wrappers=frozenset({"template_declaration"}),
)
_GO = _Spec(
    query="""
(function_declaration name: (identifier) @name) @function
(method_declaration name: (field_identifier) @name) @method
(type_spec name: (type_identifier) @name type: (_) @type_value) @type
(type_alias name: (type_identifier) @name) @type
(method_elem name: (field_identifier) @name) @method
(const_spec) @constant
(var_spec) @variable
""",
    containers={"type_spec": True},
    locals=frozenset({"function_declaration", "method_declaration", "func_literal"}),
)
_RUST = _Spec(
    query="""
(function_item name: (identifier) @name) @function
(function_signature_item name: (identifier) @name) @function
(struct_item name: (type_identifier) @name) @struct
(union_item name: (type_identifier) @name) @struct
(enum_item name: (type_identifier) @name) @enum
(trait_item name: (type_identifier) @name) @interface
(type_item name: (type_identifier) @name) @type
(mod_item name: (identifier) @name) @module
(const_item name: (identifier) @name) @constant
(static_item name: (identifier) @name) @constant
""",
    containers={"impl_item": True, "trait_item": True, "mod_item": False},
    locals=frozenset({"function_item", "closure_expression"}),
    comments=frozenset({"line_comment", "block_comment"}),
    skip_above=frozenset({"attribute_item"}),
    container_field={"impl_item": "type"},
)

_SPECS: dict[str, _Spec] = {
    "python": _PYTHON,
    "javascript": _JAVASCRIPT,
    "javascriptreact": _JAVASCRIPT,
    "typescript": _TYPESCRIPT,
    "typescriptreact": _TYPESCRIPT,
    "java": _JAVA,
    "c": _C,
    "cpp": _CPP,
    "go": _GO,
    "rust": _RUST,
}


@functools.cache
def _query(language_id: str) -> tree_sitter.Query | None:
    """The compiled query of a language (once per process; queries are immutable)."""
    spec = _SPECS.get(language_id)
    lang = ts_language(language_id)
    if spec is None or lang is None:
        return None
    return tree_sitter.Query(lang, spec.query)


_local = threading.local()


def _parser(language_id: str) -> tree_sitter.Parser:
    """A parser for the calling thread (a parser must not be shared between threads)."""
    parsers: dict[str, tree_sitter.Parser] | None = getattr(_local, "parsers", None)
    if parsers is None:
        parsers = _local.parsers = {}
    parser = parsers.get(language_id)
    if parser is None:
        parser = parsers[language_id] = tree_sitter.Parser(ts_language(language_id))
    return parser


# --- small helpers over nodes and bytes ---------------------------------------------------


def _text(source: bytes, node: Node) -> str:
    return source[node.start_byte : node.end_byte].decode("utf-8", "replace")


def _type_name(source: bytes, node: Node) -> str:
    """The bare name of a type expression: `*List[T]`, `&'a Foo<T>`, `a::B` -> List, Foo, B."""
    text = _text(source, node)
    for stop in "<[(":
        text = text.split(stop, 1)[0]
    names = _IDENT.findall(text)
    return names[-1] if names else text.strip()


def _container_name(source: bytes, spec: _Spec, node: Node) -> str:
    name = node.child_by_field_name(spec.container_field.get(node.type, "name"))
    if name is None:
        return ""
    if node.type in ("namespace_definition", "internal_module", "module", "mod_item"):
        return _text(source, name).strip("'\"").replace("::", ".")
    return _type_name(source, name)


def _collapse(text: str) -> str:
    """A multi-line header on one line: `f(\\n    a,\\n)` -> `f(a)`."""
    out = ""
    for raw in text.splitlines():
        part = raw.strip()
        if not part:
            continue
        if out:
            if part[0] in ")]}" and out.endswith(","):
                out = out[:-1]
            if out[-1] not in "([{" and part[0] not in ")]}":
                out += " "
        out += part
    return out


def _comment_spans(node: Node, end: int, comments: frozenset[str], out: list[Node]) -> None:
    for child in node.children:
        if child.start_byte >= end:
            break
        if child.type in comments:
            out.append(child)
        elif child.child_count:
            _comment_spans(child, end, comments, out)


def _header(source: bytes, spec: _Spec, start: int, node: Node, end: int) -> str:
    """source[start:end] as a readable one-line header (comments dropped if multi-line)."""
    raw = source[start:end]
    if b"\n" in raw:
        found: list[Node] = []
        if b"#" in raw or b"/" in raw:
            _comment_spans(node, end, spec.comments, found)
        if found:
            pieces, pos = [], start
            for c in found:
                if c.start_byte >= pos:
                    pieces.append(source[pos : c.start_byte].rstrip(b" \t"))
                    pos = c.end_byte
            pieces.append(source[pos:end])
            raw = b"".join(pieces)
        return _collapse(raw.decode("utf-8", "replace"))
    return raw.decode("utf-8", "replace").strip()


def _clean_comment(text: str) -> list[str]:
    """The lines of one comment without `//`, `///`, `#`, `/* */` and leading `*`."""
    lines: list[str] = []
    if text.startswith("/*"):
        body = text[2:-2] if text.endswith("*/") else text[2:]
        body = body.lstrip("*!")
        for raw in body.split("\n"):
            line = raw.strip()
            if line.startswith("*"):
                line = line[1:]
                if line.startswith(" "):
                    line = line[1:]
            lines.append(line.rstrip())
    else:
        for raw in text.split("\n"):
            line = raw.strip()
            for prefix in ("///", "//!", "//", "#"):
                if line.startswith(prefix):
                    line = line[len(prefix) :]
                    break
            if line.startswith(" "):
                line = line[1:]
            lines.append(line.rstrip())
    return lines


def _finish_doc(lines: list[str]) -> str:
    while lines and not lines[0].strip():
        lines.pop(0)
    while lines and not lines[-1].strip():
        lines.pop()
    doc = "\n".join(lines)
    if len(doc) > MAX_DOC_CHARS:
        cut = doc.rfind("\n", 0, MAX_DOC_CHARS)
        doc = doc[: cut if cut > 0 else MAX_DOC_CHARS] + "\n..."
    return doc


def _comment_above(source: bytes, spec: _Spec, outer: Node) -> str:
    """The block of comments directly above `outer` (no blank line in between)."""
    row = outer.start_point.row
    node = outer.prev_named_sibling
    while node is not None and node.type in spec.skip_above:
        row = node.start_point.row
        node = node.prev_named_sibling
    found: list[Node] = []
    while node is not None and node.type in spec.comments:
        end = node.end_point
        end_row = end.row - 1 if end.column == 0 and end.row > node.start_point.row else end.row
        if end_row != row - 1:
            break
        found.append(node)
        row = node.start_point.row
        node = node.prev_named_sibling
    if not found:
        return ""
    if node is not None and node.end_point.row == found[-1].start_point.row:
        found.pop()  # a trailing comment of the code before, not ours
    lines: list[str] = []
    for comment in reversed(found):
        lines.extend(_clean_comment(_text(source, comment)))
    return _finish_doc(lines)


def _docstring(source: bytes, body: Node | None) -> str:
    """A Python body's docstring, unquoted and dedented like `inspect.cleandoc`."""
    if body is None or body.named_child_count == 0:
        return ""
    first = body.named_child(0)
    if first.type != "expression_statement" or first.named_child_count != 1:
        return ""
    string = first.named_child(0)
    if string.type != "string":
        return ""
    m = _PY_STRING.match(_text(source, string))
    if m is None:
        return ""
    lines = m.group(2).expandtabs().split("\n")
    indent = min(
        (len(line) - len(line.lstrip()) for line in lines[1:] if line.strip()),
        default=0,
    )
    lines = [lines[0].strip()] + [line[indent:].rstrip() for line in lines[1:]]
    return _finish_doc(lines)


def _constant_signature(text: str) -> str:
    text = text.strip().rstrip(";").rstrip()
    first, newline, _ = text.partition("\n")
    first = first.rstrip()
    if len(first) > MAX_CONSTANT_SIGNATURE:
        return first[:MAX_CONSTANT_SIGNATURE] + " ..."
    return first + " ..." if newline else first


# --- positions ------------------------------------------------------------------------------


class _Positions:
    """LSP (line, UTF-16 column) of byte offsets in one file."""

    def __init__(self, source: bytes) -> None:
        self.source = source
        self.ascii = source.isascii()
        self.starts: list[int] | None = None
        if b"\r" in source and _LONE_CR.search(source):
            # LSP breaks lines at a lone "\r" too; tree-sitter rows do not.
            self.starts = [0, *(m.end() for m in _LINE_START.finditer(source))]

    def at(self, byte: int, point: tree_sitter.Point) -> tuple[int, int]:
        if self.starts is not None:
            line = bisect.bisect_right(self.starts, byte) - 1
            seg = self.source[self.starts[line] : byte]
        else:
            line, col = point
            if self.ascii or col == 0:
                return line, col
            seg = self.source[byte - col : byte]
        if seg.isascii():
            return line, len(seg)
        return line, len(seg.decode("utf-8", "replace").encode("utf-16-le")) // 2


# --- extraction -----------------------------------------------------------------------------


def _c_function_name(source: bytes, declarator: Node) -> tuple[Node, list[str]] | None:
    """The name node and `A::B::` scopes of a C/C++ function declarator, if it is one."""
    node: Node | None = declarator
    while node is not None and node.type != "function_declarator":
        if node.type not in ("pointer_declarator", "reference_declarator", "attributed_declarator"):
            return None
        inner = node.child_by_field_name("declarator")
        node = inner if inner is not None else node.named_child(node.named_child_count - 1)
    if node is None:
        return None
    name = node.child_by_field_name("declarator")
    scopes: list[str] = []
    while name is not None and name.type == "qualified_identifier":
        scope = name.child_by_field_name("scope")
        if scope is not None:
            scopes.append(_type_name(source, scope))
        name = name.child_by_field_name("name")
    if name is not None and name.type == "template_function":
        name = name.child_by_field_name("name")
    if name is None or name.type not in (
        "identifier",
        "field_identifier",
        "destructor_name",
        "operator_name",
    ):
        return None
    return name, scopes


def _enclosing(source: bytes, spec: _Spec, node: Node) -> tuple[list[str], bool] | None:
    """Container names (outermost first) and whether the innermost is class-like.

    None when the definition is local to a function body.
    """
    names: list[str] = []
    class_like: bool | None = None
    parent = node.parent
    while parent is not None:
        ptype = parent.type
        if ptype in spec.locals:
            return None
        is_class = spec.containers.get(ptype)
        if is_class is not None:
            name = _container_name(source, spec, parent)
            if name:
                names.append(name)
            if class_like is None:
                class_like = is_class
        parent = parent.parent
    names.reverse()
    return names, bool(class_like)


def _body(node: Node) -> Node | None:
    body = node.child_by_field_name("body")
    if body is not None:
        return body
    if node.type == "type_spec":  # Go: the struct or interface type holds the braces
        value = node.child_by_field_name("type")
        if value is not None and value.type in ("struct_type", "interface_type"):
            for child in value.children:
                if child.type in ("{", "field_declaration_list"):
                    return child
    return None


@dataclass
class _Extractor:
    source: bytes
    language_id: str
    path: str
    spec: _Spec
    positions: _Positions
    symbols: list[Symbol] = field(default_factory=list)
    seen: set[tuple[int, int]] = field(default_factory=set)

    def add(
        self,
        kind: SymbolKind,
        name_node: Node,
        outer: Node,
        container: list[str],
        signature: str,
        doc: str,
        name: str | None = None,
    ) -> None:
        key = (name_node.start_byte, outer.start_byte)
        if key in self.seen:
            return
        self.seen.add(key)
        at = self.positions.at
        start_line, start_col = at(outer.start_byte, outer.start_point)
        end_line, end_col = at(outer.end_byte, outer.end_point)
        name_line, name_col = at(name_node.start_byte, name_node.start_point)
        self.symbols.append(
            Symbol(
                name=name if name is not None else _text(self.source, name_node),
                kind=int(kind),
                path=self.path,
                start_line=start_line,
                start_col=start_col,
                end_line=end_line,
                end_col=end_col,
                name_line=name_line,
                name_col=name_col,
                start_byte=outer.start_byte,
                end_byte=outer.end_byte,
                language=self.language_id,
                container=".".join(container),
                signature=signature,
                doc=doc,
            )
        )

    def outer(self, node: Node) -> Node:
        """The node including decorators, `export`, `template <...>`."""
        parent = node.parent
        while parent is not None and parent.type in self.spec.wrappers:
            node, parent = parent, parent.parent
        return node

    def doc(self, node: Node, outer: Node) -> str:
        if self.spec.docstrings:
            return _docstring(self.source, node.child_by_field_name("body"))
        return _comment_above(self.source, self.spec, outer)

    def definition(self, capture: str, node: Node, caps: dict[str, list[Node]]) -> None:
        """One function, class or similar definition."""
        source, spec = self.source, self.spec
        enclosing = _enclosing(source, spec, node)
        if enclosing is None:
            return
        container, class_like = enclosing
        name_nodes = caps.get("name")
        name_node = name_nodes[0] if name_nodes else None
        kind = _KINDS[capture]
        if capture in ("function", "prototype") and "declarator" in caps:
            found = _c_function_name(source, caps["declarator"][0])
            if found is None:
                return
            name_node, scopes = found
            if scopes:
                container = container + scopes
                class_like = True
        if name_node is None:
            return
        if node.type == "method_declaration" and self.language_id == "go":
            receiver = node.child_by_field_name("receiver")
            types = [] if receiver is None else receiver.named_children
            type_node = types[0].child_by_field_name("type") if types else None
            if type_node is not None:
                container = [_type_name(source, type_node)]
        if node.type == "type_spec":
            value = caps.get("type_value")
            value_type = value[0].type if value else ""
            if value_type == "struct_type":
                kind = SymbolKind.Struct
            elif value_type == "interface_type":
                kind = SymbolKind.Interface
        if node.type == "variable_declarator":  # JS `var f = function () {}`
            self.constant(node, caps)
            return

        if kind == SymbolKind.Function and class_like:
            kind = SymbolKind.Method
        name = _text(source, name_node)
        if kind == SymbolKind.Method and container and name in (container[-1], "constructor"):
            kind = SymbolKind.Constructor

        outer = self.outer(node)
        start = outer.start_byte if outer.type == "template_declaration" else node.start_byte
        keyword = ""
        if node.type == "type_spec" and node.parent is not None:  # Go: `type X struct`
            if node.parent.named_child_count == 1:
                outer = node.parent
                start = outer.start_byte
            else:
                keyword = "type "
        body = _body(node)
        if spec.docstrings:
            end = next((c.end_byte for c in node.children if c.type == ":"), node.end_byte)
        elif body is not None and source[body.start_byte : body.start_byte + 1] == b"{":
            end = body.start_byte
        else:
            end = node.end_byte
        signature = keyword + _header(source, spec, start, node, end).rstrip(";").rstrip()
        if node.type == "type_definition":  # C: `typedef struct { ... } Name`
            inner = node.child_by_field_name("type")
            inner_body = inner.child_by_field_name("body") if inner is not None else None
            if inner_body is not None:
                head = _header(source, spec, start, node, inner_body.start_byte)
                tail = _header(source, spec, inner_body.end_byte, node, node.end_byte)
                signature = f"{head} {{ ... }} {tail.rstrip(';').strip()}"
        self.add(kind, name_node, outer, container, signature, self.doc(node, outer), name)

    def constant(
        self, node: Node, caps: dict[str, list[Node]], kind: SymbolKind = SymbolKind.Constant
    ) -> None:
        """A top-level constant (or a JS const holding a function; Go's package-level
        variables too, `kind` Variable)."""
        source, spec, lang = self.source, self.spec, self.language_id
        if lang == "java":
            mods = caps.get("modifiers")
            if mods is not None and not {"static", "final"} <= {c.type for c in mods[0].children}:
                return
        if lang in ("c", "cpp") and not any(
            _text(source, q) in ("const", "constexpr") for q in caps.get("qualifier", [])
        ):
            return
        enclosing = _enclosing(source, spec, node)
        if enclosing is None:
            return
        container = enclosing[0]

        if lang == "go":  # one const_spec or var_spec may name several
            names = [n for n in node.children_by_field_name("name") if n.is_named]
            block = node.parent
            single = block is not None and block.named_child_count == 1
            outer = block if single and block is not None else node
            keyword = "" if single else ("var " if node.type == "var_spec" else "const ")
            doc = _comment_above(source, spec, node) or (
                _comment_above(source, spec, block) if single and block is not None else ""
            )
            text = keyword + _text(source, outer)
            for name_node in names:
                self.add(
                    kind, name_node, outer, container, _constant_signature(text), doc,
                )  # fmt: skip
            return

        name_node = caps["name"][0]
        name = _text(source, name_node)
        if lang == "python" and not _PY_CONSTANT.match(name):
            return
        kind = SymbolKind.Constant
        value = node.child_by_field_name("value")
        if value is not None and value.type in _FUNCTION_VALUES:  # JS/TS `const f = () => {}`
            kind = SymbolKind.Function
        # The statement holding the definition; the declarator alone when it shares one.
        holder = node.parent if node.type in ("variable_declarator", "assignment") else node
        if holder is None:
            return
        declarators = holder.children_by_field_name("declarator") or [
            c for c in holder.named_children if c.type == "variable_declarator"
        ]
        if len(declarators) > 1:
            declarator = holder.child_with_descendant(name_node) or name_node
            outer = header_node = declarator
            prefix = source[holder.start_byte : declarators[0].start_byte]
            text = (prefix + source[declarator.start_byte : declarator.end_byte]).decode(
                "utf-8", "replace"
            )
        else:
            outer = self.outer(holder)
            header_node = holder
            text = _text(source, holder)
        doc = _comment_above(source, spec, outer)
        if kind == SymbolKind.Function and value is not None:
            body = value.child_by_field_name("body")
            if body is not None and source[body.start_byte : body.start_byte + 1] == b"{":
                start = header_node.start_byte
                signature = _header(source, spec, start, header_node, body.start_byte)
            else:
                signature = _collapse(text).rstrip(";")
        else:
            signature = _constant_signature(text)
        self.add(kind, name_node, outer, container, signature, doc)


def extract_symbols(
    source: bytes, language_id: str, path: str, tree: tree_sitter.Tree | None = None
) -> list[Symbol]:
    """The definitions in one file, in document order.

    `tree` must have been parsed from `source` (e.g. `DocumentTrees.tree`); without it the
    source is parsed here. Unsupported languages give [].
    """
    query = _query(language_id)
    if query is None:
        return []
    if tree is None:
        tree = _parser(language_id).parse(source)
    ex = _Extractor(source, language_id, path, _SPECS[language_id], _Positions(source))
    for _, caps in tree_sitter.QueryCursor(query).matches(tree.root_node):
        for capture, nodes in caps.items():
            if capture in _KINDS:
                node = nodes[0]
                try:
                    if capture in ("constant", "variable"):
                        ex.constant(node, caps, _KINDS[capture])
                    else:
                        ex.definition(capture, node, caps)
                except Exception:  # one odd definition must not lose the whole file
                    log.debug("%s: skipping a %s at byte %d", path, capture, node.start_byte,
                              exc_info=True)  # fmt: skip
                break
    ex.symbols.sort(key=lambda s: (s.start_byte, -s.end_byte, s.name_line, s.name_col))
    return ex.symbols
