"""Post-processing rules of ``finalize``, one table per rule."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lsp_server.completion.postprocess import finalize
from lsp_server.completion.syntax import error_count

CODE_CHARS = "ab1 _():{}[],;=\n\t\"'#/"


@pytest.mark.parametrize(
    ("completion", "stop", "expected"),
    [
        pytest.param("x = 1\n", (), "x = 1", id="no-stop"),
        pytest.param("a()\n    b()\n\n\n    c()", (), "a()\n    b()", id="default-three-newlines"),
        pytest.param("a()\n\n    b()", (), "a()\n\n    b()", id="one-blank-line-kept"),
        pytest.param("a()\nEND\nb()", ("END",), "a()", id="caller-stop"),
        pytest.param("a()\nX\nY", ("Y", "X"), "a()", id="earliest-stop-wins"),
        pytest.param("a()\n    b()", ("",), "a()\n    b()", id="empty-stop-ignored"),
        pytest.param("STOPrest", ("STOP",), "", id="stop-at-start"),
    ],
)
def test_cut_at_stop(completion: str, stop: tuple[str, ...], expected: str) -> None:
    assert finalize("def f():\n    ", completion, "\n", "python", stop=stop) == expected


@pytest.mark.parametrize(
    ("completion", "suffix", "single_line", "expected"),
    [
        pytest.param("a, b)\n    c", ")\n", None, "a, b", id="code-right-of-cursor"),
        pytest.param("a,\n    b", "   \nnext", None, "a,\n    b", id="only-spaces-right"),
        pytest.param("a,\n    b", "", None, "a,\n    b", id="end-of-file"),
        pytest.param("a,\n    b", "\nnext", None, "a,\n    b", id="end-of-line"),
        pytest.param("a,\n    b", "\r\nnext", None, "a,\n    b", id="end-of-crlf-line"),
        pytest.param("a,\n    b", "\n", True, "a,", id="forced-single"),
        pytest.param("a,\n    b", ")\n", False, "a,\n    b", id="forced-multi"),
        pytest.param("\n    b", ")\n", None, "", id="first-line-empty"),
    ],
)
def test_single_line(completion: str, suffix: str, single_line: bool | None, expected: str) -> None:
    result = finalize("print(", completion, suffix, "python", single_line=single_line)
    assert result == expected


@pytest.mark.parametrize(
    "completion",
    [
        pytest.param("", id="empty"),
        pytest.param("   ", id="spaces"),
        pytest.param("\n\t\n  ", id="mixed-whitespace"),
        pytest.param("\n\n\nx = 1", id="empty-before-stop"),
    ],
)
def test_blank_dropped(completion: str) -> None:
    assert finalize("x = ", completion, "\n", "python") == ""


@pytest.mark.parametrize(
    ("completion", "expected"),
    [
        pytest.param("x = 1   ", "x = 1", id="spaces"),
        pytest.param("x = 1\n", "x = 1", id="newline"),
        pytest.param("x = 1\n    ", "x = 1", id="newline-and-indent"),
        pytest.param("x = 1\r\n", "x = 1", id="crlf"),
        pytest.param("a  \n    b \t", "a  \n    b", id="inner-lines-untouched"),
        pytest.param("\n    return x\n", "\n    return x", id="leading-newline-kept"),
        pytest.param("    return x", "    return x", id="leading-indent-kept"),
    ],
)
def test_trailing_whitespace(completion: str, expected: str) -> None:
    assert finalize("def f(x):", completion, "\n", "python") == expected


def test_rules_apply_in_order() -> None:
    # Stop cut first, then single line, then trailing whitespace (of the end only).
    raw = "foo(a,   \nbar)<END>baz"
    assert finalize("x = ", raw, "\n", "python", stop=["<END>"]) == "foo(a,   \nbar)"
    assert finalize("x = ", raw, " # note\n", "python", stop=["<END>"]) == "foo(a,"


def test_language_agnostic() -> None:
    raw = "return a;\n}\n\n\nfunction g() {}"
    assert finalize("function f(a) {\n  ", raw, "\n", "javascript") == "return a;\n}"


def test_plaintext_uses_language_agnostic_rules() -> None:
    prefix = "# Shopping\n\n- apples\n- "
    raw = "pears\n- pears\n- pears\n\n\n# Other"
    assert finalize(prefix, raw, "\n", "plaintext") == "pears"
    # No grammar, no lexer: brackets and syntax are left alone.
    assert finalize("See (", "the notes) and (more", "\n", "plaintext") == "the notes) and (more"


def test_syntax_counts() -> None:
    assert error_count("plaintext", "anything (") is None
    assert error_count("python", "x = (1,\n") == 1
    assert error_count("python", "x = (1,)\n") == 0


def test_the_syntax_check_parses_a_few_lines_after_the_cursor(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A parse recovering from an error costs as much as the text after it: the check parses
    `SYNTAX_AFTER_LINES` lines after the cursor and on to the next top-level statement,
    which still show what a completion breaks."""
    from lsp_server.completion import postprocess, syntax

    parsed: list[str] = []
    counted = syntax.error_count.__wrapped__

    def spy(language_id: str, text: str) -> int | None:
        parsed.append(text)
        return counted(language_id, text)

    prefix = "def f(values):\n    total = 0\n    "
    suffix = "\n    return total\n" + "".join(f"\ndef g{i}():\n    pass\n" for i in range(60))
    monkeypatch.setattr(postprocess, "error_count", spy)
    # An unclosed bracket breaks the def after it: cut to the first line.
    assert finalize(prefix, "for v in (values:\n        total += v", suffix, "python") == (
        "for v in (values:"
    )
    assert parsed
    for text in parsed:
        after = text[text.index("return total") :]
        # Up to the first `def` at least that far down: 40 lines of the 180 here.
        assert (
            postprocess.SYNTAX_AFTER_LINES <= after.count("\n") < postprocess.SYNTAX_AFTER_LINES + 3
        )
        assert after.endswith("    pass\n\n")  # cut right before a `def`


def test_huge_document_is_windowed() -> None:
    prefix = "x = 1\n" * 500_000 + "def f(values):\n    total = 0\n    "
    suffix = "\n    return total\n" + "y = 2\n" * 500_000
    raw = "for v in values:\n        total += v\n    return total\n\nprint(f([1]))"
    # Rules look at windows around the cursor (the suffix's next line, the enclosing def).
    result = finalize(prefix, raw, suffix, "python")
    assert result == "for v in values:\n        total += v"


@settings(max_examples=150, deadline=None)
@given(
    prefix=st.text(alphabet=CODE_CHARS, max_size=40),
    completion=st.text(alphabet=CODE_CHARS, max_size=60),
    suffix=st.text(alphabet=CODE_CHARS, max_size=40),
    language_id=st.sampled_from(["python", "javascript", "java", "cpp", "go", "plaintext"]),
)
def test_result_is_a_prefix_of_the_completion(
    prefix: str, completion: str, suffix: str, language_id: str
) -> None:
    # Rules only ever cut the completion's end: nothing is added, nothing moves.
    result = finalize(prefix, completion, suffix, language_id)
    assert completion.startswith(result)
    assert result == result.rstrip()


_LEX_PIECES = [
    *("x", "(", ")", "[", "]", "{", "}", '"', "'", "#", "\n", " ", "'''", '"""', "/*", "*/"),
    *("//", "`", "f", "r", "\\", "ab_c", "é", "1", "\n\n", "$", "=", ".", "*", "/", ":"),
]


@pytest.mark.parametrize("family", ["python", "js", "c", "go", "rust"])
def test_the_word_at_the_cursor_changes_no_lexer_state(family: str) -> None:
    """Bracket counts are lexed without the word being typed at the cursor (so they are
    reused over its keystrokes): exactly what lexing with it gives, over random texts of
    quotes, comments, escapes and brackets (seeded)."""
    import random
    from unittest import mock

    from lsp_server.completion import postprocess

    rng = random.Random(family)

    def text(n: int) -> str:
        return "".join(rng.choice(_LEX_PIECES) for _ in range(rng.randrange(n)))

    for _ in range(12_000):
        before = text(25) + "".join(rng.choice("abc_$1é") for _ in range(rng.randrange(4)))
        after, completion = text(25), text(10)
        deficit = postprocess._bracket_deficit(before, after, family)
        scan = postprocess._scan(before, completion, family)
        with mock.patch.object(postprocess, "_word_start", len):
            assert postprocess._bracket_deficit(before, after, family) == deficit, before
            whole = postprocess._scan(before, completion, family)
        assert (whole.open, whole.events, whole.spans) == (scan.open, scan.events, scan.spans)


def _next_line_indent_lexing_everything(before: str, after: str, family: str | None) -> int:
    """The reference: the whole suffix lexed at once."""
    from lsp_server.completion.postprocess import (
        _continues_block,
        _indent,
        _inside_spans,
        _lines,
    )

    inside = _inside_spans(before, after, family)
    for start, line in _lines(after)[1:]:
        if line.strip() and not inside(start):
            return _indent(line) + (1 if _continues_block(line) else 0)
    return 0


@pytest.mark.parametrize("seed", range(40))
def test_the_suffixs_next_line_is_found_lexing_only_its_start(seed: int) -> None:
    """The suffix is lexed a piece at a time; a string, comment or bracket that runs past a
    piece's end must hide the lines inside it all the same."""
    import random

    from lsp_server.completion.postprocess import _next_line_indent

    rng = random.Random(seed)
    pieces = [
        "\n",
        "    # a comment line\n",
        '    """A docstring\n' + "    that goes on\n" * rng.randint(1, 400) + '    """\n',
        "    call(\n" + "        argument,\n" * rng.randint(1, 400) + "    )\n",
        "x" * rng.randint(1, 3000) + "\n",
        "        return value\n",
        "    else:\n",
    ]
    after = "".join(rng.choice(pieces) for _ in range(rng.randint(1, 12)))
    before = rng.choice(["def f():\n    ", "def f():\n    x = (\n", 'def f():\n    s = """\n'])
    assert _next_line_indent(before, after, "python") == _next_line_indent_lexing_everything(
        before, after, "python"
    )
