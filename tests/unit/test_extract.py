"""Definitions extracted from the multi-language fixture repository."""

from __future__ import annotations

import functools
from pathlib import Path

import pytest
from lsprotocol.types import SymbolKind

from lsp_server.workspace.documents import DocumentTrees
from lsp_server.workspace.extract import extract_symbols
from lsp_server.workspace.languages import language_for_path
from lsp_server.workspace.symbols import Symbol

REPO = Path(__file__).parent.parent / "fixtures" / "repo"

F, M, C = SymbolKind.Function, SymbolKind.Method, SymbolKind.Class
K, S, IF = SymbolKind.Constant, SymbolKind.Struct, SymbolKind.Interface
E, CTOR = SymbolKind.Enum, SymbolKind.Constructor


@functools.cache
def symbols(rel: str) -> list[Symbol]:
    path = REPO / rel
    lang = language_for_path(path)
    assert lang is not None
    return extract_symbols(path.read_bytes(), lang, str(path))


def qualified(s: Symbol) -> str:
    return f"{s.container}.{s.name}" if s.container else s.name


def find(rel: str, name: str) -> Symbol:
    found = [s for s in symbols(rel) if qualified(s) == name]
    assert len(found) == 1, [qualified(s) for s in symbols(rel)]
    return found[0]


def utf16_col(rel: str, line: int, before: str) -> int:
    """The UTF-16 column of the first `before` on a 0-based line of a fixture."""
    text = (REPO / rel).read_text(encoding="utf-8").split("\n")[line]
    return len(text[: text.index(before)].encode("utf-16-le")) // 2


@pytest.mark.parametrize(
    ("rel", "want"),
    [
        pytest.param(
            "shapes/geometry.py",
            [
                (K, "MIN_AREA"),
                (K, "DEFAULT_UNITS"),
                (C, "Shape"),
                (M, "Shape.area"),
                (M, "Shape.perimeter"),
                (C, "Circle"),
                (M, "Circle.area"),
                (M, "Circle.diameter"),
                (C, "Circle.Builder"),
                (M, "Circle.Builder.with_radius"),
                (C, "Rectangle"),
                (M, "Rectangle.__init__"),
                (M, "Rectangle.area"),
                (F, "total_area"),
                (F, "fetch_shapes"),
                (F, "naïve_scale"),
            ],
            id="python",
        ),
        pytest.param("shapes/__init__.py", [], id="python-no-definitions"),
        pytest.param(
            "web/app.js",
            [
                (K, "MAX_ITEMS"),
                (K, "TAX_RATE"),
                (F, "add"),
                (C, "Cart"),
                (CTOR, "Cart.constructor"),
                (M, "Cart.addItem"),
                (M, "Cart.total"),
                (M, "Cart.empty"),
                (F, "describe"),
                (F, "ids"),
                (K, "BANNER"),
                (F, "afterBanner"),
            ],
            id="javascript",
        ),
        pytest.param(
            "web/types.ts",
            [
                (IF, "Entity"),
                (M, "Entity.label"),
                (C, "UserId"),
                (E, "Role"),
                (C, "User"),
                (CTOR, "User.constructor"),
                (M, "User.label"),
                (M, "User.fromJson"),
                (C, "Repository"),
                (M, "Repository.find"),
                (K, "DEFAULT_ROLE"),
                (F, "greet"),
                (F, "shout"),
            ],
            id="typescript",
        ),
        pytest.param(
            "java/com/example/Inventory.java",
            [
                (C, "Inventory"),
                (K, "Inventory.MAX_STOCK"),
                (K, "Inventory.UNKNOWN"),
                (CTOR, "Inventory.Inventory"),
                (M, "Inventory.add"),
                (M, "Inventory.count"),
                (IF, "Inventory.Listener"),
                (M, "Inventory.Listener.onChange"),
                (E, "Inventory.Status"),
            ],
            id="java",
        ),
        pytest.param(
            "c/vec.h",
            [
                (S, "Vec"),
                (S, "point"),
                (E, "color"),
                (F, "vec_new"),
                (F, "vec_push"),
                (F, "vec_free"),
            ],
            id="c-header",
        ),
        pytest.param(
            "c/vec.c",
            [(K, "GROWTH_FACTOR"), (F, "vec_new"), (F, "vec_push"), (F, "vec_free")],
            id="c",
        ),
        pytest.param(
            "cpp/shapes.cpp",
            [
                (SymbolKind.Namespace, "geo"),
                (K, "geo.kPi"),
                (C, "geo.Shape"),
                (M, "geo.Shape.~Shape"),
                (M, "geo.Shape.area"),
                (M, "geo.Shape.name"),
                (S, "geo.Circle"),
                (CTOR, "geo.Circle.Circle"),
                (M, "geo.Circle.area"),  # the declaration in the class
                (M, "geo.Circle.area"),  # the out-of-line definition
                (F, "geo.sum_areas"),
                (F, "main"),
            ],
            id="cpp",
        ),
        pytest.param(
            "go/geometry.go",
            [
                (K, "Epsilon"),
                (K, "Origin"),
                (K, "Unit"),
                (S, "Point"),
                (IF, "Shape"),
                (M, "Shape.Area"),
                (C, "Meters"),
                (M, "Point.Dist"),
                (M, "Point.Add"),
                (F, "NewPoint"),
            ],
            id="go",
        ),
        pytest.param(
            "rust/lib.rs",
            [
                (K, "EPSILON"),
                (K, "GREETING"),
                (S, "Point"),
                (S, "Meters"),
                (E, "Shape"),
                (IF, "Area"),
                (M, "Area.area"),
                (M, "Point.new"),
                (M, "Point.dist"),
                (M, "Shape.area"),
                (M, "Point.fmt"),
                (F, "add"),
                (SymbolKind.Module, "units"),
                (K, "units.CM_PER_M"),
                (F, "units.to_cm"),
            ],
            id="rust",
        ),
    ],
)
def test_definitions_in_document_order(rel: str, want: list[tuple[SymbolKind, str]]) -> None:
    got = symbols(rel)
    assert [(SymbolKind(s.kind), qualified(s)) for s in got] == want
    lang = language_for_path(rel)
    for s in got:
        assert s.path == str(REPO / rel)
        assert s.language == lang
        assert (s.start_line, s.start_col) <= (s.name_line, s.name_col)
        assert (s.name_line, s.name_col) < (s.end_line, s.end_col)


@pytest.mark.parametrize(
    ("rel", "name", "signature", "doc"),
    [
        pytest.param(
            "shapes/geometry.py",
            "MIN_AREA",
            "MIN_AREA = 1e-9",
            "Shapes with an area below this are treated as degenerate.",
            id="py-constant-comment",
        ),
        pytest.param(
            "shapes/geometry.py",
            "Circle",
            "class Circle(Shape):",
            "A circle given by its radius.\n\nThe radius must be positive.",
            id="py-decorated-class-docstring",
        ),
        pytest.param(
            "shapes/geometry.py",
            "Circle.diameter",
            "def diameter(self) -> float:",
            "Twice the radius.",
            id="py-property",
        ),
        pytest.param(
            "shapes/geometry.py",
            "total_area",
            "def total_area(shapes: list[Shape], *, skip_degenerate: bool = True) -> float:",
            "Sum of the areas of `shapes`.",
            id="py-multiline-signature-with-comment",
        ),
        pytest.param(
            "shapes/geometry.py",
            "fetch_shapes",
            "async def fetch_shapes(url: str) -> list[Shape]:",
            "Download shapes from `url`.",
            id="py-async",
        ),
        pytest.param(
            "shapes/geometry.py",
            "naïve_scale",
            "def naïve_scale(shape: Shape, factor: float) -> Shape:",
            "Scale a shape (the café way).",
            id="py-raw-docstring",
        ),
        pytest.param(
            "shapes/geometry.py",
            "Shape.perimeter",
            "def perimeter(self) -> float:",
            "",
            id="py-no-doc",
        ),
        pytest.param(
            "web/app.js",
            "MAX_ITEMS",
            "const MAX_ITEMS = 50",
            "Maximum number of items in a cart.",
            id="js-exported-const",
        ),
        pytest.param(
            "web/app.js",
            "add",
            "function add(a, b)",
            "Adds two numbers.\nUsed everywhere.",
            id="js-line-comments",
        ),
        pytest.param("web/app.js", "Cart", "class Cart", "A shopping cart.", id="js-jsdoc-class"),
        pytest.param(
            "web/app.js",
            "Cart.addItem",
            "addItem(item)",
            "Adds an item to the cart.",
            id="js-method",
        ),
        pytest.param(
            "web/app.js",
            "describe",
            "const describe = (cart) => `${cart.owner}: ${formatPrice(cart.total)}`",
            "",
            id="js-arrow-function",
        ),
        pytest.param(
            "web/types.ts",
            "Entity.label",
            "label(): string",
            "A human readable label.",
            id="ts-interface-method",
        ),
        pytest.param(
            "web/types.ts",
            "Repository",
            "abstract class Repository<T extends Entity>",
            "",
            id="ts-abstract-class",
        ),
        pytest.param(
            "web/types.ts",
            "Repository.find",
            "abstract find(id: string): Promise<T | undefined>",
            "",
            id="ts-abstract-method",
        ),
        pytest.param(
            "web/types.ts",
            "User",
            "class User implements Entity",
            "A registered user.",
            id="ts-class",
        ),
        pytest.param(
            "java/com/example/Inventory.java",
            "Inventory.add",
            "public void add(String product, int count)",
            "Adds stock for a product.\n\n"
            "@param product the product name\n@param count how many to add",
            id="java-javadoc",
        ),
        pytest.param(
            "java/com/example/Inventory.java",
            "Inventory.count",
            "@Deprecated public int count(String product)",
            "How many of a product are in stock.",
            id="java-annotated-method",
        ),
        pytest.param(
            "java/com/example/Inventory.java",
            "Inventory.MAX_STOCK",
            "public static final int MAX_STOCK = 1000",
            "The most of one product we keep.",
            id="java-constant",
        ),
        pytest.param(
            "c/vec.h",
            "Vec",
            "typedef struct { ... } Vec",
            "A growable array of ints.",
            id="c-typedef-struct",
        ),
        pytest.param(
            "c/vec.h",
            "vec_push",
            "int vec_push(Vec *v, int value)",
            "Appends a value; returns 0 on success.",
            id="c-prototype",
        ),
        pytest.param(
            "c/vec.c",
            "vec_new",
            "Vec *vec_new(void)",
            "Creates an empty vector.",
            id="c-multiline-block-comment",
        ),
        pytest.param(
            "cpp/shapes.cpp",
            "geo.sum_areas",
            "template <typename T> T sum_areas(const std::vector<T *> &shapes)",
            "",
            id="cpp-template",
        ),
        pytest.param(
            "cpp/shapes.cpp",
            "geo.Shape.area",
            "virtual double area() const = 0",
            "The area of the shape.",
            id="cpp-pure-virtual",
        ),
        pytest.param(
            "cpp/shapes.cpp",
            "geo.kPi",
            "constexpr double kPi = 3.14159265358979",
            "",
            id="cpp-constexpr",
        ),
        pytest.param(
            "go/geometry.go",
            "Point.Dist",
            "func (p *Point) Dist(q Point) float64",
            "Dist returns the distance between two points.",
            id="go-pointer-receiver",
        ),
        pytest.param(
            "go/geometry.go",
            "Point",
            "type Point struct",
            "Point is a location in the plane.",
            id="go-struct",
        ),
        pytest.param(
            "go/geometry.go",
            "Origin",
            "const Origin = 0",
            "Origin is where axes cross.",
            id="go-const-block",
        ),
        pytest.param(
            "rust/lib.rs",
            "Point",
            "pub struct Point",
            "A point in the plane.",
            id="rust-doc-above-attribute",
        ),
        pytest.param(
            "rust/lib.rs",
            "Meters",
            "pub struct Meters(pub f64)",
            "Distance units.",
            id="rust-tuple-struct",
        ),
        pytest.param(
            "rust/lib.rs",
            "Point.new",
            "pub fn new(x: f64, y: f64) -> Self",
            "Makes a point.",
            id="rust-impl-method",
        ),
        pytest.param(
            "rust/lib.rs",
            "Area.area",
            "fn area(&self) -> f64",
            "The area in square units.",
            id="rust-trait-method",
        ),
        pytest.param(
            "rust/lib.rs",
            "EPSILON",
            "pub const EPSILON: f64 = 1e-9",
            "The tolerance of comparisons.",
            id="rust-const",
        ),
    ],
)
def test_signature_and_doc(rel: str, name: str, signature: str, doc: str) -> None:
    s = find(rel, name)
    assert s.signature == signature
    assert s.doc == doc


def test_python_positions_and_bytes() -> None:
    rel = "shapes/geometry.py"
    source = (REPO / rel).read_bytes()
    lines = source.decode().split("\n")
    decorator = lines.index("@dataclass(frozen=True)")
    circle = find(rel, "Circle")
    # The range includes the decorator; the name is on the `class` line.
    assert (circle.start_line, circle.start_col) == (decorator, 0)
    assert (circle.name_line, circle.name_col) == (decorator + 1, len("class "))
    assert (circle.end_line, circle.end_col) == (decorator + 22, len("            return self"))
    assert lines[circle.end_line] == "            return self"
    assert source[circle.start_byte : circle.end_byte].startswith(b"@dataclass(frozen=True)\nclass")
    assert source[circle.start_byte : circle.end_byte].endswith(b"return self")
    method = find(rel, "Circle.Builder.with_radius")
    assert lines[method.name_line].startswith("        def with_radius(")
    assert (method.start_col, method.name_col) == (8, 12)


@pytest.mark.parametrize(
    ("rel", "name", "marker"),
    [
        pytest.param("web/app.js", "afterBanner", "afterBanner", id="after-emoji-and-accent"),
        pytest.param("shapes/geometry.py", "naïve_scale", "naïve_scale", id="non-ascii-name"),
    ],
)
def test_columns_are_utf16(rel: str, name: str, marker: str) -> None:
    s = find(rel, name)
    assert s.name_col == utf16_col(rel, s.name_line, marker)
    line = (REPO / rel).read_text(encoding="utf-8").split("\n")[s.end_line]
    assert s.end_col == len(line.encode("utf-16-le")) // 2


def test_utf16_column_of_emoji_line() -> None:
    banner = find("web/app.js", "afterBanner")
    # `const BANNER = "🛒 café"; export function ` : 🛒 is two UTF-16 units, é one.
    assert banner.start_col == 26
    assert banner.name_col == 42


def test_rust_end_column_after_multibyte_char() -> None:
    greeting = find("rust/lib.rs", "GREETING")
    assert (greeting.end_line, greeting.end_col) == (6, 32)  # 33 bytes, 32 UTF-16 units


def test_nested_and_local_definitions_are_skipped() -> None:
    names = {s.name for s in symbols("shapes/geometry.py")}
    assert "keep" not in names  # a function inside a function
    assert "SIDES" not in names  # a class attribute, not a top-level constant
    assert "_registry" not in names  # not an UPPER_CASE name
    assert "counter" not in {s.name for s in symbols("web/app.js")}  # `let`, not `const`
    assert "stock" not in {s.name for s in symbols("java/com/example/Inventory.java")}


def test_tree_from_document_trees_gives_the_same_symbols() -> None:
    path = REPO / "rust" / "lib.rs"
    text = path.read_text(encoding="utf-8")
    trees = DocumentTrees()
    trees.open("file:///lib.rs", "rust", text)
    tree = trees.tree("file:///lib.rs")
    assert tree is not None
    assert extract_symbols(text.encode(), "rust", str(path), tree) == symbols("rust/lib.rs")


@pytest.mark.parametrize(
    ("source", "language_id", "want"),
    [
        pytest.param(
            b"export function App() {\n  return <div className='a'>hi</div>;\n}\n",
            "javascriptreact",
            [(F, "App")],
            id="jsx",
        ),
        pytest.param(
            b"export const App = (): JSX.Element => {\n  return <div>hi</div>;\n};\n"
            b"interface Props { title: string }\n",
            "typescriptreact",
            [(F, "App"), (IF, "Props")],
            id="tsx",
        ),
        pytest.param(
            b"namespace Geo {\n  export function area(): number { return 1; }\n}\n",
            "typescript",
            [(SymbolKind.Namespace, "Geo"), (F, "Geo.area")],
            id="ts-namespace",
        ),
        pytest.param(
            b"AB = 1\nT = TypeVar('T')\nif True:\n    def f():\n        class Local:\n"
            b"            pass\n",
            "python",
            [(K, "AB"), (F, "f")],
            id="python-conditional-def",
        ),
        pytest.param(
            b"interface I { int X = 1, Y = 2; }\nclass K { static final int A = 1, B = 2; }\n",
            "java",
            [(IF, "I"), (K, "I.X"), (K, "I.Y"), (C, "K"), (K, "K.A"), (K, "K.B")],
            id="java-shared-declarations",
        ),
        pytest.param(
            b"package p\n\nconst (\n\tA, B = 1, 2\n)\n\nfunc (l *List[T]) Push(v T) {}\n",
            "go",
            [(K, "A"), (K, "B"), (M, "List.Push")],
            id="go-several-names-generic-receiver",
        ),
        pytest.param(
            b"package p\n\nvar DefaultSocket = NewSocket()\n\nvar (\n\tretries = 3\n"
            b"\ta, b = 1, 2\n)\n\nfunc f() {\n\tvar local = 1\n\t_ = local\n}\n",
            "go",
            [
                (SymbolKind.Variable, "DefaultSocket"),
                (SymbolKind.Variable, "retries"),
                (SymbolKind.Variable, "a"),
                (SymbolKind.Variable, "b"),
                (F, "f"),
            ],
            id="go-package-variables",
        ),
        pytest.param(
            b"impl<T> Stack<T> {\n    fn push(&mut self, v: T) {}\n}\n"
            b"fn outer() {\n    fn inner() {}\n}\n",
            "rust",
            [(M, "Stack.push"), (F, "outer")],
            id="rust-generic-impl-and-inner-fn",
        ),
        pytest.param(
            b'extern "C" {\nint f(void);\n}\nint *g(int a), h(void);\nint (*fp)(int);\n',
            "cpp",
            [(F, "f"), (F, "g"), (F, "h")],
            id="cpp-linkage-and-pointers",
        ),
    ],
)
def test_snippets(source: bytes, language_id: str, want: list[tuple[SymbolKind, str]]) -> None:
    got = extract_symbols(source, language_id, "/snippet")
    assert [(SymbolKind(s.kind), qualified(s)) for s in got] == want


@pytest.mark.parametrize(
    ("body", "doc"),
    [
        pytest.param("'''One line.'''", "One line.", id="single-quoted-triple"),
        pytest.param("'One line.'", "One line.", id="single-quoted"),
        pytest.param('r"""Raw \\d+."""', "Raw \\d+.", id="raw"),
        pytest.param(
            '"""\n    Indented.\n\n      More.\n    """', "Indented.\n\n  More.", id="cleandoc"
        ),
        pytest.param('"""Tab\n\tindented."""', "Tab\nindented.", id="tabs"),
        pytest.param("x = 1", "", id="no-docstring"),
        pytest.param('("a" "b")', "", id="not-a-plain-string"),
    ],
)
def test_python_docstrings(body: str, doc: str) -> None:
    source = f"def f():\n    {body}\n    return 1\n".encode()
    (got,) = extract_symbols(source, "python", "/d.py")
    assert got.doc == doc


def test_lone_carriage_returns_count_as_line_breaks() -> None:
    got = extract_symbols(b"x = 1\rdef f():\r    pass\r", "python", "/cr.py")
    assert [(s.name, s.start_line, s.name_line, s.name_col) for s in got] == [("f", 1, 1, 4)]


def test_crlf_files() -> None:
    source = (REPO / "go" / "geometry.go").read_bytes().replace(b"\n", b"\r\n")
    got = extract_symbols(source, "go", "/g.go")
    assert [(s.name, s.name_line, s.name_col) for s in got] == [
        (s.name, s.name_line, s.name_col) for s in symbols("go/geometry.go")
    ]
    assert find("go/geometry.go", "Epsilon").doc == got[0].doc


@pytest.mark.parametrize(
    "language_id",
    ["python", "javascript", "typescript", "typescriptreact", "java", "c", "cpp", "go", "rust"],
)
def test_broken_and_empty_sources_do_not_raise(language_id: str) -> None:
    assert extract_symbols(b"", language_id, "/empty") == []
    broken = b'def class fn func ( { [ <  \xff\xfe } struct impl :: -> ;;; \x00 /* "\n'
    assert isinstance(extract_symbols(broken, language_id, "/broken"), list)


def test_unsupported_language_gives_nothing() -> None:
    assert extract_symbols(b"local x = 1", "lua", "/a.lua") == []


def test_doc_comment_must_touch_the_definition() -> None:
    source = b"int a; // about a\nint f(void);\n\n// detached\n\nint g(void);\n// h\nint h(void);\n"
    got = {s.name: s.doc for s in extract_symbols(source, "c", "/x.h")}
    assert got == {"f": "", "g": "", "h": "h"}
