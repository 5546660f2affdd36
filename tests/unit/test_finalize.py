"""Post-processing rules of ``finalize``, one table per rule."""

import pytest

from lsp_server.completion.postprocess import finalize


@pytest.mark.parametrize(
    ("completion", "stop", "expected"),
    [
        pytest.param("x = 1\n", (), "x = 1", id="no-stop"),
        pytest.param("a()\nb()\n\n\nc()", (), "a()\nb()", id="default-three-newlines"),
        pytest.param("a()\n\nb()", (), "a()\n\nb()", id="one-blank-line-kept"),
        pytest.param("a()\nEND\nb()", ("END",), "a()", id="caller-stop"),
        pytest.param("a()\nX\nY", ("Y", "X"), "a()", id="earliest-stop-wins"),
        pytest.param("a()\nb()", ("",), "a()\nb()", id="empty-stop-ignored"),
        pytest.param("STOPrest", ("STOP",), "", id="stop-at-start"),
    ],
)
def test_cut_at_stop(completion: str, stop: tuple[str, ...], expected: str) -> None:
    assert finalize("def f():\n    ", completion, "\n", "python", stop=stop) == expected


@pytest.mark.parametrize(
    ("completion", "suffix", "single_line", "expected"),
    [
        pytest.param("a, b)\n    c", ")\n", None, "a, b)", id="code-right-of-cursor"),
        pytest.param("a\n    b", "   \nnext", None, "a\n    b", id="only-spaces-right"),
        pytest.param("a\n    b", "", None, "a\n    b", id="end-of-file"),
        pytest.param("a\n    b", "\nnext", None, "a\n    b", id="end-of-line"),
        pytest.param("a\n    b", "\r\nnext", None, "a\n    b", id="end-of-crlf-line"),
        pytest.param("a\n    b", "\n", True, "a", id="forced-single"),
        pytest.param("a\n    b", ")\n", False, "a\n    b", id="forced-multi"),
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
