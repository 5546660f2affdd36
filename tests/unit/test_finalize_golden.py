"""Golden cases of ``finalize``: one file per case under tests/golden/finalize (see its README).

Each case checks the final text, and for the rules its header names, that the rule changed
(``changes:``) or left unchanged (``keeps:``) what it was given, running the rules one by
one as ``finalize`` does. A meta-test requires every rule to have both kinds of case.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from lsp_server.completion.postprocess import DEFAULT_STOPS, RULES, Context, finalize
from tests.unit.golden import read_case

GOLDEN = Path(__file__).resolve().parent.parent / "golden" / "finalize"
SECTIONS = ("prefix", "completion", "suffix", "expected")
HEADER_KEYS = {"rule", "language", "about", "changes", "keeps", "single_line", "stop"}
RULE_NAMES = {rule.__name__ for rule in RULES}


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
    def changes(self) -> set[str]:
        return _names(self.header.get("changes", ""))

    @property
    def keeps(self) -> set[str]:
        return _names(self.header.get("keeps", ""))

    @property
    def single_line(self) -> bool | None:
        value = self.header.get("single_line")
        return None if value is None else {"true": True, "false": False}[value]

    @property
    def stop(self) -> tuple[str, ...]:
        value = self.header.get("stop")
        return () if value is None else tuple(value.encode().decode("unicode_escape").split("|"))


def _names(value: str) -> set[str]:
    return {name.strip() for name in value.split(",") if name.strip()}


def parse(path: Path) -> Case:
    header, sections = read_case(path, SECTIONS)
    return Case(path, header, sections)


CASES = sorted(GOLDEN.rglob("*.txt"))


def _id(path: Path) -> str:
    return str(path.relative_to(GOLDEN))


def _trace(case: Case) -> list[tuple[str, str, str]]:
    """(rule name, its input, its output) for every rule ``finalize`` runs on the case."""
    single_line = case.single_line
    if single_line is None:
        single_line = bool(case.sections["suffix"].split("\n", 1)[0].strip())
    context = Context(
        prefix=case.sections["prefix"],
        suffix=case.sections["suffix"],
        language_id=case.language,
        stop=(*case.stop, *DEFAULT_STOPS),
        single_line=single_line,
    )
    steps: list[tuple[str, str, str]] = []
    completion = case.sections["completion"]
    for rule in RULES:
        result = rule(completion, context)
        steps.append((rule.__name__, completion, result))
        completion = result
        if not completion:
            break
    return steps


@pytest.mark.parametrize("path", CASES, ids=_id)
def test_golden(path: Path) -> None:
    assert path.read_text(encoding="utf-8").endswith("\n"), "a golden file ends with a newline"
    case = parse(path)
    assert set(case.header) <= HEADER_KEYS, f"unknown header keys in {path.name}"
    assert set(case.sections) == set(SECTIONS), f"{path.name} needs sections {SECTIONS}"
    assert path.parent.name == case.language
    assert path.name.startswith(case.header["rule"] + "-")
    assert case.header["rule"] in case.changes | case.keeps
    assert case.changes | case.keeps <= RULE_NAMES
    assert not case.changes & case.keeps
    result = finalize(
        case.sections["prefix"],
        case.sections["completion"],
        case.sections["suffix"],
        case.language,
        stop=case.stop,
        single_line=case.single_line,
    )
    assert result == case.sections["expected"]
    steps = {name: (before, after) for name, before, after in _trace(case)}
    for name in case.changes:
        assert name in steps, f"{name} never ran"
        assert steps[name][0] != steps[name][1], f"{name} changed nothing"
    for name in case.keeps:
        assert name in steps, f"{name} never ran"
        assert steps[name][0] == steps[name][1], f"{name} changed {steps[name][0]!r}"


def test_every_rule_changes_and_keeps() -> None:
    cases = [parse(path) for path in CASES]
    changed = set().union(*(case.changes for case in cases))
    kept = set().union(*(case.keeps for case in cases))
    assert RULE_NAMES - changed == set(), "rules without a case where they change the output"
    assert RULE_NAMES - kept == set(), "rules without a case where they must not change it"


def test_languages_covered() -> None:
    languages = {parse(path).language for path in CASES}
    assert {"python", "java", "cpp", "go"} <= languages
    assert languages & {"javascript", "typescript", "javascriptreact", "typescriptreact"}
