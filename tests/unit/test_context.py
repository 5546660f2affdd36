"""Repository context retrieval: identifiers, imports, similar windows, and assembly within
token and time budgets, over a fake index."""

from __future__ import annotations

import inspect
import itertools
import textwrap
import time
from pathlib import Path

import pytest
from lsprotocol.types import SymbolKind

from engine.models.tiny_moe import train_byte_level_bpe
from engine.prompt import ContextFile
from engine.tokenizer import HFTokenizer
from lsp_server.context import similar as similar_module
from lsp_server.context.gather import (
    RepoContext,
    Snippet,
    display_path,
    gather_context,
    merge_definitions,
    module_matches,
    render_body,
    render_signature,
)
from lsp_server.context.identifiers import Import, imports, references, scrub
from lsp_server.context.similar import RecentDocuments
from lsp_server.workspace.symbols import Symbol

FUNCTION, METHOD, CLASS, CONSTANT = (
    int(SymbolKind.Function),
    int(SymbolKind.Method),
    int(SymbolKind.Class),
    int(SymbolKind.Constant),
)


@pytest.fixture(scope="module")
def tok() -> HFTokenizer:
    return HFTokenizer(train_byte_level_bpe([inspect.getsource(textwrap)], [], 1000))


def sym(
    name: str,
    path: str,
    *,
    kind: int = FUNCTION,
    line: int = 0,
    end_line: int | None = None,
    signature: str = "",
    doc: str = "",
    container: str = "",
    language: str = "python",
    start_byte: int = 0,
    end_byte: int = 0,
) -> Symbol:
    return Symbol(
        name=name,
        kind=kind,
        path=path,
        start_line=line,
        start_col=0,
        end_line=line + 2 if end_line is None else end_line,
        end_col=0,
        name_line=line,
        name_col=4,
        start_byte=start_byte,
        end_byte=end_byte,
        language=language,
        container=container,
        signature=signature or f"def {name}():",
        doc=doc,
    )


class FakeIndex:
    """A DefinitionLookup over a fixed list of symbols, counting lookups."""

    def __init__(self, symbols: list[Symbol], delay: float = 0.0) -> None:
        self.by_name: dict[str, list[Symbol]] = {}
        for s in symbols:
            self.by_name.setdefault(s.name, []).append(s)
        self.delay = delay
        self.lookups: list[str] = []

    def definitions(self, name: str) -> list[Symbol]:
        self.lookups.append(name)
        if self.delay:
            time.sleep(self.delay)
        return list(self.by_name.get(name, []))


# --- identifiers ------------------------------------------------------------------------


def test_references_nearest_first_without_keywords_comments_and_strings() -> None:
    text = (
        "import os\n"
        "def far_away(a):\n"
        "    # comment_word here\n"
        "    result = compute_total(a, 'string_word')\n"
        "    log.info(result)\n"
        "    \n"
        "    return helper(result)\n"
    )
    offset = text.index("    \n") + 4
    refs = references(text, offset, "python")
    names = [r.name for r in refs]
    # The cursor line is empty: one line above, then one below, then two above...
    assert names == ["log", "info", "result", "helper", "compute_total", "far_away", "os"]
    assert [r.distance for r in refs] == [1, 1, 1, 1, 2, 4, 5]
    by_name = {r.name: r for r in refs}
    assert by_name["compute_total"].called and not by_name["compute_total"].attribute
    assert by_name["info"].attribute and by_name["info"].called
    assert not by_name["result"].called
    for word in ("comment_word", "string_word", "def", "return", "import", "a"):
        assert word not in names


def test_references_skip_the_word_being_typed_but_keep_attribute_builtins() -> None:
    text = "x = tracebk.print()\nvalue = compu"
    refs = references(text, len(text), "python")
    assert [r.name for r in refs] == ["value", "tracebk", "print"]  # `print` as a method
    text2 = "compute(1)\nvalue = compu"  # a different word: still being typed
    assert "compu" not in [r.name for r in references(text2, len(text2), "python")]


def test_references_receivers_and_window() -> None:
    lines = [f"v{i} = {i}" for i in range(100)]
    lines[50] = "    self.save(path)"
    lines[52] = "    os.path.join(a)"
    lines[10] = "far_call()"
    text = "\n".join(lines)
    offset = text.index("    os.path")
    refs = {
        r.name: r
        for r in references(text, offset, "python", lines_before=5, receiver_names={"self", "os"})
    }
    assert refs["save"].receivers == ("self",)
    assert refs["path"].receivers == ("os",)
    assert refs["join"].receivers == ()
    assert "far_call" not in refs and "v40" not in refs and "v47" in refs


def test_references_inside_an_open_docstring() -> None:
    text = 'x = 1\ndef f():\n    """Doc with words\n    more_words here\n    """\n    go()\n'
    refs = references(text, text.index("    go()"), "python", lines_before=2)
    assert [r.name for r in refs] == ["go"]


def test_scrub_keeps_lines_and_offsets() -> None:
    text = 'a = "x # y"  # c\nb = """\nq\n""" + f(\'z\')\n// not python\n'
    out = scrub(text, "python")
    assert len(out) == len(text) and out.count("\n") == text.count("\n")
    assert out.split("\n")[0].rstrip() == "a ="
    assert "f(" in out and "q" not in out
    js = 'const a = `t ${x}`; // note\n/* block\n */ call("s")\n'
    out = scrub(js, "typescript")
    assert len(out) == len(js) and "note" not in out and "block" not in out and "call(" in out


@pytest.mark.parametrize(
    ("language", "source", "expected"),
    [
        pytest.param(
            "python",
            "import os, a.b as ab\nfrom .m import (x,\n  y as z,  # note\n)\nfrom p.q import *\n",
            [
                Import("", "os", "os", 0),
                Import("", "ab", "a.b", 0),
                Import("x", "x", ".m", 1),
                Import("y", "z", ".m", 1),
            ],
            id="python",
        ),
        pytest.param(
            "typescript",
            "import React, { useState, useEffect as ue } from 'react';\n"
            'import * as fs from "fs";\n'
            "import type { Foo } from './types';\n"
            "const { a, b: c } = require('x');\n",
            [
                Import("useState", "useState", "react", 0),
                Import("useEffect", "ue", "react", 0),
                Import("React", "React", "react", 0),
                Import("", "fs", "fs", 1),
                Import("Foo", "Foo", "./types", 2),
                Import("a", "a", "x", 3),
                Import("b", "c", "x", 3),
            ],
            id="typescript",
        ),
        pytest.param(
            "java",
            "package p;\nimport java.util.List;\nimport static org.junit.Assert.assertEquals;\n"
            "import a.b.*;\n",
            [
                Import("List", "List", "java.util", 1),
                Import("assertEquals", "assertEquals", "org.junit.Assert", 2),
                Import("", "b", "a.b", 3),
            ],
            id="java",
        ),
        pytest.param(
            "go",
            'package x\nimport "fmt"\nimport (\n\t"net/http"\n\tlog "github.com/x/logrus"\n)\n',
            [
                Import("", "fmt", "fmt", 1),
                Import("", "http", "net/http", 3),
                Import("", "log", "github.com/x/logrus", 4),
            ],
            id="go",
        ),
        pytest.param(
            "rust",
            "use std::collections::{HashMap, HashSet as HS};\n"
            "use crate::a::{b::{C, D}, self};\npub use x::Y;\nuse foo::*;\n",
            [
                Import("HashMap", "HashMap", "std::collections", 0),
                Import("HashSet", "HS", "std::collections", 0),
                Import("C", "C", "crate::a::b", 1),
                Import("D", "D", "crate::a::b", 1),
                Import("", "a", "crate::a", 1),
                Import("Y", "Y", "x", 2),
            ],
            id="rust",
        ),
        pytest.param(
            "c",
            '#include "util/strings.h"\n#include <stdio.h>\n',
            [Import("", "strings", "util/strings.h", 0), Import("", "stdio", "stdio.h", 1)],
            id="c",
        ),
        pytest.param("plaintext", "import os\n", [], id="unknown"),
    ],
)
def test_imports(language: str, source: str, expected: list[Import]) -> None:
    assert imports(source, language) == expected


@pytest.mark.parametrize(
    ("path", "module", "ok"),
    [
        pytest.param("/r/pkg/mod.py", "pkg.mod", True, id="py-file"),
        pytest.param("/r/pkg/mod/__init__.py", "pkg.mod", True, id="py-package"),
        pytest.param("/r/pkg/other.py", "pkg.mod", False, id="py-other"),
        pytest.param("/r/pkg/x.py", ".", True, id="py-relative-package"),
        pytest.param("/r/src/util/strings.ts", "./util/strings", True, id="ts"),
        pytest.param("/r/a/b/C.java", "a.b", True, id="java"),
        pytest.param("/r/x/y/z.go", "example.com/x/y", True, id="go"),
        pytest.param("/r/src/a/b.rs", "crate::a::b", True, id="rust"),
    ],
)
def test_module_matches(path: str, module: str, ok: bool) -> None:
    assert module_matches(path, module) is ok


# --- rendering --------------------------------------------------------------------------


def test_render_python_function_method_class_constant() -> None:
    f = sym(
        "load",
        "/r/u.py",
        signature="def load(path: str) -> dict:",
        doc="Read a file.\n\nMore words.",
    )
    assert render_signature(f) == 'def load(path: str) -> dict:\n    """Read a file."""\n    ...'
    m = sym("put", "/r/u.py", kind=METHOD, container="Store", signature="def put(self, k):")
    assert render_signature(m) == "class Store:\n    def put(self, k):\n        ..."
    c = sym("Store", "/r/u.py", kind=CLASS, signature="class Store(Base):", doc="A store.")
    init = sym("__init__", "/r/u.py", kind=METHOD, container="Store", signature="def __init__(s):")
    assert render_signature(c, [init]) == (
        'class Store(Base):\n    """A store."""\n    def __init__(s): ...'
    )
    k = sym("LIMIT", "/r/u.py", kind=CONSTANT, signature="LIMIT = 10", doc="Most.")
    assert render_signature(k) == "# Most.\nLIMIT = 10"


def test_render_brace_languages() -> None:
    go = sym(
        "Open",
        "/r/f.go",
        signature="func Open(name string) (*File, error)",
        doc="Open opens.",
        language="go",
    )
    assert render_signature(go) == "// Open opens.\nfunc Open(name string) (*File, error) { ... }"
    java = sym(
        "size",
        "/r/A.java",
        kind=METHOD,
        container="Box",
        signature="public int size()",
        language="java",
    )
    assert render_signature(java) == "class Box {\n    public int size() { ... }\n}"
    rust = sym(
        "new",
        "/r/a.rs",
        kind=FUNCTION,
        container="Foo",
        signature="pub fn new() -> Self",
        language="rust",
        doc="Make one.",
    )
    assert render_signature(rust) == "/// Make one.\npub fn new() -> Self { ... }"


def test_merge_definitions_shares_class_lines() -> None:
    def snip(text: str, wrapper: str = "", opens: str = "") -> Snippet:
        return Snippet("u.py", text, "definition", 1.0, wrapper=wrapper, opens=opens)

    merged = merge_definitions(
        [
            snip("def f():\n    ..."),
            snip('class A:\n    """Doc."""\n    ...', opens="class A:"),
            snip("class A:\n    def g(self):\n        ...", wrapper="class A:"),
            snip("class A:\n    def h(self):\n        ...", wrapper="class A:"),
        ]
    )
    assert merged == (
        "def f():\n    ...\n\n"
        'class A:\n    """Doc."""\n\n'
        "    def g(self):\n        ...\n\n"
        "    def h(self):\n        ..."
    )
    brace = merge_definitions(
        [
            snip("class B { ... }", opens="class B {"),
            snip("class B {\n    int f() { ... }\n}", wrapper="class B {"),
            snip("class B {\n    int g() { ... }\n}", wrapper="class B {"),
        ]
    )
    assert brace == "class B {\n\n    int f() { ... }\n\n    int g() { ... }\n}"


def test_render_body_reads_the_file_once_per_version(tmp_path: Path) -> None:
    src = "import os\n\n\nclass A:\n    def g(self, x):\n        return x + 1\n"
    path = tmp_path / "a.py"
    path.write_text(src)
    start = src.index("def g")
    m = sym("g", str(path), kind=METHOD, container="A", start_byte=start, end_byte=len(src) - 1)
    assert render_body(m) == "class A:\n    def g(self, x):\n        return x + 1"
    assert render_body(m, max_lines=1) is None
    path.write_text("changed = True\n")
    assert render_body(m) is None  # the file changed since indexing: no stale body


def test_display_path() -> None:
    assert display_path("/r/pkg/a.py", "/r") == "pkg/a.py"
    assert display_path("/elsewhere/a.py", "/r") == "/elsewhere/a.py"
    assert display_path("/r/pkg/a.py", None) == "a.py"


# --- recent documents -------------------------------------------------------------------

DOC_A = "\n".join(
    [f"def unrelated_{i}(x):\n    return x * {i}\n" for i in range(30)]
    + [
        "def fetch_user(session, user_id):\n    row = session.query(User).get(user_id)\n"
        "    return serialize_user(row)\n"
    ]
    + [f"CONSTANT_{i} = {i}" for i in range(30)]
)


def test_similar_window_found_and_scored() -> None:
    recent = RecentDocuments(window_lines=6, stride=3)
    recent.touch("file:///r/a.py", DOC_A, "python")
    recent.touch("file:///r/other.js", "session.query(User).get(user_id)", "javascript")
    query = "def fetch_admin(session, admin_id):\n    row = session.query(User).get(admin_id)\n"
    found = recent.similar(query, "python", limit=2, threshold=0.1)
    assert found and found[0].path == "/r/a.py"
    assert "def fetch_user(session, user_id):" in found[0].text
    assert 0.1 <= found[0].score <= 1.0
    assert all(w.path != "/r/other.js" for w in found)  # another language group
    assert recent.similar(query, "python", exclude="/r/a.py") == []
    assert recent.similar(query, "python", exclude="file:///r/a.py") == []


def test_jaccard_score_exact() -> None:
    recent = RecentDocuments(window_lines=1, stride=1)
    recent.touch("u", "alpha beta gamma delta", "python")
    (w,) = recent.similar("alpha beta epsilon", "python", threshold=0.0)
    assert w.score == pytest.approx(2 / 5)  # {alpha, beta} / {alpha..epsilon}


def test_similar_windows_do_not_overlap() -> None:
    recent = RecentDocuments(window_lines=4, stride=1)
    recent.touch("u", "\n".join(["alpha beta gamma"] * 12), "python")
    found = recent.similar("alpha beta gamma", "python", limit=5, threshold=0.5)
    spans = sorted((w.start_line, w.end_line) for w in found)
    assert len(spans) == 3
    assert all(a[1] <= b[0] for a, b in itertools.pairwise(spans))


def test_recent_documents_bounded_and_lazy(monkeypatch: pytest.MonkeyPatch) -> None:
    built: list[int] = []
    real = similar_module._Windows

    def counting(*args: object, **kwargs: object) -> object:
        built.append(1)
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(similar_module, "_Windows", counting)
    recent = RecentDocuments(max_docs=3, max_chars=1000)
    for i in range(5):
        recent.touch(f"u{i}", f"shared_name value_{i}", "python")
    recent.touch("huge", "x" * 2000, "python")
    assert recent.uris() == ["u4", "u3", "u2"]
    assert built == []  # touching never indexes
    recent.similar("shared_name", "python", threshold=0.0)
    recent.similar("shared_name other", "python", threshold=0.0)
    assert len(built) == 3  # once per document version
    recent.touch("u3", "shared_name changed", "python")
    recent.touch("u2", "shared_name value_2", "python")  # same text: index kept
    recent.similar("shared_name", "python", threshold=0.0)
    assert len(built) == 4
    recent.remove("u4")
    assert recent.uris() == ["u2", "u3"]


def test_similar_is_fast_on_many_documents() -> None:
    source = inspect.getsource(textwrap)
    recent = RecentDocuments()
    for i in range(20):
        recent.touch(f"file:///r/m{i}.py", source.replace("wrap", f"wrap{i}"), "python")
    query = "\n".join(source.split("\n")[300:320])
    recent.similar(query, "python")  # indexes every document once
    start = time.perf_counter()
    for _ in range(10):
        found = recent.similar(query, "python")
    assert (time.perf_counter() - start) / 10 < 0.02
    assert found and found[0].score > 0.5


# --- assembly ---------------------------------------------------------------------------

MAIN = """\
from pkg.util import parse_config
from pkg.store import Store


def run(path):
    store = Store(path)
    cfg = parse_config(path)
    store.save(cfg)
    return cfg
"""


def repo_symbols(root: str) -> list[Symbol]:
    return [
        sym(
            "parse_config",
            f"{root}/pkg/util.py",
            signature="def parse_config(path: str) -> dict[str, str]:",
            doc="Read a key=value file.",
            line=5,
        ),
        sym("parse_config", f"{root}/legacy/util.py", line=1),  # same name, other module
        sym("Store", f"{root}/pkg/store.py", kind=CLASS, signature="class Store:", line=3),
        sym(
            "save",
            f"{root}/pkg/store.py",
            kind=METHOD,
            container="Store",
            line=9,
            signature="def save(self, data: dict) -> None:",
        ),
        sym("run", f"{root}/app/main.py", line=4, end_line=8),
    ]


def gather(
    tok: HFTokenizer,
    index: object,
    *,
    text: str = MAIN,
    cursor: str = "    return cfg",
    budget: int = 500,
    root: str = "/r",
    **kwargs: object,
) -> RepoContext:
    return gather_context(
        path=f"{root}/app/main.py",
        text=text,
        offset=text.index(cursor),
        language_id="python",
        index=index,  # type: ignore[arg-type]
        recent=kwargs.pop("recent", None),  # type: ignore[arg-type]
        tokenizer=tok,
        budget_tokens=budget,
        root=root,
        **kwargs,  # type: ignore[arg-type]
    )


def test_definitions_of_used_and_imported_names(tok: HFTokenizer) -> None:
    index = FakeIndex(repo_symbols("/r"))
    ctx = gather(tok, index)
    assert [(s.path, s.name, s.kind) for s in ctx.snippets] == [
        ("pkg/store.py", "Store", "definition"),
        ("pkg/store.py", "save", "definition"),
        ("pkg/util.py", "parse_config", "definition"),
    ]
    util = ctx.snippets[2]
    assert util.text == (
        'def parse_config(path: str) -> dict[str, str]:\n    """Read a key=value file."""\n    ...'
    )
    assert ctx.file_path == "app/main.py"
    assert 0 < ctx.tokens <= 500
    assert not ctx.timed_out
    files = ctx.files()
    assert files[0] == ContextFile(
        "pkg/store.py",
        "class Store:\n\n    def save(self, data: dict) -> None:\n        ...",
    )
    assert files[1].path == "pkg/util.py"
    # `run` is defined in the current file and visible in the prompt: not repeated.
    assert "run" in index.lookups


def test_in_file_definition_outside_the_prompt_is_shown(tok: HFTokenizer) -> None:
    far = "\n" * 400
    text = "def helper_far(a):\n    return a\n" + far + "def main():\n    helper_far(1)\n    \n"
    index = FakeIndex([sym("helper_far", "/r/app/main.py", line=0, end_line=1)])
    cursor = "    \n"
    ctx = gather(tok, index, text=text, cursor=cursor)
    assert ctx.snippets == []  # the whole file is visible by default
    ctx = gather(tok, index, text=text, cursor=cursor, visible=(100, 100))
    assert [s.name for s in ctx.snippets] == ["helper_far"]


def test_snippets_already_in_the_prompt_are_dropped(tok: HFTokenizer) -> None:
    sig = "def parse_config(path: str) -> dict[str, str]:"
    shown = f'# copied here\n{sig}\n    """Read a key=value file."""\n    ...\n' + MAIN
    index = FakeIndex(repo_symbols("/r"))
    names = [s.name for s in gather(tok, index, text=shown).snippets]
    assert "parse_config" not in names and "Store" in names


def test_stable_across_keystrokes(tok: HFTokenizer) -> None:
    index = FakeIndex(repo_symbols("/r"))
    texts = []
    for typed in ("", "s", "st", "sto", "stor"):
        text = MAIN.replace("    return cfg", "    " + typed + "\n    return cfg")
        offset = text.index("    " + typed + "\n    return cfg") + 4 + len(typed)
        ctx = gather_context(
            path="/r/app/main.py",
            text=text,
            offset=offset,
            language_id="python",
            index=index,
            recent=None,
            tokenizer=tok,
            budget_tokens=500,
            root="/r",
        )
        texts.append(ctx.files())
    assert all(t == texts[0] for t in texts)


def test_budget_limits_and_prefers_nearest(tok: HFTokenizer) -> None:
    index = FakeIndex(repo_symbols("/r"))
    full = gather(tok, index, budget=10_000)
    sizes = {s.name: s for s in full.snippets}
    assert all(s.body is False for s in full.snippets)  # no files to read bodies from
    for budget in (0, 10, 40, 80, 200):
        ctx = gather(tok, index, budget=budget)
        assert ctx.tokens <= budget
        assert {s.name for s in ctx.snippets} <= set(sizes)
    save = sizes["save"]
    just_save = len(tok.encode(f"// path: {save.path}\n{save.text}\n\n"))
    small = gather(tok, index, budget=just_save)
    # `save` (used on the line above the cursor) outranks what is used farther away.
    assert [s.name for s in small.snippets] == ["save"]
    assert small.tokens == just_save


def test_bodies_when_the_budget_allows(tok: HFTokenizer, tmp_path: Path) -> None:
    util = tmp_path / "pkg" / "util.py"
    util.parent.mkdir()
    src = (
        "import os\n\n\ndef parse_config(path: str) -> dict[str, str]:\n"
        '    """Read a key=value file."""\n    return dict(l.split("=") for l in open(path))\n'
    )
    util.write_text(src)
    s = sym(
        "parse_config",
        str(util),
        signature="def parse_config(path: str) -> dict[str, str]:",
        doc="Read a key=value file.",
        line=3,
        start_byte=src.index("def"),
        end_byte=len(src) - 1,
    )
    index = FakeIndex([s])
    root = str(tmp_path)
    big = gather(tok, index, budget=1000, root=root)
    assert big.snippets[0].body
    assert big.snippets[0].text == src[src.index("def") :].rstrip()
    sig_only = len(tok.encode(f"// path: pkg/util.py\n{render_signature(s)}\n\n"))
    small = gather(tok, index, budget=sig_only, root=root)
    assert not small.snippets[0].body
    assert small.snippets[0].text == render_signature(s)


def test_import_narrows_and_ambiguity_is_bounded(tok: HFTokenizer) -> None:
    symbols = repo_symbols("/r")
    ctx = gather(tok, FakeIndex(symbols))
    assert [s.source for s in ctx.snippets if s.name == "parse_config"] == ["/r/pkg/util.py"]
    many = [sym("frobnicate", f"/r/lib{i}/x.py") for i in range(8)]
    text = "def main():\n    frobnicate(1)\n    \n"
    ctx = gather(tok, FakeIndex(many), text=text, cursor="    \n")
    assert ctx.snippets == []  # 8 unrelated definitions: skipped
    few = [sym("frobnicate", "/r/lib/x.py"), sym("frobnicate", "/r/app/impl/x.py")]
    ctx = gather(tok, FakeIndex(few), text=text, cursor="    \n")
    assert [s.source for s in ctx.snippets] == ["/r/app/impl/x.py"]  # the nearest one


def test_self_methods_resolve_through_base_classes(tok: HFTokenizer) -> None:
    text = (
        "from base import Base\n\n\nclass Child(Base):\n    def run(self):\n"
        "        self.prepare()\n        \n"
    )
    symbols = [
        sym("prepare", "/r/other/x.py", kind=METHOD, container="Unrelated"),
        sym("prepare", "/r/base.py", kind=METHOD, container="Base", line=7),
    ]
    ctx = gather(tok, FakeIndex(symbols), text=text, cursor="        \n")
    assert [(s.source, s.name) for s in ctx.snippets if s.name == "prepare"] == [
        ("/r/base.py", "prepare")
    ]


def test_privacy_filter(tok: HFTokenizer) -> None:
    ctx = gather(tok, FakeIndex(repo_symbols("/r")), allow=lambda p: "store" not in p)
    assert [s.name for s in ctx.snippets] == ["parse_config"]


def test_time_box(tok: HFTokenizer) -> None:
    """A slow index is cut off: the context comes back within the time budget (after a few
    lookups that always happen), marked as timed out."""
    lines = [f"    value_{i} = Thing{i}(x)" for i in range(60)]
    text = "def f(x):\n" + "\n".join(lines) + "\n    \n"
    index = FakeIndex([], delay=0.004)
    start = time.perf_counter()
    ctx = gather(tok, index, text=text, cursor="    \n", time_budget_ms=20.0)
    elapsed = (time.perf_counter() - start) * 1000
    assert ctx.timed_out
    assert 8 <= len(index.lookups) < 60
    assert elapsed < 20.0 + 2 * 4.0 + 15.0


def test_similar_windows_after_definitions(tok: HFTokenizer) -> None:
    recent = RecentDocuments(window_lines=6, stride=3)
    recent.touch("file:///r/app/jobs.py", DOC_A, "python")
    recent.touch("file:///r/app/main.py", MAIN, "python")  # the current document
    text = MAIN.replace("    return cfg", "    row = session.query(User).get(user_id)\n    #")
    ctx = gather(tok, FakeIndex(repo_symbols("/r")), text=text, cursor="#", recent=recent)
    kinds = [s.kind for s in ctx.snippets]
    assert kinds[-1] == "similar" and kinds.count("similar") >= 1
    assert kinds.index("similar") > max(i for i, k in enumerate(kinds) if k == "definition")
    window = ctx.snippets[-1]
    assert window.path == "app/jobs.py" and "fetch_user" in window.text
    assert all(s.source != "/r/app/main.py" for s in ctx.snippets)


def test_no_index_no_recent_gives_the_path_only(tok: HFTokenizer) -> None:
    ctx = gather(tok, None)
    assert ctx.snippets == [] and ctx.file_path == "app/main.py" and ctx.tokens == 0


def test_names_used_through_a_type_belong_to_it(tok: HFTokenizer) -> None:
    text = "fn run() {\n    let s = Stack::new();\n    let p = Point::origin();\n    \n}\n"
    symbols = [
        sym("new", "/r/src/point.rs", kind=METHOD, container="Point", language="rust",
            signature="pub fn new() -> Self"),
        sym("origin", "/r/src/point.rs", kind=METHOD, container="Point", language="rust",
            signature="pub fn origin() -> Self", line=9),
    ]  # fmt: skip
    ctx = gather_context(
        path="/r/src/main.rs",
        text=text,
        offset=text.index("    \n") + 4,
        language_id="rust",
        index=FakeIndex(symbols),
        recent=None,
        tokenizer=tok,
        budget_tokens=500,
        root="/r",
    )
    assert [s.name for s in ctx.snippets] == ["origin"]  # not Point::new for Stack::new
    assert ctx.files()[0].text == "impl Point {\n    pub fn origin() -> Self { ... }\n}"
