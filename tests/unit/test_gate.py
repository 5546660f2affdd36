"""The completion gate: none / single / multi line before any model call."""

from __future__ import annotations

import time

import pytest
import tree_sitter
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lsp_server.completion.gate import Decision, Mode, decide
from lsp_server.workspace.languages import ts_language

CURSOR = "‸"
NONE, SINGLE, MULTI = Mode.NONE, Mode.SINGLE, Mode.MULTI


def split(text: str) -> tuple[str, str]:
    i = text.index(CURSOR)
    assert CURSOR not in text[i + 1 :], "one cursor per case"
    return text[:i], text[i + 1 :]


def full_tree(lang: str, prefix: str, suffix: str) -> tuple[tree_sitter.Tree, int]:
    """The tree of the whole document, as the server keeps it, and the cursor's byte offset."""
    language = ts_language(lang)
    assert language is not None
    data = (prefix + suffix).encode("utf-8", "surrogatepass")
    return tree_sitter.Parser(language).parse(data), len(prefix.encode("utf-8", "surrogatepass"))


def run(lang: str, text: str, *, invoked: bool, with_tree: bool) -> Decision:
    prefix, suffix = split(text)
    if with_tree:
        tree, offset = full_tree(lang, prefix, suffix)
        return decide(prefix, suffix, lang, invoked=invoked, tree=tree, offset_bytes=offset)
    return decide(prefix, suffix, lang, invoked=invoked)


# (language, text with the cursor, expected mode, expected reason)
AUTO: list[tuple[str, str, Mode, str]] = [
    # --- Python ------------------------------------------------------------------------
    ("python", "x = foo‸bar\n", NONE, "mid-identifier"),
    ("python", "x = foo‸\n", SINGLE, "after code"),
    ("python", "x = foo‸", SINGLE, "after code"),
    ("python", "print(‸)\n", SINGLE, "after code"),
    ("python", "print([f(‸)]);\n", SINGLE, "after code"),
    ("python", "print(foo(‸)))))\n", NONE, "code right of cursor"),
    ("python", "foo(‸a, b)\n", NONE, "code right of cursor"),
    ("python", "    ‸return x\n", NONE, "code right of cursor"),
    ("python", "x = (‸)  # a trailing comment is not code\n", SINGLE, "after code"),
    ("python", 'x = "abc ‸"\n', NONE, "inside string"),
    ("python", "x = 'abc‸'\n", NONE, "inside string"),
    ("python", 'x = "abc"‸\n', SINGLE, "after code"),
    ("python", 'x = "abc" ‸\n', SINGLE, "after code"),
    ("python", 'x = "abc‸\ny = 2\n', NONE, "inside string"),
    ("python", 'x = ("abc" "de ‸")\n', NONE, "inside string"),
    ("python", 'x = ("abc" ‸"de")\n', NONE, "code right of cursor"),
    ("python", "# a comment‸\nx = 1\n", NONE, "inside comment"),
    ("python", "x = 1  # a comment ‸\n", NONE, "inside comment"),
    ("python", "x = 1  ‸# a comment\n", SINGLE, "after code"),
    ("python", 'def f():\n    """Doc‸"""\n', NONE, "inside string"),
    ("python", 'def f():\n    """Doc.\n\n    ‸\n    """\n', NONE, "inside string"),
    ("python", 'def f():\n    """Doc ‸\n\nx = 1\n', NONE, "inside string"),
    ("python", 'def f():\n    """Doc."""\n    ‸\n', MULTI, "end of file"),
    ("python", 'x = f"{va‸}"\n', SINGLE, "after code"),
    ("python", 'x = f"a {b} ‸"\n', NONE, "inside string"),
    ("python", "x = f\"{d['k ‸']}\"\n", NONE, "inside string"),
    ("python", 'x = f"{a}"‸\n', SINGLE, "after code"),
    ("python", "def f(x):\n    ‸\n", MULTI, "after block opener"),
    ("python", "def f(x):  # why\n    ‸\n\ny = 1\n", MULTI, "after block opener"),
    ("python", "def f(x):\n    # why\n    ‸\n    return 1\n", MULTI, "after block opener"),
    ("python", "class A:\n    ‸\n\nx = 1\n", MULTI, "after block opener"),
    ("python", "if x:‸\n", MULTI, "after block opener"),
    ("python", "if x:  # c‸\n", NONE, "inside comment"),
    ("python", "x = d[1:‸]\n", SINGLE, "after code"),
    ("python", "if x:\n    a = 1\n    ‸\nb = 2\n", MULTI, "end of block"),
    ("python", "if x:\n    a = 1\n    ‸\n    b = 2\n", SINGLE, "blank line"),
    ("python", "a = 1\n‸\nb = 2\n", SINGLE, "blank line"),
    ("python", "a = 1\n‸", MULTI, "end of file"),
    # --- JavaScript / TypeScript -------------------------------------------------------
    ("javascript", "const x = foo‸Bar;\n", NONE, "mid-identifier"),
    ("javascript", "const x = $‸el;\n", NONE, "mid-identifier"),
    ("javascript", "console.log(‸);\n", SINGLE, "after code"),
    ("javascript", "foo(‸a, b);\n", NONE, "code right of cursor"),
    ("javascript", "const s = 'ab ‸';\n", NONE, "inside string"),
    ("javascript", 'const s = "ab";‸\n', SINGLE, "after code"),
    ("javascript", 'const s = "http://ab‸\nfoo();\n', NONE, "inside string"),
    ("javascript", "const s = `x ${a‸}`;\n", SINGLE, "after code"),
    ("javascript", "const s = `x ${a} ‸`;\n", NONE, "inside string"),
    ("javascript", "const s = `\nline ‸\n`;\n", NONE, "inside string"),
    ("javascript", "const s = `x`‸\n", SINGLE, "after code"),
    ("javascript", 'const r = /"/;‸\n', SINGLE, "after code"),
    ("javascript", "let a = 1; // note ‸\n", NONE, "inside comment"),
    ("javascript", "/**\n * Does ‸\n */\nfunction f() {}\n", NONE, "inside comment"),
    ("javascript", "/* done */ ‸\n", SINGLE, "after code"),
    ("javascript", "function f() {‸}\n", MULTI, "after block opener"),
    ("javascript", "function f() {\n  ‸\n}\n", MULTI, "after block opener"),
    ("javascript", "const f = () => {\n  ‸\n};\n", MULTI, "after block opener"),
    ("javascript", "function f() {\n  a();\n  ‸\n}\n", MULTI, "end of block"),
    ("javascript", "function f() {\n  a();\n  ‸\n  b();\n}\n", SINGLE, "blank line"),
    ("javascript", "function f() {\n  a();\n‸\n}\n", MULTI, "empty block"),
    ("javascript", "switch (x) {\n  case 1:\n    ‸\n}\n", MULTI, "after block opener"),
    ("typescript", "interface A {\n  ‸\n}\n", MULTI, "after block opener"),
    ("typescript", "const s: string = `a ${b} ‸`;\n", NONE, "inside string"),
    ("typescript", "let x: Map<string, ‸>;\n", SINGLE, "after code"),
    ("typescript", "let a = 1; /* x */ // y ‸\n", NONE, "inside comment"),
    ("typescriptreact", "const s = 'ab ‸';\n", NONE, "inside string"),
    ("javascriptreact", "function f() {\n  ‸\n}\n", MULTI, "after block opener"),
    # --- Java --------------------------------------------------------------------------
    ("java", "class A { int fooBar = foo‸Bar; }\n", NONE, "mid-identifier"),
    ("java", 'class A { String s = "abc ‸"; }\n', NONE, "inside string"),
    ("java", 'class A { String s = "abc ‸"; int x; }\n', NONE, "code right of cursor"),
    ("java", 'class A {\n  String s = "abc ‸";\n}\n', NONE, "inside string"),
    ("java", "class A {\n  char c = 'a‸';\n}\n", NONE, "inside string"),
    ("java", 'class A {\n  String s = """\n    text ‸\n    """;\n}\n', NONE, "inside string"),
    ("java", "class A {\n  int x = 1; // note ‸\n}\n", NONE, "inside comment"),
    ("java", "class A {\n  /* a\n   * b ‸\n   */\n}\n", NONE, "inside comment"),
    ("java", "class A {\n  /** Doc. */‸\n}\n", SINGLE, "after code"),
    ("java", "class A {\n  void f() {\n    ‸\n  }\n}\n", MULTI, "after block opener"),
    ("java", "class A {\n  void f() {\n    g();\n    ‸\n  }\n}\n", MULTI, "end of block"),
    ("java", "class A {\n  void f() {\n    int y = x‸;\n  }\n}\n", SINGLE, "after code"),
    ("java", "class A {\n  void f() {\n    g(‸a);\n  }\n}\n", NONE, "code right of cursor"),
    (
        "java",
        "class A {\n  void f(int x) {\n    switch (x) {\n      case 1:\n        ‸\n    }\n  }\n}\n",
        MULTI,
        "after block opener",
    ),
    # --- C++ ---------------------------------------------------------------------------
    ("cpp", "int main() {\n  ‸\n}\n", MULTI, "after block opener"),
    ("cpp", "int main() {\n  int ab = a‸b;\n}\n", NONE, "mid-identifier"),
    ("cpp", 'int main() {\n  auto s = "ab ‸";\n}\n', NONE, "inside string"),
    ("cpp", 'int main() {\n  auto s = R"(raw ‸)";\n}\n', NONE, "inside string"),
    ("cpp", "int main() {\n  char c = 'a‸';\n}\n", NONE, "inside string"),
    ("cpp", '#include "foo‸"\n', NONE, "inside string"),
    ("cpp", "#include <vec‸>\n", NONE, "inside string"),
    ("cpp", "int x = 1'000‸;\n", SINGLE, "after code"),
    ("cpp", 'auto s = "ab";‸\n', SINGLE, "after code"),
    ("cpp", "int x; // note ‸\n", NONE, "inside comment"),
    ("cpp", "/* block\n   ‸\n */\nint x;\n", NONE, "inside comment"),
    ("cpp", "std::vector<int‸> v;\n", NONE, "code right of cursor"),
    ("cpp", "std::vector<‸>\n", SINGLE, "after code"),
    ("cpp", "void f() {\n  g();\n  ‸\n}\n", MULTI, "end of block"),
    ("cpp", "namespace n {\n‸\n}\n", MULTI, "after block opener"),
    # --- Go ----------------------------------------------------------------------------
    ("go", "package m\n\nfunc f() {\n\t‸\n}\n", MULTI, "after block opener"),
    ("go", "package m\n\nfunc f() {\n\tg()\n\t‸\n}\n", MULTI, "end of block"),
    ("go", "package m\n\nfunc f() {\n\tfmt.Println(‸)\n}\n", SINGLE, "after code"),
    ("go", "package m\n\nfunc f() {\n\tfmt.Println(‸x)\n}\n", NONE, "code right of cursor"),
    ("go", "package m\n\nvar s = `raw ‸`\n", NONE, "inside string"),
    ("go", "package m\n\nvar s = `raw\nline ‸\n`\n", NONE, "inside string"),
    ("go", 'package m\n\nvar s = "ab ‸"\n', NONE, "inside string"),
    ("go", "package m\n\nvar r = 'x‸'\n", NONE, "inside string"),
    ("go", "package m\n\nvar x = 1 // note ‸\n", NONE, "inside comment"),
    ("go", "package m\n\nvar s = `raw`‸\n", SINGLE, "after code"),
    (
        "go",
        "package m\n\nfunc f(x int) {\n\tswitch x {\n\tcase 1:\n\t\t‸\n\t}\n}\n",
        MULTI,
        "after block opener",
    ),
    # --- Rust and C --------------------------------------------------------------------
    ("rust", "fn f<'a>(x: &'a str) -> ‸\n", SINGLE, "after code"),
    ("rust", "fn f() {\n    let c = 'x‸';\n}\n", NONE, "inside string"),
    ("rust", 'fn f() {\n    let s = r"raw ‸";\n}\n', NONE, "inside string"),
    ("rust", "fn f() {\n    ‸\n}\n", MULTI, "after block opener"),
    ("rust", "/// Doc ‸\nfn f() {}\n", NONE, "inside comment"),
    ("c", 'int main(void) {\n  puts("hi ‸");\n}\n', NONE, "inside string"),
    ("c", "int main(void) {\n  ‸\n}\n", MULTI, "after block opener"),
    # --- no grammar: text rules --------------------------------------------------------
    ("kotlin", 'val s = "ab ‸"\n', NONE, "inside string"),
    ("kotlin", "val x = 1 // note ‸\n", NONE, "inside comment"),
    ("kotlin", "fun f() {\n    ‸\n}\n", MULTI, "after block opener"),
    ("kotlin", "val x = foo‸Bar\n", NONE, "mid-identifier"),
    ("ruby", "x = 1 # note ‸\n", NONE, "inside comment"),
    ("plaintext", "it's ‸\n", SINGLE, "after code"),
    ("plaintext", "naïve‸", SINGLE, "after code"),
    # --- edge cases --------------------------------------------------------------------
    ("python", "‸", NONE, "empty document"),
    ("python", "  \n\t‸\n\n", NONE, "empty document"),
    ("python", "‸import os\n", NONE, "code right of cursor"),
    ("python", "‸\nimport os\n", SINGLE, "blank line"),
    ("python", "import os\n‸", MULTI, "end of file"),
    ("python", "x = 1\n# a comment at the end‸", NONE, "inside comment"),
    ("python", 'x = "abc"‸', SINGLE, "after code"),
    ("python", 'x = "abc‸', NONE, "inside string"),
    ("python", 's = """a\nit\'s"""; x = ‸\n', SINGLE, "after code"),
    ("javascript", "const s = `a\nit's`; f(‸);\n", SINGLE, "after code"),
    ("javascript", "let x = 1;\n// a comment at the end‸", NONE, "inside comment"),
    ("python", "naïve‸", SINGLE, "after code"),
    ("python", "naïve‸\n", SINGLE, "after code"),
    ("python", "naï‸ve = 1\n", NONE, "mid-identifier"),
    ("python", "nai\u0308‸ve = 1\n", NONE, "mid-identifier"),
    ("python", "x = é‸\n", SINGLE, "after code"),
    ("python", 's = "naïve 😀 ‸"\n', NONE, "inside string"),
    ("python", 's = "naïve 😀"  ‸\n', SINGLE, "after code"),
    ("python", 's = "😀"\nt = "ab ‸"\n', NONE, "inside string"),
    ("python", 's = "😀"\n# é ‸\n', NONE, "inside comment"),
    ("python", "if x:\n\ta = 1\n\t‸\nb = 2\n", MULTI, "end of block"),
    ("python", "if x:\n\ta = 1\n\t‸\n\tb = 2\n", SINGLE, "blank line"),
    # CRLF
    ("python", "def f():\r\n    ‸\r\n", MULTI, "after block opener"),
    ("python", 'x = "abc ‸"\r\ny = 1\r\n', NONE, "inside string"),
    ("python", "x = 1  # c ‸\r\ny = 1\r\n", NONE, "inside comment"),
    ("python", "if x:\r\n    a = 1\r\n    ‸\r\nb = 2\r\n", MULTI, "end of block"),
    ("python", "if x:\r\n    a = 1\r\n    ‸\r\n    b = 2\r\n", SINGLE, "blank line"),
    ("python", "x = foo‸\r\ny = 2\r\n", SINGLE, "after code"),
    ("python", "x = foo(‸)\r\n", SINGLE, "after code"),
    ("python", 'def f():\r\n    """Doc.\r\n\r\n    ‸\r\n    """\r\n', NONE, "inside string"),
    ("javascript", "function f() {\r\n  ‸\r\n}\r\n", MULTI, "after block opener"),
    ("javascript", "function f() {\r\n  a();\r\n‸\r\n}\r\n", MULTI, "empty block"),
    ("go", "package m\r\n\r\nvar x = 1 // note ‸\r\n", NONE, "inside comment"),
    # lone CR line breaks
    ("python", "def f():\r    ‸\r", MULTI, "after block opener"),
]


def _grammar(lang: str) -> bool:
    return ts_language(lang) is not None


AUTO_PARAMS = [
    pytest.param(
        lang, text, mode, reason, with_tree, id=f"{i}-{lang}-{'tree' if with_tree else 'text'}"
    )
    for i, (lang, text, mode, reason) in enumerate(AUTO)
    for with_tree in ((False, True) if _grammar(lang) else (False,))
]


@pytest.mark.parametrize(("lang", "text", "mode", "reason", "with_tree"), AUTO_PARAMS)
def test_automatic(lang: str, text: str, mode: Mode, reason: str, with_tree: bool) -> None:
    assert run(lang, text, invoked=False, with_tree=with_tree) == Decision(mode, reason)


INVOKED: list[tuple[str, str, Mode, str]] = [
    ("python", "x = foo‸bar\n", SINGLE, "code right of cursor"),
    ("python", 'x = "abc‸"\n', SINGLE, "code right of cursor"),
    ("python", "x = 1  # note‸\n", SINGLE, "after code"),
    ("python", "foo(‸a, b)\n", SINGLE, "code right of cursor"),
    ("python", "x = ‸\n", SINGLE, "after code"),
    ("python", "a = 1\n‸\nb = 2\n", MULTI, "blank line"),
    ("python", "if x:\n    a = 1\n    ‸\n    b = 2\n", MULTI, "blank line"),
    ("python", "def f():\n    ‸\n", MULTI, "after block opener"),
    ("python", "def f():‸\n", MULTI, "after block opener"),
    ("python", 'def f():\n    """Doc.\n\n    ‸\n    """\n', MULTI, "blank line"),
    ("python", "# why:‸\n", SINGLE, "after code"),
    ("python", "‸", MULTI, "empty document"),
    ("python", "\n\n  ‸\n", MULTI, "empty document"),
    ("python", "‸import os\n", SINGLE, "code right of cursor"),
    ("python", "‸\nimport os\n", MULTI, "blank line"),
    ("javascript", "function f() {‸}\n", MULTI, "after block opener"),
    ("javascript", "const s = `${‸}`;\n", SINGLE, "code right of cursor"),
    ("javascript", "const s = '{‸';\n", SINGLE, "code right of cursor"),
    ("javascript", "foo(‸);\n", SINGLE, "code right of cursor"),
    ("javascript", "// comment ‸\n", SINGLE, "after code"),
    ("java", "class A {\n  void f() {\n    ‸\n  }\n}\n", MULTI, "after block opener"),
    ("java", 'class A {\n  String s = "ab ‸";\n}\n', SINGLE, "code right of cursor"),
    ("cpp", "int main() {\n  f(‸x);\n}\n", SINGLE, "code right of cursor"),
    ("cpp", "int main() {\n  f();\n  ‸\n  g();\n}\n", MULTI, "blank line"),
    ("go", "package m\n\nfunc f() {\n\tg()‸\n}\n", SINGLE, "after code"),
    ("go", "package m\n\nfunc f() {\n\t‸\n}\n", MULTI, "after block opener"),
    ("python", "if x:\r\n    ‸\r\n", MULTI, "after block opener"),
    ("python", "x = foo‸bar\r\n", SINGLE, "code right of cursor"),
    ("plaintext", "‸", MULTI, "empty document"),
]

INVOKED_PARAMS = [
    pytest.param(
        lang, text, mode, reason, with_tree, id=f"{i}-{lang}-{'tree' if with_tree else 'text'}"
    )
    for i, (lang, text, mode, reason) in enumerate(INVOKED)
    for with_tree in ((False, True) if _grammar(lang) else (False,))
]


@pytest.mark.parametrize(("lang", "text", "mode", "reason", "with_tree"), INVOKED_PARAMS)
def test_invoked(lang: str, text: str, mode: Mode, reason: str, with_tree: bool) -> None:
    assert run(lang, text, invoked=True, with_tree=with_tree) == Decision(mode, reason)


def test_tree_without_offset() -> None:
    prefix, suffix = split('x = 1\ns = "é ‸"\n')
    tree, _ = full_tree("python", prefix, suffix)
    assert decide(prefix, suffix, "python", invoked=False, tree=tree) == Decision(
        NONE, "inside string"
    )


def test_tree_sees_a_string_opened_far_above() -> None:
    """A docstring opened more lines up than the parsed window holds: the full tree knows."""
    body = "".join(f"    line {i} of the docstring\n" for i in range(300))
    text = f'def f():\n    """Doc.\n{body}    ‸\n    """\n    return 1\n'
    assert run("python", text, invoked=False, with_tree=True) == Decision(NONE, "inside string")


def test_block_comment_opened_far_above() -> None:
    body = "".join(f" * line {i}\n" for i in range(300))
    text = f"/*\n{body} * ‸\n */\nint x;\n"
    assert run("c", text, invoked=False, with_tree=True) == Decision(NONE, "inside comment")


def test_window_reaches_up_to_the_enclosing_def() -> None:
    """Without a tree, the parsed window starts at the `def` above a long docstring."""
    doc = "".join(f"        docstring line {i}\n" for i in range(150))
    text = f'class A:\n    def f(self):\n        """Doc.\n{doc}        ‸\n        """\n'
    assert run("python", text, invoked=False, with_tree=False) == Decision(NONE, "inside string")


def test_window_starts_at_a_declaration() -> None:
    """Without a tree, a window that would start inside a docstring starts at a `def`."""
    doc = "".join(f"    docstring line {i}\n" for i in range(60))
    code = "".join(f"    x{i} = {i}\n" for i in range(60))
    text = f'def f():\n    """Doc.\n{doc}    """\n\ndef g():\n{code}    y = 1‸\n'
    assert run("python", text, invoked=False, with_tree=False) == Decision(SINGLE, "after code")


def test_mode_values() -> None:
    assert [m.value for m in Mode] == ["none", "single", "multi"]
    with pytest.raises(AttributeError):
        Decision(SINGLE, "x").mode = NONE  # type: ignore[misc]


BIG = 50_000_000


def _timed(prefix: str, suffix: str, lang: str, invoked: bool = False) -> tuple[Decision, float]:
    decide(prefix, suffix, lang, invoked=invoked)  # load the grammar, warm up
    start = time.perf_counter()
    result = decide(prefix, suffix, lang, invoked=invoked)
    return result, time.perf_counter() - start


@pytest.mark.parametrize("lang", ["python", "javascript", "plaintext"])
def test_huge_document_is_not_scanned(lang: str) -> None:
    """50 MB of code: only windows around the cursor are read (a full scan takes far longer)."""
    chunk = "def f(x):\n    return g(x)\n\n" if lang != "javascript" else "f(x);\n"
    text = chunk * (BIG // len(chunk))
    mid = text.index("\n", len(text) // 2)
    prefix, suffix = text[:mid] + " + 1", text[mid:]
    result, seconds = _timed(prefix, suffix, lang)
    assert result.mode is SINGLE
    assert seconds < 0.05


def test_huge_single_line_and_blank_documents() -> None:
    line = "x = 1; " * (BIG // 7)
    result, seconds = _timed(line, line, "python")
    assert result == Decision(NONE, "code right of cursor")
    assert seconds < 0.05
    result, seconds = _timed(line + "# c ", "\n" + line, "python")
    assert result == Decision(NONE, "inside comment")
    assert seconds < 0.05
    spaces = " " * (BIG // 2)
    result, seconds = _timed(spaces, spaces, "python")
    assert result.mode is not NONE  # too big to prove empty; nothing is scanned
    assert seconds < 0.05
    newlines = "\n" * (BIG // 2)
    result, seconds = _timed(newlines, newlines, "javascript", invoked=True)
    assert result == Decision(MULTI, "blank line")
    assert seconds < 0.05


def test_typical_cost_is_small() -> None:
    """A few hundred microseconds with a window parse, far less with the server's tree."""
    lines = [f"def f{i}(x):\n    '''Doc {i}.'''\n    return x + {i}\n\n" for i in range(500)]
    text = "".join(lines)
    mid = text.index("    return x + 250")
    prefix, suffix = text[:mid] + "    y = x", text[mid:]
    tree, offset = full_tree("python", prefix, suffix)
    decide(prefix, suffix, "python", invoked=False)
    runs = 20
    start = time.perf_counter()
    for _ in range(runs):
        decide(prefix, suffix, "python", invoked=False)
    window = (time.perf_counter() - start) / runs
    start = time.perf_counter()
    for _ in range(runs):
        decide(prefix, suffix, "python", invoked=False, tree=tree, offset_bytes=offset)
    with_tree = (time.perf_counter() - start) / runs
    assert window < 0.02  # loose: shared CI machines
    assert with_tree < 0.005


PIECES = ["é", "😀", "\n", "\r\n", "\r", " ", "    ", "\t", "x", "_1", "(", ")", "{", "}", ":"]
PIECES += ["'", '"', '"""', "`", "${", "# ", "// ", "/*", "*/", "def f():\n", "return 1\n"]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    pieces=st.lists(st.sampled_from(PIECES), max_size=40),
    cut=st.integers(min_value=0),
    lang=st.sampled_from(["python", "javascript", "go", "cpp", "rust", "ruby", "plaintext"]),
    invoked=st.booleans(),
    stale=st.booleans(),
)
def test_any_text(pieces: list[str], cut: int, lang: str, invoked: bool, stale: bool) -> None:
    """Any text and cursor: no error; tree or not, an invoked request is never refused."""
    text = "".join(pieces)
    cut %= len(text) + 1
    prefix, suffix = text[:cut], text[cut:]
    results = [decide(prefix, suffix, lang, invoked=invoked)]
    if ts_language(lang) is not None:
        # The server's tree, or one a few edits behind (out of step with the text).
        tree, offset = full_tree(lang, prefix[: len(prefix) // 2] if stale else prefix, suffix)
        results.append(
            decide(prefix, suffix, lang, invoked=invoked, tree=tree, offset_bytes=offset)
        )
    for result in results:
        assert isinstance(result.mode, Mode) and result.reason
        if invoked:
            assert result.mode is not NONE
