"""Generated unit tests: which test file they go to, and how they merge into it.

``test_file_for`` picks the test file of a source file by its ecosystem's usual layout,
preferring a test file the project already has. ``merge_tests`` merges the model's tests into
that file's text: imports are hoisted and deduplicated, tests that would shadow existing ones
are renamed, and members go inside the existing test class or ``mod tests``. ``import_hint``
tells the prompt how the test file imports the module under test. All of it is pure logic
over paths and text; the caller builds the LSP WorkspaceEdit.
"""

from __future__ import annotations

import bisect
import os
import re
import textwrap
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import ClassVar

import msgspec
import tree_sitter

from lsp_server.languages import language_id as language_of
from lsp_server.workspace.languages import ts_language

__all__ = ["TestTarget", "import_hint", "merge_tests", "test_file_for"]

# Despite its name this is not a test module: keep pytest from collecting it.
__test__ = False

_JS = frozenset({"javascript", "javascriptreact", "typescript", "typescriptreact"})
_CPP_SUFFIXES = frozenset({".cpp", ".cc", ".cxx", ".c++"})


class TestTarget(msgspec.Struct, frozen=True):
    """The test file for a source file, and whether it exists yet."""

    __test__: ClassVar[bool] = False

    path: Path
    """Absolute path of the test file."""
    exists: bool
    language_id: str
    """LSP language id of the test file."""
    same_file: bool = False
    """Tests live inside the source file itself (Rust ``#[cfg(test)] mod tests``)."""


# ---------------------------------------------------------------------------------------------
# Where the tests go


def test_file_for(source: Path, language_id: str, root: Path | None) -> TestTarget:
    """The test file for ``source``: an existing one if found, else where the layout puts it.

    ``root`` is the workspace root; None (or a root that does not contain ``source``) limits
    the search to the source's own directory.
    """
    source = Path(source)
    if root is not None and not source.is_relative_to(root):
        root = None
    if language_id == "rust":
        return TestTarget(source, source.is_file(), "rust", same_file=True)
    if language_id == "python":
        path = _python_test(source, root)
    elif language_id == "java":
        path = _java_test(source)
    elif language_id in _JS:
        path = _js_test(source)
    elif language_id == "go":
        path = source if source.name.endswith("_test.go") else _sibling(source, "_test.go")
    elif language_id in ("c", "cpp"):
        path = _c_test(source, language_id, root)
    else:
        path = (
            source if source.stem.endswith("_test") else _sibling(source, "_test" + source.suffix)
        )
    lang = language_of(path)
    return TestTarget(path, path.is_file(), language_id if lang == "plaintext" else lang)


test_file_for.__test__ = False  # type: ignore[attr-defined]


def _sibling(source: Path, suffix: str) -> Path:
    return source.with_name(source.stem + suffix)


def _first_existing(candidates: Iterable[Path]) -> Path | None:
    return next((path for path in candidates if path.is_file()), None)


def _after_src(parts: Sequence[str]) -> tuple[str, ...]:
    """Directory parts below the last ``src`` segment (all of them without one)."""
    cut = max((i + 1 for i, part in enumerate(parts) if part == "src"), default=0)
    return tuple(parts[cut:])


def _python_test(source: Path, root: Path | None) -> Path:
    name = source.name
    if name.startswith("test_") or source.stem.endswith("_test"):
        return source
    package_init = source.stem == "__init__"
    module = source.parent.name if package_init else source.stem
    here = source.parent.parent if package_init else source.parent
    names = (f"test_{module}.py", f"{module}_test.py")
    candidates: list[Path] = []
    mirrors: list[tuple[str, ...]] = []
    if root is not None and here.is_relative_to(root):
        rel = _after_src(here.relative_to(root).parts)
        mirrors = [m for m in (rel, rel[1:]) if m]
        tests_dirs = [root / "tests", root / "test"]
        candidates += [d.joinpath(*m, n) for m in mirrors for d in tests_dirs for n in names]
        candidates += [d / n for d in tests_dirs for n in names]
    candidates += [here / names[0], here / names[1], here / "tests" / names[0]]
    found = _first_existing(candidates)
    if found is not None:
        return found
    if root is not None:
        for tests_dir in (root / "tests", root / "test"):
            if tests_dir.is_dir():
                mirror = next(
                    (tests_dir.joinpath(*m) for m in mirrors if tests_dir.joinpath(*m).is_dir()),
                    tests_dir,
                )
                return mirror / names[0]
    return here / names[0]


def _java_test(source: Path) -> Path:
    parts = source.parts
    stem = source.stem
    if stem.endswith(("Test", "Tests")) or _segment(parts[:-1], ("src", "test", "java")) >= 0:
        return source
    at = _segment(parts[:-1], ("src", "main", "java"))
    if at >= 0:
        test_dir = Path(*parts[:at], "src", "test", "java", *parts[at + 3 : -1])
    else:
        test_dir = source.parent
    names = (f"{stem}Test.java", f"{stem}Tests.java")
    return _first_existing(test_dir / n for n in names) or test_dir / names[0]


def _segment(parts: Sequence[str], wanted: tuple[str, ...]) -> int:
    """Index where ``wanted`` last occurs as consecutive ``parts``, or -1."""
    for i in range(len(parts) - len(wanted), -1, -1):
        if tuple(parts[i : i + len(wanted)]) == wanted:
            return i
    return -1


_JS_ALTERNATE = {".ts": ".tsx", ".tsx": ".ts", ".js": ".jsx", ".jsx": ".js"}


def _js_test(source: Path) -> Path:
    ext = source.suffix
    base = source.name[: -len(ext)] if ext else source.name
    if base.endswith((".test", ".spec")) or "__tests__" in source.parent.parts:
        return source
    here = source.parent
    candidates = [
        path
        for e in (ext, _JS_ALTERNATE.get(ext))
        if e is not None
        for path in (
            here / f"{base}.test{e}",
            here / f"{base}.spec{e}",
            here / "__tests__" / f"{base}.test{e}",
            here / "__tests__" / f"{base}.spec{e}",
            here / "__tests__" / f"{base}{e}",
        )
    ]
    return _first_existing(candidates) or here / f"{base}.test{ext}"


def _c_test(source: Path, language_id: str, root: Path | None) -> Path:
    stem = source.stem
    if stem.startswith("test_") or stem.endswith("_test"):
        return source
    if language_id == "c":
        ext = ".c"
    else:
        ext = source.suffix if source.suffix.lower() in _CPP_SUFFIXES else ".cpp"
    names = (f"test_{stem}{ext}", f"{stem}_test{ext}")
    dirs = [root / "tests", root / "test"] if root is not None else []
    found = _first_existing(
        [d / n for d in dirs for n in names] + [source.parent / n for n in names]
    )
    if found is not None:
        return found
    tests_dir = next((d for d in dirs if d.is_dir()), source.parent)
    return tests_dir / names[0]


# ---------------------------------------------------------------------------------------------
# How the test file imports the module under test

_JAVA_PACKAGE = re.compile(r"^\s*package\s+([\w.]+)\s*;", re.MULTILINE)
_GO_PACKAGE = re.compile(r"^\s*package\s+(\w+)", re.MULTILINE)


def import_hint(source: Path, language_id: str, root: Path | None) -> str:
    """How a test file imports ``source``: a dotted module, package, or relative path; or "".

    Python: the dotted module path (``"shapes.geometry"``). Java and Go: the package declared
    in the source. JavaScript/TypeScript: the import path from the test file to the source,
    without extension (``"./foo"``).
    """
    source = Path(source)
    if root is not None and not source.is_relative_to(root):
        root = None
    if language_id == "python":
        return _python_module(source, root)
    if language_id == "java":
        return _declared(source, _JAVA_PACKAGE)
    if language_id == "go":
        return _declared(source, _GO_PACKAGE)
    if language_id in _JS:
        test_dir = test_file_for(source, language_id, root).path.parent
        keep_ext = source.suffix in (".mjs", ".cjs")  # Node's ESM resolution needs these
        target = source if keep_ext else source.with_suffix("")
        rel = Path(os.path.relpath(target, test_dir)).as_posix()
        return rel if rel.startswith("../") else f"./{rel}"
    return ""


def _python_module(source: Path, root: Path | None) -> str:
    directory = source.parent
    packages: list[str] = []
    if (directory / "__init__.py").is_file():
        while (directory / "__init__.py").is_file() and directory not in (root, directory.parent):
            packages.insert(0, directory.name)
            directory = directory.parent
    elif root is not None:
        # Namespace packages (no __init__.py): importable from the root, or from src/.
        packages = list(_after_src(directory.relative_to(root).parts))
    parts = [*packages, source.stem] if source.stem != "__init__" else packages
    valid: list[str] = []
    for part in reversed(parts):  # a directory that is no identifier cannot be imported
        if not part.isidentifier():
            break
        valid.insert(0, part)
    return ".".join(valid)


def _declared(source: Path, pattern: re.Pattern[str]) -> str:
    try:
        text = source.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    match = pattern.search(text)
    return match.group(1) if match else ""


# ---------------------------------------------------------------------------------------------
# Merging generated tests into a test file


def merge_tests(existing: str | None, generated: str, language_id: str) -> str:
    """The text to write to the test file: ``existing`` with ``generated`` merged in.

    With no existing text, the generated text itself. Otherwise imports of ``generated`` that
    ``existing`` lacks are hoisted to its imports, duplicates dropped, definitions that would
    shadow existing ones renamed with a numeric suffix (identical ones dropped), and the tests
    appended (Java: inside the existing class; Rust: inside ``mod tests``). Line endings of
    ``existing`` are kept.
    """
    generated = generated.replace("\r\n", "\n")
    if existing is None or not existing.strip():
        return generated.rstrip("\n") + "\n"
    crlf = "\r\n" in existing
    existing = existing.replace("\r\n", "\n")
    merger = _MERGERS.get(language_id)
    grammar = ts_language(language_id)
    merged = None
    if merger is not None and grammar is not None:
        merged = merger(existing, generated, grammar)
    if merged is None:
        if language_id in ("c", "cpp"):
            merged = _merge_c(existing, generated)
        else:
            merged = _join(existing, generated.strip("\n"), 1)
    return merged.replace("\n", "\r\n") if crlf else merged


_Edit = tuple[int, int, bytes]
"""Replace bytes ``[start, end)`` by the given bytes."""


class _Doc:
    """A text as UTF-8 bytes with its syntax tree and line offsets."""

    __slots__ = ("data", "lines", "root")

    def __init__(self, text: str, grammar: tree_sitter.Language) -> None:
        self.data = text.encode("utf-8", "surrogatepass")
        self.root = tree_sitter.Parser(grammar).parse(self.data).root_node
        self.lines = [0, *(m.end() for m in re.finditer(b"\n", self.data))]

    def text(self, node: tree_sitter.Node | None) -> str:
        if node is None:
            return ""
        return self.data[node.start_byte : node.end_byte].decode("utf-8", "surrogatepass")

    def row_start(self, row: int) -> int:
        return self.lines[row] if row < len(self.lines) else len(self.data)

    def row_end(self, row: int) -> int:
        """Offset just past the newline ending ``row`` (the end of the data on the last row)."""
        return self.lines[row + 1] if row + 1 < len(self.lines) else len(self.data)

    def indent_of(self, node: tree_sitter.Node) -> str | None:
        """Whitespace before ``node`` on its line, or None if other text precedes it there."""
        before = self.data[self.row_start(node.start_point.row) : node.start_byte]
        return before.decode() if not before.strip() else None

    def blank_line_at(self, offset: int) -> bool:
        end = self.data.find(b"\n", offset)
        return not self.data[offset : len(self.data) if end < 0 else end].strip()

    def deletion(self, node: tree_sitter.Node) -> _Edit:
        """Remove ``node``: its whole lines and blank lines after them when it has them alone."""
        start, end = node.start_byte, node.end_byte
        line_end = self.row_end(node.end_point.row)
        if self.indent_of(node) is None or self.data[end:line_end].strip():
            return start, end, b""
        end = line_end
        while end < len(self.data) and self.blank_line_at(end):
            end = self.row_end(bisect.bisect_right(self.lines, end) - 1)
        return self.row_start(node.start_point.row), end, b""

    def insert_lines(
        self, offset: int, lines: Sequence[str], *, blank_before: bool, blank_after: bool
    ) -> _Edit:
        """Insert whole ``lines`` at the line start ``offset``, optionally set off by blanks."""
        text = "".join(line + "\n" for line in lines)
        if offset == len(self.data) and self.data and not self.data.endswith(b"\n"):
            text = "\n" + text
        if blank_before and offset > 0:
            prev = self.data.rfind(b"\n", 0, offset - 1) + 1
            if self.data[prev:offset].strip():
                text = "\n" + text
        if blank_after and offset < len(self.data) and not self.blank_line_at(offset):
            text += "\n"
        return offset, offset, text.encode()

    def render(
        self,
        start: int,
        end: int,
        drops: Iterable[tree_sitter.Node],
        edits: Iterable[_Edit] = (),
    ) -> str:
        """Bytes ``[start, end)`` less ``drops``, with ``edits``, dedented, blank ends trimmed."""
        changes = [self.deletion(node) for node in drops]
        changes += edits
        local = [(s - start, e - start, r) for s, e, r in changes if start <= s and e <= end]
        text = _apply(self.data[start:end], local).decode("utf-8", "surrogatepass")
        lines = [line.rstrip() for line in text.split("\n")]
        while lines and not lines[0]:
            lines.pop(0)
        while lines and not lines[-1]:
            lines.pop()
        return textwrap.dedent("\n".join(lines))


def _apply(data: bytes, edits: Iterable[_Edit]) -> bytes:
    """``data`` with ``edits``; an edit overlapping an earlier (or longer) one is skipped."""
    out: list[bytes] = []
    pos = 0
    for start, end, replacement in sorted(edits, key=lambda e: (e[0], -e[1])):
        if start < pos:
            continue
        out += [data[pos:start], replacement]
        pos = end
    out.append(data[pos:])
    return b"".join(out)


def _walk(node: tree_sitter.Node) -> Iterator[tree_sitter.Node]:
    pending = [node]
    while pending:
        current = pending.pop()
        yield current
        pending.extend(reversed(current.children))


def _squash(text: str) -> str:
    return " ".join(text.split())


def _join(head: str, body: str, blank_lines: int) -> str:
    """``head`` and ``body`` separated by ``blank_lines`` blank lines, ending in one newline."""
    head = head.rstrip()
    if not body.strip():
        return head + "\n"
    return head + "\n" * (blank_lines + 1) + body.strip("\n") + "\n"


def _indent(text: str, prefix: str) -> str:
    return "\n".join(prefix + line if line.strip() else "" for line in text.split("\n"))


def _fresh(name: str, taken: set[str]) -> str:
    """``name`` with the first numeric suffix (``_2``, ``_3``, ...) not in ``taken``."""
    k = 2
    while f"{name}_{k}" in taken:
        k += 1
    taken.add(f"{name}_{k}")
    return f"{name}_{k}"


_Skip = Callable[[tree_sitter.Node, tree_sitter.Node], bool]
"""Whether an identifier (first argument) under a parent (second) names something else."""


class _Renamer:
    """Decides, per generated definition, to keep, drop (identical) or rename (clash) it."""

    def __init__(self, doc: _Doc, existing: dict[str, set[str]], taken: set[str]) -> None:
        self.doc = doc
        self.existing = existing
        self.taken = taken | set(existing) - {""}
        self.renames: dict[str, str] = {}
        self.shapes = {
            _shape(text, name) for name, texts in existing.items() if name for text in texts
        }

    def identical(self, names: Sequence[str], node: tree_sitter.Node) -> bool:
        """True if ``node`` repeats an existing definition, maybe under another name.

        Such a definition is dropped: merging the same tests twice adds them once.
        """
        text = _squash(self.doc.text(node))
        if len(names) == 1 and _shape(text, names[0]) in self.shapes:
            return True
        return any(text in self.existing.get(name, ()) for name in names or [""])

    def clash(self, names: Iterable[str]) -> None:
        for name in names:
            if name in self.existing and name not in self.renames:
                self.renames[name] = _fresh(name, self.taken)

    def edits(self, types: frozenset[str], skip: _Skip) -> list[_Edit]:
        """Edits renaming every reference to a renamed definition in the generated text."""
        if not self.renames:
            return []
        edits: list[_Edit] = []
        for node in _walk(self.doc.root):
            if node.type not in types:
                continue
            new = self.renames.get(self.doc.text(node))
            if new is not None and (node.parent is None or not skip(node, node.parent)):
                edits.append((node.start_byte, node.end_byte, new.encode()))
        return edits


def _shape(text: str, name: str) -> str:
    """``text`` with the name it defines blanked out, to compare definitions by content."""
    return re.sub(rf"(?<![\w$]){re.escape(name)}(?![\w$])", "\0", text, count=1)


def _register(defined: dict[str, set[str]], names: Sequence[str], text: str) -> None:
    """Note an existing definition by each name it defines ("" for a nameless statement)."""
    for name in names or [""]:
        defined.setdefault(name, set()).add(_squash(text))


def _identifiers(doc: _Doc, types: frozenset[str]) -> set[str]:
    return {doc.text(node) for node in _walk(doc.root) if node.type in types}


def _is_field(parent: tree_sitter.Node, field: str, node: tree_sitter.Node) -> bool:
    child = parent.child_by_field_name(field)
    return child is not None and child == node


# --- Python ----------------------------------------------------------------------------------

_PY_IMPORTS = frozenset({"import_statement", "import_from_statement", "future_import_statement"})
_PY_IDS = frozenset({"identifier"})
_CODING = re.compile(r"^#.*coding[:=]")


def _merge_python(existing: str, generated: str, grammar: tree_sitter.Language) -> str:
    old = _Doc(existing, grammar)
    gen = _Doc(textwrap.dedent(generated), grammar)
    have: set[tuple[str, ...]] = set()
    defined: dict[str, set[str]] = {}
    future_end = import_end = None
    extendable: dict[str, tree_sitter.Node] = {}  # module -> last name of a `from` import
    for node in old.root.named_children:
        if node.type in _PY_IMPORTS:
            keys = _py_import_keys(old, node)
            have.update(keys)
            listed = node.children_by_field_name("name")
            if node.type == "import_from_statement" and listed and keys[-1][2] != "*":
                extendable[keys[0][1]] = listed[-1]
            if node.type == "future_import_statement":
                future_end = old.row_end(node.end_point.row)
            else:
                import_end = old.row_end(node.end_point.row)
        _register(defined, _py_defined(old, node), old.text(node))
    main = next((n for n in old.root.named_children if _py_main(old, n)), None)

    renamer = _Renamer(gen, defined, _identifiers(gen, _PY_IDS))
    future: list[str] = []
    imports: list[str] = []
    drops: list[tree_sitter.Node] = []
    edits: list[_Edit] = []
    for i, node in enumerate(gen.root.named_children):
        if node.type in _PY_IMPORTS:
            drops.append(node)
            keys = _py_import_keys(gen, node)
            missing = [key for key in dict.fromkeys(keys) if key not in have]
            have.update(missing)
            if not missing:
                continue
            line = gen.text(node) if len(missing) == len(keys) else _py_import(missing)
            last_name = extendable.get(missing[0][1])
            if node.type == "future_import_statement":
                future.append(line)
            elif last_name is not None and missing[0][0] == "from" and missing[0][2] != "*":
                edits.append((last_name.end_byte, last_name.end_byte, b", " + _py_names(missing)))
            else:
                imports.append(line)
        elif (i == 0 and _py_docstring(node)) or (main is not None and _py_main(gen, node)):
            drops.append(node)  # the file keeps its own `if __name__ == "__main__":` block
        else:
            names = _py_defined(gen, node)
            if renamer.identical(names, node):
                drops.append(node)
            else:
                renamer.clash(names)
    body = gen.render(0, len(gen.data), drops, renamer.edits(_PY_IDS, _py_skip))

    head = _py_head(old)
    if import_end is not None:
        if imports:
            edits.append(
                old.insert_lines(import_end, imports, blank_before=False, blank_after=False)
            )
        if future:
            at = future_end if future_end is not None else head
            blank = future_end is None
            edits.append(old.insert_lines(at, future, blank_before=blank, blank_after=blank))
    elif future or imports:
        block = future + ([""] if future and imports else []) + imports
        at = future_end if future_end is not None else head
        continues = future_end is not None and bool(future)
        edits.append(old.insert_lines(at, block, blank_before=not continues, blank_after=True))
    if main is not None and body:  # tests go before the block that runs them
        at = old.row_start(main.start_point.row)
        edits.append((at, at, (body + "\n\n\n").encode()))
        body = ""
    merged = _apply(old.data, edits).decode("utf-8", "surrogatepass")
    return _join(merged, body, 2)


def _py_import_keys(doc: _Doc, node: tree_sitter.Node) -> list[tuple[str, ...]]:
    """What an import binds: ``("import", module, alias)`` or ``("from", module, name, alias)``."""
    names: list[tuple[str, str]] = []
    for child in node.children_by_field_name("name"):
        if child.type == "aliased_import":
            names.append(
                (
                    "".join(doc.text(child.child_by_field_name("name")).split()),
                    doc.text(child.child_by_field_name("alias")),
                )
            )
        else:
            names.append(("".join(doc.text(child).split()), ""))
    if node.type == "import_statement":
        return [("import", name, alias) for name, alias in names]
    if node.type == "future_import_statement":
        module = "__future__"
    else:
        module = "".join(doc.text(node.child_by_field_name("module_name")).split())
        if any(child.type == "wildcard_import" for child in node.children):
            names.append(("*", ""))
    return [("from", module, name, alias) for name, alias in names]


def _py_names(keys: Sequence[tuple[str, ...]]) -> bytes:
    """The imported names of ``keys`` as an import statement lists them."""
    bound = [(key[-2], key[-1]) for key in keys]
    return ", ".join(f"{name} as {alias}" if alias else name for name, alias in bound).encode()


def _py_import(keys: Sequence[tuple[str, ...]]) -> str:
    """An import statement binding ``keys`` (all of one kind and module)."""
    names = _py_names(keys).decode()
    return f"import {names}" if keys[0][0] == "import" else f"from {keys[0][1]} import {names}"


def _py_defined(doc: _Doc, node: tree_sitter.Node) -> list[str]:
    """Top-level names a statement defines: functions, classes, plain assignments."""
    if node.type == "decorated_definition":
        inner = node.child_by_field_name("definition")
        if inner is None:
            return []
        node = inner
    if node.type in ("function_definition", "class_definition"):
        return [doc.text(node.child_by_field_name("name"))]
    if node.type == "expression_statement":
        return [
            doc.text(target)
            for child in node.named_children
            if child.type == "assignment"
            and (target := child.child_by_field_name("left")) is not None
            and target.type == "identifier"
        ]
    return []


def _py_main(doc: _Doc, node: tree_sitter.Node) -> bool:
    """Whether ``node`` is an ``if __name__ == "__main__":`` block."""
    condition = node.child_by_field_name("condition") if node.type == "if_statement" else None
    text = "".join(doc.text(condition).split()).replace("'", '"')
    return text in ('__name__=="__main__"', '"__main__"==__name__')


def _py_docstring(node: tree_sitter.Node) -> bool:
    return (
        node.type == "expression_statement"
        and node.named_child_count == 1
        and node.named_children[0].type in ("string", "concatenated_string")
    )


def _py_skip(node: tree_sitter.Node, parent: tree_sitter.Node) -> bool:
    if parent.type == "attribute":
        return _is_field(parent, "attribute", node)
    if parent.type == "keyword_argument":
        return _is_field(parent, "name", node)
    return False


def _py_head(doc: _Doc) -> int:
    """Offset past the shebang, encoding line, header comments and module docstring."""
    children = doc.root.children
    lead = 0
    while lead < len(children) and children[lead].type == "comment":
        lead += 1
    first = children[lead] if lead < len(children) else None
    docstring = first is not None and _py_docstring(first)
    end_row = -1
    for i in range(lead):
        comment = children[i]
        text = doc.text(comment)
        following = children[i + 1] if i + 1 < len(children) else None
        if (
            docstring
            or following is None
            or following.start_point.row > comment.end_point.row + 1  # a blank line after
            or (comment.start_point.row < 2 and (text.startswith("#!") or _CODING.match(text)))
        ):
            end_row = comment.end_point.row
    if first is not None and docstring:
        end_row = first.end_point.row
    return doc.row_end(end_row) if end_row >= 0 else 0


# --- Java ------------------------------------------------------------------------------------

_JAVA_IDS = frozenset({"identifier", "type_identifier"})


def _merge_java(existing: str, generated: str, grammar: tree_sitter.Language) -> str:
    old = _Doc(existing, grammar)
    gen = _Doc(generated, grammar)
    have = {_squash(old.text(n)) for n in old.root.named_children if n.type == "import_declaration"}
    imports: list[str] = []
    header: list[tree_sitter.Node] = []
    for node in gen.root.named_children:
        if node.type in ("import_declaration", "package_declaration"):
            header.append(node)
        if node.type == "import_declaration" and _squash(gen.text(node)) not in have:
            have.add(_squash(gen.text(node)))
            imports.append(gen.text(node))
    edits = _java_import_edits(old, imports)
    target = _java_class(old)
    classes = [n for n in gen.root.named_children if n.type == "class_declaration"]
    if target is None:
        body = gen.render(0, len(gen.data), header)
        return _join(_apply(old.data, edits).decode(), body, 1)
    if not classes:  # bare methods: wrap them in a class to read them as members
        rest = gen.render(0, len(gen.data), header)
        gen = _Doc(f"class Generated {{\n{rest}\n}}\n", grammar)
        classes = [n for n in gen.root.named_children if n.type == "class_declaration"]
        if not classes:
            return _join(_apply(old.data, edits).decode(), rest, 1)
    target_name = old.text(target.child_by_field_name("name"))
    source = next(
        (c for c in classes if gen.text(c.child_by_field_name("name")) == target_name), classes[0]
    )
    target_body = target.child_by_field_name("body")
    source_body = source.child_by_field_name("body")
    if target_body is None or source_body is None or len(source_body.children) < 2:
        return _join(_apply(old.data, edits).decode(), gen.render(0, len(gen.data), header), 1)

    defined: dict[str, set[str]] = {}
    constructors: set[str] = set()
    for member in target_body.named_children:
        _register(defined, _java_names(old, member), old.text(member))
        if member.type == "constructor_declaration":
            constructors.add(_squash(old.text(member.child_by_field_name("parameters"))))
    renamer = _Renamer(gen, defined, _identifiers(gen, _JAVA_IDS))
    source_name = gen.text(source.child_by_field_name("name"))
    if source_name != target_name:
        renamer.renames[source_name] = target_name
    drops: list[tree_sitter.Node] = []
    for member in source_body.named_children:
        names = _java_names(gen, member)
        params = _squash(gen.text(member.child_by_field_name("parameters")))
        if renamer.identical(names, member) or (
            member.type == "constructor_declaration" and params in constructors
        ):
            drops.append(member)
        else:
            renamer.clash(names)
    rename_edits = renamer.edits(_JAVA_IDS, _java_skip)
    members = gen.render(
        source_body.children[0].end_byte, source_body.children[-1].start_byte, drops, rename_edits
    )
    if members.strip():
        edits.append(_before_close(old, target, target_body, members))
    merged = _apply(old.data, edits).decode("utf-8", "surrogatepass")
    others = [c for c in classes if c != source]
    extra = "\n\n".join(
        filter(None, (_java_other_class(gen, c, rename_edits, old) for c in others))
    )
    return _join(merged, extra, 1)


def _java_other_class(gen: _Doc, node: tree_sitter.Node, edits: Sequence[_Edit], old: _Doc) -> str:
    """Another class of the generated file, appended as is unless the file already has it."""
    name = gen.text(node.child_by_field_name("name"))
    if any(
        n.type == "class_declaration" and old.text(n.child_by_field_name("name")) == name
        for n in old.root.named_children
    ):
        return ""
    return gen.render(gen.row_start(node.start_point.row), node.end_byte, (), edits)


def _java_class(doc: _Doc) -> tree_sitter.Node | None:
    """The file's main class: the first public top-level class, else the first one."""
    classes = [n for n in doc.root.named_children if n.type == "class_declaration"]
    for node in classes:
        modifiers = next((c for c in node.children if c.type == "modifiers"), None)
        if modifiers is not None and "public" in doc.text(modifiers).split():
            return node
    return classes[0] if classes else None


def _java_names(doc: _Doc, member: tree_sitter.Node) -> list[str]:
    if member.type in ("method_declaration", "class_declaration", "interface_declaration"):
        return [doc.text(member.child_by_field_name("name"))]
    if member.type == "field_declaration":
        return [
            doc.text(declarator.child_by_field_name("name"))
            for declarator in member.children_by_field_name("declarator")
        ]
    return []


def _java_skip(node: tree_sitter.Node, parent: tree_sitter.Node) -> bool:
    if parent.type in ("marker_annotation", "annotation", "scoped_identifier"):
        return True
    if parent.type == "field_access" and _is_field(parent, "field", node):
        obj = parent.child_by_field_name("object")
        return obj is None or obj.type != "this"
    if parent.type == "method_invocation" and _is_field(parent, "name", node):
        obj = parent.child_by_field_name("object")
        return obj is not None and obj.type != "this"
    return False


def _java_import_edits(old: _Doc, imports: Sequence[str]) -> list[_Edit]:
    if not imports:
        return []
    present = [n for n in old.root.named_children if n.type == "import_declaration"]
    if present:
        edits: list[_Edit] = []
        for static in (False, True):  # each to the end of its own group, if the file has one
            group = [n for n in present if _java_static(old.text(n)) == static] or present
            lines = [line for line in imports if _java_static(line) == static]
            if lines:
                at = old.row_end(group[-1].end_point.row)
                edits.append(old.insert_lines(at, lines, blank_before=False, blank_after=False))
        return edits
    package = next((n for n in old.root.named_children if n.type == "package_declaration"), None)
    at = old.row_end(package.end_point.row) if package is not None else 0
    return [old.insert_lines(at, imports, blank_before=True, blank_after=True)]


def _java_static(line: str) -> bool:
    return line.split()[1:2] == ["static"]


def _before_close(
    doc: _Doc, owner: tree_sitter.Node, body: tree_sitter.Node, members: str
) -> _Edit:
    """Insert ``members`` (dedented) at the end of ``body``, indented like its members."""
    close = body.children[-1]
    inner = [c for c in body.named_children if c.type not in ("line_comment", "block_comment")]
    owner_indent = doc.indent_of(owner) or ""
    indent = doc.indent_of(inner[0]) if inner else None
    if indent is None:
        indent = owner_indent + ("\t" if owner_indent.startswith("\t") else "    ")
    close_indent = doc.indent_of(close)
    if close_indent is None:
        close_indent = owner_indent
    start = len(doc.data[: close.start_byte].rstrip())
    gap = "\n\n" if len(body.children) > 2 else "\n"
    text = gap + _indent(members, indent) + "\n" + close_indent
    return start, close.start_byte, text.encode()


# --- Go --------------------------------------------------------------------------------------

_GO_IDS = frozenset({"identifier", "type_identifier"})


def _merge_go(existing: str, generated: str, grammar: tree_sitter.Language) -> str:
    old = _Doc(existing, grammar)
    gen = _Doc(generated, grammar)
    have = {key for decl in _go_imports(old) for key, _ in _go_specs(old, decl)}
    defined: dict[str, set[str]] = {}
    for node in old.root.named_children:
        _register(defined, _go_names(old, node), old.text(node))
    renamer = _Renamer(gen, defined, _identifiers(gen, _GO_IDS))
    specs: list[str] = []
    drops: list[tree_sitter.Node] = []
    for node in gen.root.named_children:
        if node.type == "import_declaration":
            for key, spec in _go_specs(gen, node):
                if key not in have:
                    have.add(key)
                    specs.append(gen.text(spec))
        if node.type in ("package_clause", "import_declaration"):
            drops.append(node)
            continue
        names = _go_names(gen, node)
        if renamer.identical(names, node):
            drops.append(node)
        else:
            renamer.clash(names)
    body = gen.render(0, len(gen.data), drops, renamer.edits(_GO_IDS, _go_skip))
    merged = _apply(old.data, _go_import_edits(old, specs)).decode("utf-8", "surrogatepass")
    return _join(merged, body, 1)


def _go_imports(doc: _Doc) -> list[tree_sitter.Node]:
    return [n for n in doc.root.named_children if n.type == "import_declaration"]


def _go_specs(doc: _Doc, decl: tree_sitter.Node) -> list[tuple[tuple[str, str], tree_sitter.Node]]:
    """The import specs of a declaration, keyed by (name or "", path)."""
    specs = [c for c in decl.named_children if c.type == "import_spec"]
    for child in decl.named_children:
        if child.type == "import_spec_list":
            specs += [c for c in child.named_children if c.type == "import_spec"]
    return [
        (
            (
                doc.text(spec.child_by_field_name("name")),
                doc.text(spec.child_by_field_name("path")).strip('"`'),
            ),
            spec,
        )
        for spec in specs
    ]


def _go_names(doc: _Doc, node: tree_sitter.Node) -> list[str]:
    if node.type == "function_declaration":
        return [doc.text(node.child_by_field_name("name"))]
    if node.type in ("type_declaration", "var_declaration", "const_declaration"):
        return [
            doc.text(name)
            for spec in _walk(node)
            if spec.type in ("type_spec", "type_alias", "var_spec", "const_spec")
            for name in spec.children_by_field_name("name")
        ]
    return []


def _go_skip(node: tree_sitter.Node, parent: tree_sitter.Node) -> bool:
    return parent.type == "qualified_type" and _is_field(parent, "name", node)


def _go_import_edits(old: _Doc, specs: Sequence[str]) -> list[_Edit]:
    if not specs:
        return []
    decls = _go_imports(old)
    for decl in decls:
        spec_list = next((c for c in decl.named_children if c.type == "import_spec_list"), None)
        if spec_list is None:
            continue
        listed = [c for c in spec_list.named_children if c.type == "import_spec"]
        indent = (old.indent_of(listed[0]) if listed else None) or "\t"
        close = spec_list.children[-1]
        start = len(old.data[: close.start_byte].rstrip())
        text = "".join(f"\n{indent}{spec}" for spec in specs) + "\n"
        return [(start, close.start_byte, text.encode())]
    if len(decls) == 1:
        specs = [old.text(spec) for _, spec in _go_specs(old, decls[0])] + [*specs]
        block = "import (\n" + "".join(f"\t{spec}\n" for spec in specs) + ")"
        return [(decls[0].start_byte, decls[0].end_byte, block.encode())]
    lines = [f"import {spec}" for spec in specs]
    if decls:
        at = old.row_end(decls[-1].end_point.row)
        return [old.insert_lines(at, lines, blank_before=False, blank_after=False)]
    package = next((n for n in old.root.named_children if n.type == "package_clause"), None)
    at = old.row_end(package.end_point.row) if package is not None else 0
    if len(lines) > 1:
        lines = ["import (", *(f"\t{spec}" for spec in specs), ")"]
    return [old.insert_lines(at, lines, blank_before=True, blank_after=True)]


# --- JavaScript / TypeScript -----------------------------------------------------------------

_JS_IDS = frozenset({"identifier", "type_identifier"})
_JS_PATTERN_NAMES = frozenset({"identifier", "shorthand_property_identifier_pattern"})
_JS_DECLARATIONS = frozenset(
    {
        "function_declaration",
        "generator_function_declaration",
        "class_declaration",
        "abstract_class_declaration",
        "interface_declaration",
        "type_alias_declaration",
        "enum_declaration",
    }
)


def _merge_js(existing: str, generated: str, grammar: tree_sitter.Language) -> str:
    old = _Doc(existing, grammar)
    gen = _Doc(generated, grammar)
    bound: set[str] = set()
    sources: set[str] = set()
    last_import: tree_sitter.Node | None = None
    defined: dict[str, set[str]] = {}
    extendable: dict[tuple[str, bool], tree_sitter.Node] = {}  # (module, type) -> last specifier
    for node in old.root.named_children:
        binding = _js_import(old, node)
        if binding is not None:
            bound.update(local for local, _ in binding[0])
            sources.add(binding[1])
            last_import = node
            specifiers = [n for n in _walk(node) if n.type == "import_specifier"]
            if specifiers:
                extendable[binding[1], _js_type_only(node)] = specifiers[-1]
        _register(defined, _js_names(old, node), old.text(node))
    renamer = _Renamer(gen, defined, _identifiers(gen, _JS_IDS))
    imports: list[str] = []
    drops: list[tree_sitter.Node] = []
    edits: list[_Edit] = []
    for node in gen.root.named_children:
        binding = _js_import(gen, node)
        if binding is not None:
            drops.append(node)
            binds, module = binding
            missing = [spec for local, spec in binds if local not in bound]
            last = extendable.get((module, _js_type_only(node)))
            if not binds and module not in sources:
                imports.append(gen.text(node))
            elif missing and node.type != "import_statement":
                imports.append(_js_require(gen, node, missing))
            elif missing and last is not None and all(s.startswith("{") for s in missing):
                text = "".join(", " + spec[1:-1] for spec in missing)
                edits.append((last.end_byte, last.end_byte, text.encode()))
            elif missing:
                imports.append(_js_statement(gen, node, missing))
            bound.update(local for local, _ in binds)
            sources.add(module)
            continue
        if node.type == "hash_bang_line":
            drops.append(node)
            continue
        names = _js_names(gen, node)
        if renamer.identical(names, node):
            drops.append(node)
        else:
            renamer.clash(names)
    body = gen.render(0, len(gen.data), drops, renamer.edits(_JS_IDS, lambda _n, _p: False))
    if imports:
        if last_import is not None:
            at = old.row_end(last_import.end_point.row)
            edits.append(old.insert_lines(at, imports, blank_before=False, blank_after=False))
        else:
            edits.append(
                old.insert_lines(_js_head(old), imports, blank_before=True, blank_after=True)
            )
    merged = _apply(old.data, edits).decode("utf-8", "surrogatepass")
    return _join(merged, body, 1)


_Binding = tuple[list[tuple[str, str]], str]
"""What an import binds, as (local name, text of its specifier) pairs, and its module."""


def _js_import(doc: _Doc, node: tree_sitter.Node) -> _Binding | None:
    """The bindings of an ``import`` or a top-level ``require`` declaration, else None."""
    if node.type == "import_statement":
        source = node.child_by_field_name("source")
        module = doc.text(source).strip("'\"`")
        clause = next((c for c in node.named_children if c.type == "import_clause"), None)
        if clause is None:
            return [], module
        names: list[tuple[str, str]] = []
        for child in clause.named_children:
            if child.type == "identifier":
                names.append((doc.text(child), doc.text(child)))
            elif child.type == "namespace_import":
                ident = next((c for c in child.named_children if c.type == "identifier"), None)
                names.append((doc.text(ident), doc.text(child)))
            elif child.type == "named_imports":
                for spec in child.named_children:
                    if spec.type == "import_specifier":
                        local = spec.child_by_field_name("alias") or spec.child_by_field_name(
                            "name"
                        )
                        names.append((doc.text(local), "{" + doc.text(spec) + "}"))
        return names, module
    if node.type in ("lexical_declaration", "variable_declaration"):
        declarators = [c for c in node.named_children if c.type == "variable_declarator"]
        modules: list[str] = []
        for declarator in declarators:
            value = declarator.child_by_field_name("value")
            function = value.child_by_field_name("function") if value is not None else None
            if value is None or value.type != "call_expression" or doc.text(function) != "require":
                return None
            args = value.child_by_field_name("arguments")
            modules.append(doc.text(args).strip("()'\"` "))
        if not declarators:
            return None
        names = []
        for declarator in declarators:
            pattern = declarator.child_by_field_name("name")
            if pattern is not None and pattern.type == "object_pattern":
                for prop in pattern.named_children:  # spec: the property, as destructured
                    idents = [n for n in _walk(prop) if n.type in _JS_PATTERN_NAMES]
                    if idents:
                        names.append((doc.text(idents[-1]), doc.text(prop)))
            elif pattern is not None:
                names += [(doc.text(n), "") for n in _walk(pattern) if n.type in _JS_PATTERN_NAMES]
        return names, modules[0]
    return None


def _js_require(doc: _Doc, node: tree_sitter.Node, specs: Sequence[str]) -> str:
    """A ``require`` declaration like ``node`` that destructures only ``specs`` (if it can)."""
    declarators = [c for c in node.named_children if c.type == "variable_declarator"]
    if len(declarators) != 1 or not all(specs):
        return doc.text(node)
    value = doc.text(declarators[0].child_by_field_name("value"))
    semicolon = ";" if doc.text(node).rstrip().endswith(";") else ""
    return f"{doc.text(node.children[0])} {{ {', '.join(specs)} }} = {value}{semicolon}"


def _js_type_only(node: tree_sitter.Node) -> bool:
    """Whether an import is ``import type`` (TypeScript)."""
    return any(child.type == "type" for child in node.children)


def _js_statement(doc: _Doc, node: tree_sitter.Node, specs: Sequence[str]) -> str:
    """An import statement like ``node`` that binds only ``specs``."""
    plain = [spec for spec in specs if not spec.startswith("{")]
    named = [spec[1:-1] for spec in specs if spec.startswith("{")]
    parts = plain + (["{ " + ", ".join(named) + " }"] if named else [])
    kind = "type " if _js_type_only(node) else ""
    source = doc.text(node.child_by_field_name("source"))
    semicolon = ";" if doc.text(node).rstrip().endswith(";") else ""
    return f"import {kind}{', '.join(parts)} from {source}{semicolon}"


def _js_names(doc: _Doc, node: tree_sitter.Node) -> list[str]:
    if node.type == "export_statement":
        declaration = node.child_by_field_name("declaration")
        return _js_names(doc, declaration) if declaration is not None else []
    if node.type in _JS_DECLARATIONS:
        return [doc.text(node.child_by_field_name("name"))]
    if node.type in ("lexical_declaration", "variable_declaration"):
        return [
            doc.text(name)
            for declarator in node.named_children
            if declarator.type == "variable_declarator"
            and (name := declarator.child_by_field_name("name")) is not None
            and name.type == "identifier"
        ]
    return []


def _js_head(doc: _Doc) -> int:
    """Offset past a shebang and leading directives (``"use strict"``)."""
    end = 0
    for node in doc.root.named_children:
        is_directive = (
            node.type == "expression_statement"
            and node.named_child_count == 1
            and node.named_children[0].type == "string"
        )
        if node.type != "hash_bang_line" and not is_directive:
            break
        end = doc.row_end(node.end_point.row)
    return end


# --- Rust ------------------------------------------------------------------------------------

_RUST_IDS = frozenset({"identifier", "type_identifier"})
_RUST_ATTACHED = frozenset({"attribute_item", "line_comment", "block_comment"})


def _merge_rust(existing: str, generated: str, grammar: tree_sitter.Language) -> str:
    old = _Doc(existing, grammar)
    gen = _Doc(generated, grammar)
    container = _rust_tests_mod(gen, gen.root)
    scope = container.child_by_field_name("body") if container is not None else None
    items = _rust_items(scope if scope is not None else gen.root)
    if scope is not None:
        start, end = scope.children[0].end_byte, scope.children[-1].start_byte
    else:
        start, end = 0, len(gen.data)

    target = _rust_tests_mod(old, old.root)
    target_body = target.child_by_field_name("body") if target is not None else None
    have: set[str] = set()
    defined: dict[str, set[str]] = {}
    if target_body is not None:
        for _, item in _rust_items(target_body):
            if item.type == "use_declaration":
                have.add(_squash(old.text(item)))
            _register(defined, _rust_names(old, item), old.text(item))
    renamer = _Renamer(gen, defined, _identifiers(gen, _RUST_IDS))
    uses: list[str] = []
    drops: list[tree_sitter.Node] = []
    for attached, item in items:
        if item.type in ("use_declaration", "inner_attribute_item"):
            drops.append(item)
            key = _squash(gen.text(item))
            if item.type == "use_declaration" and key not in have:
                have.add(key)
                uses.append(gen.text(item))
            continue
        names = _rust_names(gen, item)
        if renamer.identical(names, item):
            drops += [n for n in attached if n.type == "attribute_item"] + [item]
        else:
            renamer.clash(names)
    body = gen.render(start, end, drops, renamer.edits(_RUST_IDS, _rust_skip))

    if target is None or target_body is None:
        taken = {name for _, item in _rust_items(old.root) for name in _rust_names(old, item)}
        name = "tests" if "tests" not in taken else _fresh("tests", taken)
        if "use super::*;" not in {_squash(use) for use in uses}:
            uses.insert(0, "use super::*;")
        inner = "\n".join(uses) + ("\n\n" + body if body else "")
        block = f"#[cfg(test)]\nmod {name} {{\n{_indent(inner, '    ')}\n}}"
        return _join(existing, block, 1)
    edits: list[_Edit] = []
    if body:
        edits.append(_before_close(old, target, target_body, body))
    if uses:
        edits.append(_rust_use_edit(old, target, target_body, uses))
    return _apply(old.data, edits).decode("utf-8", "surrogatepass").rstrip() + "\n"


def _rust_items(
    parent: tree_sitter.Node,
) -> list[tuple[list[tree_sitter.Node], tree_sitter.Node]]:
    """Items under ``parent``, each with the attributes and comments just before it."""
    items: list[tuple[list[tree_sitter.Node], tree_sitter.Node]] = []
    attached: list[tree_sitter.Node] = []
    for child in parent.named_children:
        if child.type in _RUST_ATTACHED:
            attached.append(child)
        else:
            items.append((attached, child))
            attached = []
    return items


def _rust_tests_mod(doc: _Doc, parent: tree_sitter.Node) -> tree_sitter.Node | None:
    """The inline test module under ``parent``: ``#[cfg(test)] mod ... {}``, or ``mod tests {}``."""
    named_tests = None
    for attached, item in _rust_items(parent):
        if item.type != "mod_item" or item.child_by_field_name("body") is None:
            continue
        if any(_squash(doc.text(a)).replace(" ", "") == "#[cfg(test)]" for a in attached):
            return item
        if named_tests is None and doc.text(item.child_by_field_name("name")) == "tests":
            named_tests = item
    return named_tests


def _rust_names(doc: _Doc, item: tree_sitter.Node) -> list[str]:
    if item.type in (
        "function_item",
        "struct_item",
        "enum_item",
        "union_item",
        "const_item",
        "static_item",
        "type_item",
        "trait_item",
        "mod_item",
        "macro_definition",
    ):
        name = item.child_by_field_name("name")
        return [doc.text(name)] if name is not None else []
    return []


def _rust_skip(node: tree_sitter.Node, parent: tree_sitter.Node) -> bool:
    return parent.type in ("scoped_identifier", "scoped_type_identifier", "use_as_clause")


def _rust_use_edit(
    doc: _Doc, module: tree_sitter.Node, body: tree_sitter.Node, uses: Sequence[str]
) -> _Edit:
    """Insert ``uses`` after the module's last ``use``, or at the top of its body."""
    existing = [item for _, item in _rust_items(body) if item.type == "use_declaration"]
    first = next((c for c in body.named_children), None)
    indent = (doc.indent_of(first) if first is not None else None) or (
        (doc.indent_of(module) or "") + "    "
    )
    lines = [indent + use for use in uses]
    if existing:
        at = doc.row_end(existing[-1].end_point.row)
        return doc.insert_lines(at, lines, blank_before=False, blank_after=False)
    brace = body.children[0]
    if doc.data[brace.end_byte : doc.row_end(brace.end_point.row)].strip():
        text = "".join(f"\n{line}" for line in lines) + "\n"
        return brace.end_byte, brace.end_byte, text.encode()
    at = doc.row_end(brace.end_point.row)
    return doc.insert_lines(at, lines, blank_before=False, blank_after=first is not None)


# --- C / C++ (line based) --------------------------------------------------------------------

_INCLUDE = re.compile(r"^\s*#\s*include\s*([<\"][^>\"]+[>\"])")


def _merge_c(existing: str, generated: str) -> str:
    lines = existing.split("\n")
    have = {m.group(1) for line in lines if (m := _INCLUDE.match(line))}
    last = max((i for i, line in enumerate(lines) if _INCLUDE.match(line)), default=-1)
    includes: list[str] = []
    body: list[str] = []
    for line in generated.split("\n"):
        match = _INCLUDE.match(line)
        if match is None:
            body.append(line)
        elif match.group(1) not in have:
            have.add(match.group(1))
            includes.append(line.strip())
    if includes:
        block = includes if last >= 0 else [*includes, ""]
        lines[last + 1 : last + 1] = block
    return _join("\n".join(lines), "\n".join(body).strip("\n"), 1)


_MERGERS: dict[str, Callable[[str, str, tree_sitter.Language], str]] = {
    "python": _merge_python,
    "java": _merge_java,
    "go": _merge_go,
    "javascript": _merge_js,
    "javascriptreact": _merge_js,
    "typescript": _merge_js,
    "typescriptreact": _merge_js,
    "rust": _merge_rust,
}
