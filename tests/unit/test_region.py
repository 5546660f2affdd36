"""What a fix rewrites: the enclosing definition, a selection's lines, or a paragraph."""

from __future__ import annotations

import pytest

from lsp_server.fixes.region import enclosing_definition, fix_region, lines_region

PY = """import os


class Calc:
    @staticmethod
    def add(a, b):
        return a - b

    def sub(self, a, b):
        return a - b


LIMIT = 3
"""


def at(text: str, needle: str) -> int:
    return text.index(needle)


@pytest.mark.parametrize(
    ("language", "text", "needle", "name", "kind", "first", "last"),
    [
        pytest.param("python", PY, "a - b", "add", "function", 4, 6, id="python-decorated"),
        pytest.param("python", PY, "class Calc", "Calc", "class", 3, 9, id="python-class"),
        pytest.param(
            "javascript",
            "export const f = (a) => {\n  return a + 1;\n};\n",
            "return",
            "f",
            "function",
            0,
            2,
            id="js-arrow-in-export",
        ),
        pytest.param(
            "java",
            "class A {\n  int f() {\n    return 1;\n  }\n}\n",
            "return",
            "f",
            "function",
            1,
            3,
            id="java-method",
        ),
        pytest.param(
            "go",
            "package m\n\nfunc Add(a, b int) int {\n\treturn a - b\n}\n",
            "return",
            "Add",
            "function",
            2,
            4,
            id="go-func",
        ),
        pytest.param(
            "cpp",
            "int add(int a, int b) {\n  return a - b;\n}\n",
            "return",
            "add",
            "function",
            0,
            2,
            id="cpp-function",
        ),
        pytest.param(
            "rust",
            "fn add(a: i32) -> i32 {\n    a - 1\n}\n",
            "a - 1",
            "add",
            "function",
            0,
            2,
            id="rust-fn",
        ),
    ],
)
def test_the_enclosing_definition_is_found(
    language: str, text: str, needle: str, name: str, kind: str, first: int, last: int
) -> None:
    region = enclosing_definition(text, language, at(text, needle))
    assert region is not None
    assert (region.name, region.kind, region.first_line, region.last_line) == (
        name,
        kind,
        first,
        last,
    )
    assert region.text(text).endswith("\n")
    assert text[region.start - 1 : region.start] in ("", "\n")


def test_outside_any_definition_a_python_fix_takes_nearby_lines() -> None:
    region = fix_region(PY, "python", at(PY, "LIMIT"), at(PY, "LIMIT"))
    assert region.kind == "lines"
    assert region.first_line <= 12 <= region.last_line
    assert "LIMIT = 3" in region.text(PY)


def test_a_large_definition_is_cut_to_the_lines_around_the_problem() -> None:
    body = "".join(f"    x{i} = {i}\n" for i in range(300))
    text = "def big():\n" + body + "    return x0\n"
    offset = at(text, "x150 =")
    region = fix_region(text, "python", offset, offset, max_lines=200)
    assert region.kind == "lines"
    assert region.first_line <= 151 <= region.last_line
    assert region.last_line - region.first_line <= 41


def test_plain_text_takes_the_paragraph_and_a_selection_its_lines() -> None:
    text = "Shopping\nmilk\negss\n\nNotes\ncall mom\n"
    offset = at(text, "egss")
    paragraph = fix_region(text, "plaintext", offset, offset)
    assert paragraph.text(text) == "Shopping\nmilk\negss\n"
    selected = fix_region(text, "python", at(text, "ilk"), at(text, "gs"), selection=True)
    assert selected.text(text) == "milk\negss\n"


def test_lines_region_of_the_last_line_without_a_newline() -> None:
    text = "a\nb"
    region = lines_region(text, 2, 3)
    assert (region.text(text), region.first_line, region.last_line) == ("b", 1, 1)
