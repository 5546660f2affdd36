"""Golden cases of fix answers: one file per case under tests/golden/fixes (see its README).

Each case runs a model's answer through ``extract_code`` and ``replace_region`` on a region
of a document and checks either the new document and the exact LSP edits (so the minimal
diff is pinned), or the message of the error that refuses the answer.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest
from lsprotocol import types

from lsp_server.fixes.answer import AnswerError, extract_code
from lsp_server.fixes.edits import EditError, replace_region, to_text_edits
from lsp_server.positions import offset_at
from tests.unit.golden import read_case

GOLDEN = Path(__file__).resolve().parent.parent / "golden" / "fixes"
SECTIONS = ("document", "answer", "expected", "edits", "error")
HEADER_KEYS = {"language", "region", "about", "newline"}
NEWLINES = {"lf": "\n", "crlf": "\r\n"}


@dataclass(frozen=True)
class Case:
    """One golden file, parsed."""

    path: Path
    header: dict[str, str]
    sections: dict[str, str]

    @property
    def language(self) -> str:
        return self.header["language"]

    @property
    def newline(self) -> str:
        return NEWLINES[self.header.get("newline", "lf")]

    @property
    def document(self) -> str:
        return self.sections["document"].replace("\n", self.newline)

    @property
    def expected(self) -> str:
        return self.sections["expected"].replace("\n", self.newline)

    @property
    def region(self) -> tuple[int, int]:
        """The region's start and end offsets in the document (its lines, endings included)."""
        first, _, last = self.header["region"].partition("-")
        document = self.document
        start = offset_at(document, int(first) - 1, 0)
        lines = document.splitlines(keepends=True)
        end = start + sum(len(line) for line in lines[int(first) - 1 : int(last)])
        return start, end


def parse(path: Path) -> Case:
    header, sections = read_case(path, SECTIONS)
    return Case(path, header, sections)


def format_edit(edit: types.TextEdit) -> str:
    """``line:character-line:character "new text"``: LSP positions (0-based, UTF-16)."""
    start, end = edit.range.start, edit.range.end
    text = json.dumps(edit.new_text, ensure_ascii=False)
    return f"{start.line}:{start.character}-{end.line}:{end.character} {text}"


def apply_edits(text: str, edits: list[types.TextEdit]) -> str:
    """What an editor does with the edits (all positions refer to the original text)."""
    spans = [
        (
            offset_at(text, edit.range.start.line, edit.range.start.character),
            offset_at(text, edit.range.end.line, edit.range.end.character),
            edit.new_text,
        )
        for edit in edits
    ]
    for start, end, new_text in sorted(spans, reverse=True):
        text = text[:start] + new_text + text[end:]
    return text


CASES = sorted(GOLDEN.rglob("*.txt"))


def _id(path: Path) -> str:
    return str(path.relative_to(GOLDEN))


@pytest.mark.parametrize("path", CASES, ids=_id)
def test_golden(path: Path) -> None:
    assert path.read_text(encoding="utf-8").endswith("\n"), "a golden file ends with a newline"
    case = parse(path)
    assert set(case.header) <= HEADER_KEYS, f"unknown header keys in {path.name}"
    assert {"language", "region", "about"} <= set(case.header)
    assert path.parent.name == case.language
    assert {"document", "answer"} <= set(case.sections)
    outcome = {"expected", "edits"} if "error" not in case.sections else {"error"}
    assert set(case.sections) == {"document", "answer", *outcome}, "expected+edits, or error"

    document = case.document
    start, end = case.region
    try:
        code = extract_code(
            case.sections["answer"], original=document[start:end], language_id=case.language
        )
        new_text, replacements = replace_region(document, start, end, code, case.language)
    except (AnswerError, EditError) as error:
        message = f"{type(error).__name__}: {error}"
        assert "error" in case.sections, f"unexpected {message}"
        assert case.sections["error"] in message
        return
    assert "error" not in case.sections, f"no error, the fix gives:\n{new_text}"
    assert new_text == case.expected
    edits = to_text_edits(document, replacements)
    assert "\n".join(format_edit(edit) for edit in edits) == case.sections["edits"]
    assert apply_edits(document, edits) == new_text
    assert all(start <= r.start <= r.end <= end for r in replacements)


def test_cases_cover_languages_and_outcomes() -> None:
    cases = [parse(path) for path in CASES]
    assert len(cases) >= 16
    languages = {case.language for case in cases}
    assert {"python", "java", "javascript", "go", "typescript"} <= languages
    errors = [case.sections["error"] for case in cases if "error" in case.sections]
    assert any(error.startswith("AnswerError") for error in errors)
    assert any(error.startswith("EditError") for error in errors)
    assert any(case.header.get("newline") == "crlf" for case in cases)
