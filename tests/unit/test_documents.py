"""Incremental parse trees: random LSP edits give the trees a full parse gives."""

from __future__ import annotations

from pathlib import Path

import pytest
import tree_sitter
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lsp_server.positions import InvalidPosition, offset_at
from lsp_server.workspace.documents import PIECE_CHARS, DocumentTrees
from lsp_server.workspace.languages import language_for_path, ts_language

REPO = Path(__file__).parent.parent / "fixtures" / "repo"
URI = "file:///doc"

SOURCES = [
    pytest.param("python", REPO / "shapes" / "geometry.py", id="python"),
    pytest.param("go", REPO / "go" / "geometry.go", id="go"),
]

# Pieces of inserted text: multi-byte characters (an emoji is a UTF-16 surrogate pair), line
# breaks of every kind, and tokens that open and close syntax.
PIECES = ["é", "€", "😀", "\n", "\r\n", " ", "    ", "\t", "x", "_1", "(", ")", "{", "}", ":"]
PIECES += ["'", '"', "# ", "// ", "def f():\n    pass\n", "func f() {}\n", "return 1\n", "é😀€"]
CR_PIECES = [*PIECES, "\r"]

Edit = tuple[int, int, str]
"""start and end string offsets into the current text, and the new text."""


def lsp_position(text: str, offset: int) -> tuple[int, int]:
    """(line, UTF-16 column) of a string offset; lines break at \\n, \\r\\n and \\r."""
    line, start, i = 0, 0, 0
    while i < offset:
        ch = text[i]
        if ch == "\n" or (ch == "\r" and text[i + 1 : i + 2] != "\n"):
            line, start = line + 1, i + 1
        i += 1
    return line, len(text[start:offset].encode("utf-16-le")) // 2


def not_inside_crlf(text: str, offset: int) -> int:
    """An LSP position cannot point between \\r and \\n: move such an offset before them."""
    if 0 < offset < len(text) and text[offset - 1 : offset + 1] == "\r\n":
        return offset - 1
    return offset


def point(data: bytes, byte: int) -> tuple[int, int]:
    return data.count(b"\n", 0, byte), byte - (data.rfind(b"\n", 0, byte) + 1)


def reference_edit(tree: tree_sitter.Tree, text: str, edit: Edit) -> None:
    """The tree-sitter edit computed the slow, obvious way (the oracle)."""
    start, end, new = edit
    old = text.encode()
    after = (text[:start] + new + text[end:]).encode()
    sb, eb = len(text[:start].encode()), len(text[:end].encode())
    nb = sb + len(new.encode())
    tree.edit(sb, eb, nb, point(old, sb), point(old, eb), point(after, nb))


def shape(root: tree_sitter.Node) -> list[tuple[str, int, int, tuple[int, int], tuple[int, int]]]:
    """Every node's type, byte range and points, in document order."""
    out = []
    stack = [root]
    while stack:
        n = stack.pop()
        start, end = n.start_point, n.end_point
        out.append(
            (n.type, n.start_byte, n.end_byte, (start.row, start.column), (end.row, end.column))
        )
        stack.extend(reversed(n.children))
    return out


def assert_same_tree(got: tree_sitter.Tree | None, want: tree_sitter.Tree) -> None:
    assert got is not None
    assert str(got.root_node) == str(want.root_node)
    assert shape(got.root_node) == shape(want.root_node)


def fresh(language_id: str, text: str) -> tree_sitter.Tree:
    lang = ts_language(language_id)
    assert lang is not None
    return tree_sitter.Parser(lang).parse(text.encode())


def draw_edit(data: st.DataObject, text: str, pieces: list[str]) -> Edit:
    start = not_inside_crlf(text, data.draw(st.integers(0, len(text)), label="start"))
    length = data.draw(st.sampled_from([0, 0, 1, 1, 2, 3, 8, 40]), label="length")
    end = not_inside_crlf(text, min(len(text), start + length))
    if end < start:
        end = start
    if 0 < end < len(text) and text[end - 1 : end + 1] == "\r\n":
        end += 1
    new = "".join(data.draw(st.lists(st.sampled_from(pieces), max_size=3), label="new"))
    return start, end, new


PROPERTY = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


PIECE_SIZES = [pytest.param(PIECE_CHARS, id="pieces-32k"), pytest.param(8, id="pieces-8")]
"""Small pieces: most edits span several, and lines straddle none."""


@pytest.mark.parametrize("piece_chars", PIECE_SIZES)
@pytest.mark.parametrize(("language_id", "path"), SOURCES)
@PROPERTY
@given(data=st.data())
def test_random_edits_match_reference(
    language_id: str, path: Path, piece_chars: int, data: st.DataObject
) -> None:
    """After every edit: same text and bytes, and the tree an independently computed edit gives.

    With syntax errors in the text, tree-sitter's incremental result may legitimately differ
    from a fresh parse (error recovery depends on the old tree), so the oracle here is the same
    old tree edited with edit offsets and points computed the obvious way; error-free results
    must also equal a fresh parse.
    """
    text = path.read_text(encoding="utf-8")
    trees = DocumentTrees(piece_chars=piece_chars)
    trees.open(URI, language_id, text)
    lang = ts_language(language_id)
    assert lang is not None
    parser = tree_sitter.Parser(lang)
    shadow = parser.parse(text.encode())
    for _ in range(data.draw(st.integers(1, 12), label="edits")):
        start, end, new = draw_edit(data, text, CR_PIECES)
        trees.change(URI, lsp_position(text, start), lsp_position(text, end), new)
        reference_edit(shadow, text, (start, end, new))
        text = text[:start] + new + text[end:]
        shadow = parser.parse(text.encode(), shadow)
        assert trees.text(URI) == text
        assert trees.data(URI) == text.encode()
        assert_same_tree(trees.tree(URI), shadow)
        at = data.draw(st.integers(0, len(text)), label="at")
        if not (0 < at < len(text) and text[at - 1 : at + 1] == "\r\n"):
            line, column = lsp_position(text, at)
            assert trees.offset_at(URI, line, column) == (at, len(text[:at].encode()))
    full = fresh(language_id, text)
    if not full.root_node.has_error:
        assert_same_tree(trees.tree(URI), full)


@pytest.mark.parametrize("piece_chars", PIECE_SIZES)
@pytest.mark.parametrize(("language_id", "path"), SOURCES)
@PROPERTY
@given(data=st.data())
def test_edits_then_undo_give_a_fresh_parse(
    language_id: str, path: Path, piece_chars: int, data: st.DataObject
) -> None:
    """Random edits (broken code on the way) then their undo: the tree of a fresh parse."""
    original = text = path.read_text(encoding="utf-8")
    trees = DocumentTrees(piece_chars=piece_chars)
    trees.open(URI, language_id, text)
    undo: list[Edit] = []
    for _ in range(data.draw(st.integers(1, 10), label="edits")):
        start, end, new = draw_edit(data, text, PIECES)
        trees.change(URI, lsp_position(text, start), lsp_position(text, end), new)
        undo.append((start, start + len(new), text[start:end]))
        text = text[:start] + new + text[end:]
        full = fresh(language_id, text)
        if not full.root_node.has_error:
            assert_same_tree(trees.tree(URI), full)
    for start, end, old in reversed(undo):
        trees.change(URI, lsp_position(text, start), lsp_position(text, end), old)
        text = text[:start] + old + text[end:]
    assert text == original
    assert trees.text(URI) == original
    assert_same_tree(trees.tree(URI), fresh(language_id, original))


@pytest.mark.parametrize(
    ("text", "start", "end", "new", "want"),
    [
        pytest.param("a😀b\n", (0, 3), (0, 4), "c", "a😀c\n", id="after-surrogate-pair"),
        pytest.param("é€\nx", (1, 0), (1, 1), "yz", "é€\nyz", id="second-line"),
        pytest.param("ab\r\ncd", (1, 1), (1, 1), "X", "ab\r\ncXd", id="crlf"),
        pytest.param("ab\rcd", (1, 0), (1, 0), "X", "ab\rXcd", id="lone-cr"),
        pytest.param("ab\ncd", (0, 99), (0, 99), "X", "abX\ncd", id="column-past-line-end"),
        pytest.param("ab\ncd", (7, 0), (9, 0), "X", "ab\ncdX", id="line-past-end"),
        pytest.param("ab\ncd", (0, 1), (1, 1), "", "ad", id="delete-across-lines"),
        pytest.param("ab\ncd", (1, 1), (0, 1), "", "ad", id="reversed-range"),
        pytest.param("ab\r", (1, 0), (1, 0), "\n", "ab\r\n", id="join-cr-and-lf"),
    ],
)
@pytest.mark.parametrize("piece_chars", PIECE_SIZES)
def test_change_positions(
    text: str, start: tuple[int, int], end: tuple[int, int], new: str, want: str, piece_chars: int
) -> None:
    trees = DocumentTrees(piece_chars=piece_chars)
    trees.open(URI, "python", text)
    trees.change(URI, start, end, new)
    assert trees.text(URI) == want
    assert trees.data(URI) == want.encode()
    assert_same_tree(trees.tree(URI), fresh("python", want))


def test_full_change_replaces_text_and_tree() -> None:
    trees = DocumentTrees()
    trees.open(URI, "javascript", "let a = 1;\n")
    trees.change(URI, (0, 4), (0, 5), "b")
    trees.full(URI, "function f() { return 'é😀'; }\n")
    assert trees.text(URI) == "function f() { return 'é😀'; }\n"
    assert_same_tree(trees.tree(URI), fresh("javascript", "function f() { return 'é😀'; }\n"))
    trees.change(URI, (0, 9), (0, 10), "g")
    assert_same_tree(trees.tree(URI), fresh("javascript", "function g() { return 'é😀'; }\n"))


def test_trees_handed_out_are_not_changed_by_later_edits() -> None:
    trees = DocumentTrees()
    trees.open(URI, "python", "x = 1\n")
    before = trees.tree(URI)
    assert before is not None
    sexp = str(before.root_node)
    trees.change(URI, (0, 5), (0, 5), "\ndef f():\n    pass")
    assert str(before.root_node) == sexp
    assert before.root_node.end_byte == len(b"x = 1\n")
    assert trees.tree(URI) is not before


def test_close_forgets_the_document() -> None:
    trees = DocumentTrees()
    trees.open(URI, "python", "x = 1\n")
    assert URI in trees
    assert trees.uris() == [URI]
    trees.close(URI)
    assert URI not in trees
    assert trees.tree(URI) is None
    assert trees.text(URI) is None
    assert trees.data(URI) is None
    trees.change(URI, (0, 0), (0, 0), "ignored")  # not open: no error
    trees.full(URI, "ignored")
    trees.close(URI)
    assert trees.text(URI) is None


def test_unsupported_language_keeps_text_without_tree() -> None:
    trees = DocumentTrees()
    trees.open(URI, "plaintext", "héllo\nworld")
    trees.change(URI, (1, 0), (1, 5), "there 😀")
    assert trees.text(URI) == "héllo\nthere 😀"
    assert trees.data(URI) == "héllo\nthere 😀".encode()
    assert trees.tree(URI) is None
    assert trees.language_id(URI) == "plaintext"


def test_nul_bytes_mean_no_tree_until_they_are_gone() -> None:
    trees = DocumentTrees()
    trees.open(URI, "python", "x = 1\x00\n")
    assert trees.tree(URI) is None
    trees.change(URI, (0, 0), (0, 0), "y = 2\n")
    assert trees.tree(URI) is None
    trees.change(URI, (1, 5), (1, 6), "")
    assert trees.text(URI) == "y = 2\nx = 1\n"
    assert_same_tree(trees.tree(URI), fresh("python", "y = 2\nx = 1\n"))
    trees.change(URI, (0, 0), (0, 0), "\x00")
    assert trees.tree(URI) is None


def test_documents_over_the_size_limit_have_no_tree() -> None:
    trees = DocumentTrees(max_bytes=20)
    trees.open(URI, "python", "x = 1\n" * 5)
    assert trees.tree(URI) is None
    trees.change(URI, (2, 0), (5, 0), "")
    assert trees.text(URI) == "x = 1\n" * 2
    assert_same_tree(trees.tree(URI), fresh("python", "x = 1\n" * 2))
    trees.full(URI, "y = 2\n" * 10)
    assert trees.tree(URI) is None


@pytest.mark.parametrize(
    ("path", "want"),
    [
        pytest.param("a/b.py", "python", id="python"),
        pytest.param("a/b.PYI", "python", id="stub-upper-case"),
        pytest.param("x.jsx", "javascriptreact", id="jsx"),
        pytest.param("x.tsx", "typescriptreact", id="tsx"),
        pytest.param("x.h", "c", id="c-header"),
        pytest.param("x.hpp", "cpp", id="cpp-header"),
        pytest.param("x.rs", "rust", id="rust"),
        pytest.param("x.lua", None, id="no-grammar"),
        pytest.param("Makefile", None, id="no-extension"),
    ],
)
def test_language_for_path(path: str, want: str | None) -> None:
    assert language_for_path(path) == want


@pytest.mark.parametrize(
    "language_id",
    [
        "python",
        "javascript",
        "javascriptreact",
        "typescript",
        "typescriptreact",
        "java",
        "c",
        "cpp",
        "go",
        "rust",
    ],
)
def test_every_language_has_a_grammar(language_id: str) -> None:
    lang = ts_language(language_id)
    assert lang is not None
    assert ts_language(language_id) is lang  # cached
    tree = tree_sitter.Parser(lang).parse(b"x")
    assert tree.root_node.type


def test_tsx_is_its_own_grammar() -> None:
    assert ts_language("typescriptreact") != ts_language("typescript")
    tree = fresh("typescriptreact", "const a = <div>{b}</div>;\n")
    assert not tree.root_node.has_error
    assert ts_language("cobol") is None


@pytest.mark.parametrize("piece_chars", [PIECE_CHARS, 4, 1])
@pytest.mark.parametrize(
    "text", ["ab\ncd\r\nef\rgh\n", "é😀x\n\n€\r\n😀😀", "", "\n\n\n", "no break"]
)
def test_positions_are_checked_as_the_text_model_does(text: str, piece_chars: int) -> None:
    """`offset_at` agrees with `positions.offset_at` (the strict reference) everywhere: each
    valid position gives the same offset, each invalid one an InvalidPosition."""
    trees = DocumentTrees(piece_chars=piece_chars)
    trees.open(URI, "python", text)
    for line in range(-1, 7):
        for column in range(-1, 9):
            try:
                want: int | None = offset_at(text, line, column)
            except InvalidPosition:
                want = None
            if want is None:
                with pytest.raises(InvalidPosition):
                    trees.offset_at(URI, line, column)
            else:
                assert trees.offset_at(URI, line, column) == (want, len(text[:want].encode()))


@pytest.mark.parametrize("piece_chars", [PIECE_CHARS, 1000])
def test_a_big_documents_view_is_its_head_and_a_window_around_the_cursor(
    piece_chars: int,
) -> None:
    """The view of a big document from its pieces equals `completion.view.view` of its text,
    and maps the window's lines back to the document's."""
    from lsp_server.completion.view import view

    text = "".join(f"line {i} = {'x' * (i % 50)}\n" for i in range(60_000))
    trees = DocumentTrees(piece_chars=piece_chars)
    trees.open(URI, "python", text)
    for line in (0, 10, 1_000, 30_000, 59_999, 60_000):
        got, byte = trees.view(URI, line, 3 if line < 60_000 else 0)
        offset = offset_at(text, line, 3 if line < 60_000 else 0)
        want = view(text, offset, line)
        assert byte == offset
        near = min(200, offset)
        assert got.text[got.offset - near : got.offset + 200] == text[offset - near : offset + 200]
        assert len(got.text) <= len(want.text) and len(got.text) < 200_000
        assert got.text.startswith(text[:1000])
        if got.line_shift:
            # A line of the window, in the view and in the document.
            view_line = got.text.count("\n", 0, got.offset)
            assert view_line + got.line_shift == line
