"""Fix answers to edits: code extraction, region fitting, minimal replacements, LSP edits."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lsp_server.fixes.answer import AnswerError, extract_code, parse_blocks
from lsp_server.fixes.edits import (
    EditError,
    Replacement,
    fit_region,
    minimal_replacements,
    replace_region,
    to_text_edits,
)
from lsp_server.positions import offset_at

EMOJI = "\U0001f600"  # two UTF-16 code units


def apply(text: str, replacements: list[Replacement]) -> str:
    for r in reversed(replacements):
        text = text[: r.start] + r.text + text[r.end :]
    return text


def check_replacements(old: str, new: str) -> list[Replacement]:
    replacements = minimal_replacements(old, new)
    assert apply(old, replacements) == new
    previous_end = -1
    for r in replacements:
        assert previous_end < r.start <= r.end <= len(old)  # sorted, disjoint, not touching
        assert old[r.start : r.end] != r.text  # every replacement changes something
        for offset in (r.start, r.end):  # LSP has no position inside a \r\n
            assert not (0 < offset < len(old) and old[offset - 1 : offset + 1] == "\r\n")
        previous_end = r.end
    return replacements


# -- minimal_replacements ---------------------------------------------------------------

PIECES = st.sampled_from(["a", "b", " ", "\t", "\n", "\r\n", "\r", "x = 1\n", "é", EMOJI, "}"])
TEXTS = st.lists(PIECES, max_size=40).map("".join)


@st.composite
def edited(draw: st.DrawFn) -> tuple[str, str]:
    """A text and a version of it with a few pieces inserted, deleted or replaced."""
    old = draw(st.lists(PIECES, max_size=40))
    new = list(old)
    for _ in range(draw(st.integers(0, 4))):
        index = draw(st.integers(0, len(new)))
        action = draw(st.sampled_from(["insert", "delete", "replace"]))
        if action == "insert":
            new.insert(index, draw(PIECES))
        elif index < len(new):
            if action == "delete":
                del new[index]
            else:
                new[index] = draw(PIECES)
    return "".join(old), "".join(new)


@settings(max_examples=400, deadline=None)
@given(TEXTS, TEXTS)
def test_minimal_replacements_random_texts(old: str, new: str) -> None:
    check_replacements(old, new)


@settings(max_examples=400, deadline=None)
@given(edited())
def test_minimal_replacements_small_edits(pair: tuple[str, str]) -> None:
    old, new = pair
    replacements = check_replacements(old, new)
    edits = to_text_edits(old, replacements)
    spans = [
        (
            offset_at(old, e.range.start.line, e.range.start.character),
            offset_at(old, e.range.end.line, e.range.end.character),
        )
        for e in edits
    ]
    assert spans == [(r.start, r.end) for r in replacements]


def test_one_character_fix_is_one_character() -> None:
    old = "def f(a, b):\n    return a - b\n"
    assert minimal_replacements(old, old.replace("-", "+")) == [Replacement(26, 27, "+")]


def test_no_change_no_replacements() -> None:
    assert minimal_replacements("a\nb\n", "a\nb\n") == []


def test_separate_hunks_are_separate_replacements() -> None:
    old = "a = 1\nb = 2\nc = 3\nd = 4\n"
    new = "a = 10\nb = 2\nc = 3\nd = 40\n"
    assert minimal_replacements(old, new) == [Replacement(5, 5, "0"), Replacement(23, 23, "0")]


def test_insertion_moves_to_a_word_boundary() -> None:
    old = "x = items[start:size]\n"
    new = "x = items[start:start + size]\n"
    assert minimal_replacements(old, new) == [Replacement(16, 16, "start + ")]


def test_crlf_is_never_split() -> None:
    old = "a\r\nb\r\n"
    new = "a\nb\r\n"
    (replacement,) = check_replacements(old, new)
    assert replacement == Replacement(1, 3, "\n")


def test_added_final_newline() -> None:
    assert minimal_replacements("a", "a\n") == [Replacement(1, 1, "\n")]


# -- to_text_edits ----------------------------------------------------------------------


def test_text_edits_count_utf16_units() -> None:
    old = f'label = "{EMOJI}" + n > 1\n'
    new = old.replace(">", "!==")
    (edit,) = to_text_edits(old, minimal_replacements(old, new))
    assert old.index(">") == 16  # 16 characters before it, the emoji two UTF-16 units
    assert (edit.range.start.line, edit.range.start.character) == (0, 17)
    assert (edit.range.end.line, edit.range.end.character) == (0, 18)
    assert edit.new_text == "!=="


def test_text_edits_after_crlf_and_lone_cr() -> None:
    old = "a\r\nb\rc - d\n"
    new = "a\r\nb\rc + d\n"
    (edit,) = to_text_edits(old, minimal_replacements(old, new))
    assert (edit.range.start.line, edit.range.start.character) == (2, 2)


# -- fit_region -------------------------------------------------------------------------

METHOD = "    def area(self):\n        return self.w * self.w\n"


def test_fit_keeps_code_at_region_indentation() -> None:
    code = "    def area(self):\n        return self.w * self.h\n"
    assert fit_region(METHOD, code) == code


def test_fit_reindents_method_answered_at_column_zero() -> None:
    code = "def area(self):\n    return self.w * self.h\n"
    assert fit_region(METHOD, code) == "    def area(self):\n        return self.w * self.h\n"


def test_fit_cuts_the_method_out_of_an_echoed_class() -> None:
    code = (
        "class Rect:\n"
        "    def __init__(self, w, h):\n"
        "        self.w, self.h = w, h\n"
        "\n"
        "    def area(self):\n"
        "        return self.w * self.h\n"
        "\n"
        "    def perimeter(self):\n"
        "        return 2 * (self.w + self.h)\n"
        "\n"
        "print(Rect(1, 2).area())\n"
    )
    assert fit_region(METHOD, code) == "    def area(self):\n        return self.w * self.h\n"


def test_fit_keeps_a_long_python_signature_and_decorators() -> None:
    region = "@cache\ndef f(\n    a,\n):\n    return a\n"
    code = "import functools\n\n@cache\ndef f(\n    a,\n):\n    return a + 1\n\nf(1)\n"
    assert fit_region(region, code) == "@cache\ndef f(\n    a,\n):\n    return a + 1\n"


def test_fit_cuts_a_java_method_with_its_brace() -> None:
    region = "    int twice(int x) {\n        return x + x;\n    }\n"
    code = (
        "class A {\n    int twice(int x) {\n        return 2 * x;\n    }\n\n"
        "    int thrice(int x) {\n        return 3 * x;\n    }\n}\n"
    )
    assert fit_region(region, code) == "    int twice(int x) {\n        return 2 * x;\n    }\n"


def test_fit_finds_an_annotated_method_by_its_signature() -> None:
    region = "    @Override\n    public int size() {\n        return n;\n    }\n"
    code = (
        "class A {\n    @Override\n    public String toString() {\n        return s;\n    }\n\n"
        "    @Override\n    public int size() {\n        return n + 1;\n    }\n}\n"
    )
    expected = "    @Override\n    public int size() {\n        return n + 1;\n    }\n"
    assert fit_region(region, code) == expected


def test_fit_drops_a_comment_the_region_does_not_have() -> None:
    region = "def f():\n    return 1\n"
    code = "# helpers\ndef f():\n    return 2\n"
    assert fit_region(region, code) == "def f():\n    return 2\n"


def test_fit_keeps_the_javadoc_the_region_has() -> None:
    region = "    /**\n     * Twice.\n     */\n    int twice(int x) {\n        return x;\n    }\n"
    code = "class A {\n" + region.replace("return x;", "return 2 * x;") + "}\n"
    assert fit_region(region, code) == region.replace("return x;", "return 2 * x;")


def test_fit_does_not_cut_when_the_first_line_repeats() -> None:
    region = "    x = 1\n    y = 2\n"
    code = "    x = 1\n    x = 1\n    y = 3\n"
    assert fit_region(region, code) == code


def test_fit_crlf_region() -> None:
    region = "def f():\r\n    return 1\r\n"
    code = "def f():\n    value = 2\n    return value\n"
    assert fit_region(region, code) == "def f():\r\n    value = 2\r\n    return value\r\n"


def test_fit_spaces_to_tabs() -> None:
    region = "func f() int {\n\tif x {\n\t\treturn 1\n\t}\n\treturn 0\n}\n"
    code = "func f() int {\n    if x {\n        return 2\n    }\n    return 0\n}\n"
    expected = "func f() int {\n\tif x {\n\t\treturn 2\n\t}\n\treturn 0\n}\n"
    assert fit_region(region, code) == expected


def test_fit_tabs_to_spaces() -> None:
    region = "  def f():\n    return 1\n"
    code = "def f():\n\treturn 2\n"
    assert fit_region(region, code) == "  def f():\n    return 2\n"


def test_fit_tab_indented_method_keeps_tabs() -> None:
    region = "\tdef f(self):\n\t\treturn 1\n"
    code = "def f(self):\n\treturn 2\n"
    assert fit_region(region, code) == "\tdef f(self):\n\t\treturn 2\n"


def test_fit_region_at_end_of_file_without_newline() -> None:
    assert fit_region("def f():\n    return 1", "def f():\n    return 2\n") == (
        "def f():\n    return 2"
    )


def test_fit_adds_the_region_newline() -> None:
    assert fit_region("x = 1\n", "x = 2") == "x = 2\n"


def test_fit_keeps_the_region_edge_blank_lines() -> None:
    region = "\ndef f():\n    return 1\n\n\n"
    assert fit_region(region, "\n\ndef f():\n    return 2\n") == "\ndef f():\n    return 2\n\n\n"


def test_fit_keeps_code_blank_lines_empty() -> None:
    region = "    def f(self):\n        a = 1\n\n        return a\n"
    code = "def f(self):\n    a = 2\n\n    return a\n"
    assert fit_region(region, code) == "    def f(self):\n        a = 2\n\n        return a\n"


# -- replace_region ---------------------------------------------------------------------

DOCUMENT = "import os\n\n\ndef f(x):\n    return x - 1\n\n\ndef g():\n    return 2\n"
F_START = DOCUMENT.index("def f")
F_END = DOCUMENT.index("\n\n\ndef g") + 1


def test_replace_region_minimal_edit_inside_region() -> None:
    code = "def f(x):\n    return x + 1\n"
    new_text, replacements = replace_region(DOCUMENT, F_START, F_END, code, "python")
    assert new_text == DOCUMENT.replace("x - 1", "x + 1")
    assert replacements == [Replacement(DOCUMENT.index("-"), DOCUMENT.index("-") + 1, "+")]


def test_replace_region_no_change() -> None:
    with pytest.raises(EditError, match="the model proposed no change"):
        replace_region(DOCUMENT, F_START, F_END, "def f(x):\n    return x - 1\n", "python")


def test_replace_region_refuses_a_fix_that_does_not_parse() -> None:
    code = "def f(x):\n    return (x - 1\n"
    with pytest.raises(EditError, match=r"^the proposed fix does not parse \(line 5\)$"):
        replace_region(DOCUMENT, F_START, F_END, code, "python")


def test_replace_region_names_the_line_of_a_broken_method() -> None:
    document = (
        "class A:\n    def f(self):\n        return 1\n\n    def g(self):\n        return 2\n"
    )
    start = document.index("    def f")
    end = document.index("\n    def g")
    with pytest.raises(EditError, match=r"\(line 2\)"):
        replace_region(document, start, end, "def f(self)\n    return 1\n", "python")


def test_replace_region_already_broken_file() -> None:
    broken = DOCUMENT + "def h(:\n"
    code = "def f(x):\n    return x + 1\n"
    new_text, _ = replace_region(broken, F_START, F_END, code, "python")
    assert new_text == broken.replace("x - 1", "x + 1")
    with pytest.raises(EditError, match="does not parse"):
        replace_region(broken, F_START, F_END, "def f(x:\n    return (x\n", "python")


def test_replace_region_without_grammar_is_not_checked() -> None:
    new_text, replacements = replace_region("a\nb (\n", 2, 6, "c ((\n", "plaintext")
    assert new_text == "a\nc ((\n"
    assert replacements == [Replacement(2, 4, "c (")]


def test_replace_region_at_end_of_file_without_newline() -> None:
    text = "x = 1\ndef f():\n    return 1"
    new_text, replacements = replace_region(
        text, 6, len(text), "def f():\n    return 2\n", "python"
    )
    assert new_text == "x = 1\ndef f():\n    return 2"
    assert replacements == [Replacement(len(text) - 1, len(text), "2")]


def test_replace_region_single_line_region_in_crlf_document() -> None:
    text = "a = 1\r\nb = 2"
    new_text, _ = replace_region(text, 7, len(text), "b = 2\nc = 3\n", "python")
    assert new_text == "a = 1\r\nb = 2\r\nc = 3"


def test_replace_region_out_of_bounds() -> None:
    with pytest.raises(EditError, match="outside the document"):
        replace_region("abc", 2, 5, "x", "python")


# -- extract_code -----------------------------------------------------------------------

ORIGINAL = "def add(a, b):\n    return a - b\n"
FIX = "def add(a, b):\n    return a + b\n"


def test_extract_prefilled_terminated_block() -> None:
    assert extract_code(f"```python\n{FIX}```\n", original=ORIGINAL) == FIX


def test_extract_unterminated_block() -> None:
    assert extract_code(f"```python\n{FIX}", original=ORIGINAL) == FIX


def test_extract_unterminated_block_cut_inside_the_closing_fence() -> None:
    assert extract_code(f"```python\n{FIX}``", original=ORIGINAL) == FIX


@pytest.mark.parametrize(
    "token",
    [
        "<|EOT|>",
        "<eos>",
        "<end_of_turn>",
        "<\uff5cend\u2581of\u2581sentence\uff5c>",
        "</s>",
        "<|im_end|>",
        "<|endoftext|>",
    ],
)
def test_extract_strips_special_tokens(token: str) -> None:
    assert extract_code(f"```python\n{FIX}{token}", original=ORIGINAL) == FIX
    assert extract_code(f"```python\n{FIX.rstrip()}{token}\n", original=ORIGINAL) == FIX
    assert extract_code(f"```python\n{FIX}```\nDone.{token}", original=ORIGINAL) == FIX


def test_extract_chooses_the_block_most_like_the_original() -> None:
    answer = (
        "Change this line:\n```python\n    return a + b\n```\nThe whole function:\n"
        f"```python\n{FIX}```\n"
    )
    assert extract_code(answer, original=ORIGINAL) == FIX


def test_extract_ties_go_to_the_longest() -> None:
    answer = "```python\nx = 1\n```\n```python\nx = 1\ny = 2\n```\n"
    assert extract_code(answer) == "x = 1\ny = 2\n"


def test_extract_skips_a_quote_of_the_original() -> None:
    answer = f"Your code:\n```python\n{ORIGINAL}```\nFixed:\n```python\n{FIX}```\n"
    assert extract_code(answer, original=ORIGINAL) == FIX


@pytest.mark.parametrize("tag", ["bash", "sh", "console", "text", "output", "diff"])
def test_extract_ignores_commands_and_output(tag: str) -> None:
    other = "pytest -q tests/test_add.py\n"
    answer = f"```{tag}\n{other}```\n```python\n{FIX}```\n"
    assert extract_code(answer, original=other, language_id="python") == FIX


def test_extract_ignores_untagged_shell_commands() -> None:
    answer = f"```\npip install numpy\npython -m pytest\n```\n```\n{FIX}```\n"
    assert extract_code(answer, original="pip install numpy\n", language_id="python") == FIX


def test_extract_ignores_commands_tagged_as_code() -> None:
    answer = f"```python\npip install -e .\n```\n```python\n{FIX}```\n"
    assert extract_code(answer, original="pip install -e .\n", language_id="python") == FIX


def test_extract_only_commands_is_an_error() -> None:
    with pytest.raises(AnswerError, match="only commands, output or a patch"):
        extract_code("Run:\n```bash\npytest -q\n```\n", language_id="python")


def test_extract_prefers_the_file_language() -> None:
    answer = f'```json\n{{"a": 1}}\n```\n```py\n{FIX}```\n'
    assert extract_code(answer, original='{"a": 1}\n', language_id="python") == FIX


def test_extract_indented_fence_in_a_list_item() -> None:
    answer = (
        "1. Fix the operator:\n\n   ```python\n   def add(a, b):\n       return a + b\n   ```\n"
    )
    assert extract_code(answer, original=ORIGINAL) == FIX


def test_extract_tilde_fence_with_info_string() -> None:
    answer = f'~~~python title="add.py"\n{FIX}~~~\n'
    assert extract_code(answer, original=ORIGINAL) == FIX


def test_extract_longer_fence_keeps_inner_fences() -> None:
    code = 'DOC = """\n```\nexample\n```\n"""\n'
    assert extract_code(f"````python\n{code}````\n") == code


def test_extract_reopened_fence() -> None:
    assert extract_code(f"```python\n```python\n{FIX}```\n", original=ORIGINAL) == FIX


def test_extract_chatter_inside_the_prefilled_block() -> None:
    answer = f"```python\nHere is the corrected function:\n\n{FIX}\nThis adds the numbers.\n"
    assert extract_code(answer, original=ORIGINAL) == FIX


def test_extract_crlf_answer() -> None:
    assert extract_code("```python\r\n" + FIX.replace("\n", "\r\n") + "```\r\n") == FIX


def test_extract_no_fence() -> None:
    with pytest.raises(AnswerError, match=r"^the model's answer has no code block$"):
        extract_code("The code is correct")


def test_extract_empty_block() -> None:
    with pytest.raises(AnswerError, match="empty code block"):
        extract_code("```python\n\n```\nNothing to change.")
    with pytest.raises(AnswerError, match="empty code block"):
        extract_code("```python\n<|EOT|>")


@pytest.mark.parametrize(
    "chatter",
    [
        "The code looks correct to me.",
        "The code is correct",
        "I don't see any bug in this function.",
        "**Explanation:**",
    ],
)
def test_extract_only_chatter(chatter: str) -> None:
    with pytest.raises(AnswerError, match="the model proposed no change") as error:
        extract_code(f"```python\n{chatter}\n```\n", original=ORIGINAL)
    assert "no code" in str(error.value)


def test_code_lines_are_not_chatter() -> None:
    code = "from typing import Any\nTrue\nValueError\n"
    assert extract_code(f"```python\n{code}```") == code


def test_parse_blocks_reports_tags_and_closing() -> None:
    blocks = parse_blocks('```Python title="x"\na\n```\n~~~\nb\n')
    assert [(b.tag, b.code, b.closed) for b in blocks] == [
        ("python", "a\n", True),
        ("", "b\n", False),
    ]


def test_extract_then_replace_whole_pipeline() -> None:
    answer = f"Here is the corrected function:\n\n```python\n{FIX}```\n\nThe bug was `-`."
    original = DOCUMENT[F_START:F_END]
    code = extract_code(answer, original=original, language_id="python")
    code = code.replace("add(a, b)", "f(x)").replace("a + b", "x + 1")
    new_text, replacements = replace_region(DOCUMENT, F_START, F_END, code, "python")
    (edit,) = to_text_edits(DOCUMENT, replacements)
    assert (edit.range.start.line, edit.range.start.character, edit.new_text) == (4, 13, "+")
    assert new_text == DOCUMENT.replace("x - 1", "x + 1")
