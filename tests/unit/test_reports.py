"""Test reports on disk to failing tests at workspace lines, replaced report by report."""

from __future__ import annotations

from pathlib import Path

from lsp_server.config import ReportSettings
from lsp_server.fixes.reports import ReportStore
from lsp_server.fixes.under_test import called_names, is_test_file

FAILED = """<?xml version="1.0" encoding="utf-8"?>
<testsuites><testsuite name="pytest" tests="2" failures="1">
<testcase classname="tests.test_calc" name="test_add" file="tests/test_calc.py" line="3">
<failure message="assert -1 == 5">def test_add():
&gt;       assert add(2, 3) == 5
E       assert -1 == 5

tests/test_calc.py:5: AssertionError</failure></testcase>
<testcase classname="tests.test_calc" name="test_ok" file="tests/test_calc.py" line="6"/>
</testsuite></testsuites>
"""
PASSED = FAILED.replace(
    FAILED[FAILED.index("<failure") : FAILED.index("</failure>") + len("</failure>")], ""
)


def workspace(tmp_path: Path) -> Path:
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_calc.py").write_text(
        "from calc import add\n\n\ndef test_add():\n    assert add(2, 3) == 5\n"
    )
    return tmp_path


def test_a_failure_is_placed_at_its_line_and_cleared_when_the_test_passes(tmp_path: Path) -> None:
    root = workspace(tmp_path)
    store = ReportStore([root], ReportSettings())
    report = root / "junit.xml"
    report.write_text(FAILED)
    assert store.scan() == [report]

    touched = store.update([report])

    test_file = str(root / "tests" / "test_calc.py")
    assert touched == {test_file}
    (failing,) = store.problems_in(test_file)
    assert (failing.line, failing.test) == (5, "tests.test_calc::test_add")
    assert "assert -1 == 5" in failing.message and "AssertionError" in failing.details

    report.write_text(PASSED)
    assert store.update([report]) == {test_file}
    assert store.problems_in(test_file) == []


def test_a_deleted_report_clears_its_failures_and_a_broken_one_keeps_them(tmp_path: Path) -> None:
    root = workspace(tmp_path)
    store = ReportStore([root], ReportSettings())
    report = root / "build" / "test-results" / "junit.xml"
    report.parent.mkdir(parents=True)
    report.write_text(FAILED)
    store.update([report])
    test_file = str(root / "tests" / "test_calc.py")

    report.write_text("<testsuites><testsu")  # caught mid-write
    assert store.update([report]) == set()
    assert len(store.problems_in(test_file)) == 1

    report.unlink()
    assert store.update([], [report]) == {test_file}
    assert store.paths() == set()


def test_only_files_named_by_the_settings_are_reports(tmp_path: Path) -> None:
    settings = ReportSettings(reports=["reports/*.xml"], logs=["test.log"])
    store = ReportStore([tmp_path], settings)
    assert store.kind(str(tmp_path / "reports" / "a.xml")) == "junit"
    assert store.kind(str(tmp_path / "test.log")) == "log"
    assert store.kind(str(tmp_path / "junit.xml")) is None
    assert store.kind("/elsewhere/reports/a.xml") is None


def test_plain_logs_are_read_too(tmp_path: Path) -> None:
    root = workspace(tmp_path)
    (root / "calc.py").write_text("def add(a, b):\n    return a[b]\n")
    log = root / "test.log"
    log.write_text(
        "Traceback (most recent call last):\n"
        f'  File "{root}/tests/test_calc.py", line 5, in test_add\n'
        "    assert add(2, 3) == 5\n"
        f'  File "{root}/calc.py", line 2, in add\n'
        "    return a[b]\n"
        "TypeError: 'int' object is not subscriptable\n"
    )
    store = ReportStore([root], ReportSettings(logs=["*.log"]))
    assert store.update([log]) == {str(root / "calc.py")}
    (failing,) = store.problems_in(str(root / "calc.py"))
    assert failing.line == 2 and "not subscriptable" in failing.message


def test_the_code_a_test_calls_is_told_from_the_test() -> None:
    assert called_names("    assert add(2, 3) == normalize(x)", "python") == ["add", "normalize"]
    assert called_names("    self.assertEqual(parse('1'), 1)", "python") == ["parse"]
    assert is_test_file("/ws/tests/helpers.py", "/ws")
    assert is_test_file("/ws/src/calc_test.go", "/ws")
    assert not is_test_file("/home/tests/ws/calc.py", "/home/tests/ws")
