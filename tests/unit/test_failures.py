"""Failing-test reports: JUnit XML and plain logs into failures with frames, frames into files."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from lsp_server.fixes.failures import (
    MAX_DETAILS,
    MAX_MESSAGE,
    Failure,
    Frame,
    FrameResolver,
    ReportError,
    java_frame,
    parse_junit,
    parse_log,
)


def make(root: Path, files: dict[str, str]) -> None:
    for rel, content in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)


def lines_of(failure: Failure) -> list[tuple[str, int]]:
    return [(f.path, f.line) for f in failure.frames]


# --- JUnit XML: pytest ----------------------------------------------------------------------

# `pytest --junitxml` (pytest 9), long tracebacks: a failing assert, an error raised two calls
# down in calc.py, a class test, a pass and a skip.
PYTEST_JUNIT = b"""\
<?xml version="1.0" encoding="utf-8"?><testsuites name="pytest tests"><testsuite name="pytest" \
errors="0" failures="3" skipped="1" tests="5" time="0.070" \
timestamp="2025-11-29T12:27:23.981893+00:00" \
hostname="dev"><testcase classname="tests.test_calc" name="test_add" time="0.001"><failure \
message="assert -1 == 5&#10; +  where -1 = add(2, 3)">def test_add():
&gt;       assert add(2, 3) == 5
E       assert -1 == 5
E        +  where -1 = add(2, 3)

tests/test_calc.py:6: AssertionError</failure></testcase><testcase classname="tests.test_calc" \
name="test_div" time="0.000"><failure message="ZeroDivisionError: division by zero">def test_div():
&gt;       assert div(1, 0) == 0
               ^^^^^^^^^

tests/test_calc.py:10: \n\
_ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ \n\
calc.py:6: in div
    return helper(a, b)
           ^^^^^^^^^^^^
_ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ \n\

a = 1, b = 0

    def helper(a, b):
&gt;       return a / b
               ^^^^^
E       ZeroDivisionError: division by zero

calc.py:10: ZeroDivisionError</failure></testcase><testcase classname="tests.test_calc" \
name="test_ok" time="0.000" /><testcase classname="tests.test_calc" name="test_skip" time="0.000">\
<skipped type="pytest.skip" message="later">/work/proj/tests/test_calc.py:17: later</skipped>\
</testcase><testcase classname="tests.test_calc.TestK" name="test_m" time="0.001"><failure \
message="AssertionError: assert {'a': 1} == {'a': 2}&#10;  &#10;  Differing items:&#10;  \
{'a': 1} != {'a': 2}&#10;  Use -v to get more diff">\
self = &lt;test_calc.TestK object at 0x7f2eb4c45650&gt;

    def test_m(self):
        x = {"a": 1}
&gt;       assert x == {"a": 2}
E       AssertionError: assert {'a': 1} == {'a': 2}
E         \n\
E         Differing items:
E         {'a': 1} != {'a': 2}
E         Use -v to get more diff

tests/test_calc.py:25: AssertionError</failure></testcase></testsuite></testsuites>"""

# The same run with `--tb=native`: pytest's own frames lead the traceback.
PYTEST_JUNIT_NATIVE = b"""\
<?xml version="1.0" encoding="utf-8"?><testsuites name="pytest tests"><testsuite name="pytest" \
errors="1" failures="0" skipped="0" tests="1" time="0.082" \
timestamp="2025-11-29T12:27:26.389415+00:00" \
hostname="dev"><testcase classname="tests.test_calc" name="test_div" time="0.001"><error \
message="failed on setup with &quot;ZeroDivisionError: division by zero&quot;">\
Traceback (most recent call last):
  File "/work/proj/.venv/lib/python3.11/site-packages/_pytest/runner.py", line 361, in from_call
    result: TResult | None = func()
                             ^^^^^^
  File "/work/proj/.venv/lib/python3.11/site-packages/pluggy/_callers.py", line 103, in _multicall
    res = hook_impl.function(*args)
          ^^^^^^^^^^^^^^^^^^^^^^^^^
  File "/work/proj/.venv/lib/python3.11/site-packages/_pytest/python.py", line 187, \
in pytest_pyfunc_call
    result = testfunction(**testargs)
             ^^^^^^^^^^^^^^^^^^^^^^^^
  File "/work/proj/tests/test_calc.py", line 10, in test_div
    assert div(1, 0) == 0
           ^^^^^^^^^
  File "/work/proj/calc.py", line 6, in div
    return helper(a, b)
           ^^^^^^^^^^^^
  File "/work/proj/calc.py", line 10, in helper
    return a / b
           ~~^~~
ZeroDivisionError: division by zero</error></testcase></testsuite></testsuites>"""


def test_pytest_junit_long_repr() -> None:
    run = parse_junit(PYTEST_JUNIT)
    assert [f.test for f in run.failures] == [
        "tests.test_calc::test_add",
        "tests.test_calc::test_div",
        "tests.test_calc.TestK::test_m",
    ]
    add, div, method = run.failures
    assert add.message == "AssertionError: assert -1 == 5"
    assert add.frames == (Frame("tests/test_calc.py", 6, "test_add"),)
    assert div.message == "ZeroDivisionError: division by zero"
    assert div.frames == (
        Frame("tests/test_calc.py", 10, "test_div"),
        Frame("calc.py", 6, "div"),
        Frame("calc.py", 10, "helper"),
    )
    assert method.message == "AssertionError: assert {'a': 1} == {'a': 2}"
    assert lines_of(method) == [("tests/test_calc.py", 25)]
    assert add.details.endswith("tests/test_calc.py:6: AssertionError")
    assert run.passed == ("tests.test_calc::test_ok",)  # the skipped test is in neither list


def test_pytest_junit_native_traceback() -> None:
    (failure,) = parse_junit(PYTEST_JUNIT_NATIVE).failures
    assert failure.test == "tests.test_calc::test_div"
    assert failure.message == "ZeroDivisionError: division by zero"
    assert failure.frames[0].function == "from_call"
    assert failure.frames[-3:] == (
        Frame("/work/proj/tests/test_calc.py", 10, "test_div"),
        Frame("/work/proj/calc.py", 6, "div"),
        Frame("/work/proj/calc.py", 10, "helper"),
    )


# --- JUnit XML: Maven Surefire ----------------------------------------------------------------

SUREFIRE_JUNIT = b"""\
<?xml version="1.0" encoding="UTF-8"?>
<testsuite xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" \
xsi:noNamespaceSchemaLocation="https://maven.apache.org/surefire/\
maven-surefire-plugin/xsd/surefire-test-report-3.0.xsd" \
version="3.0" name="com.example.CalcTest" time="0.041" tests="4" errors="1" skipped="1" \
failures="1">
  <properties>
    <property name="java.version" value="17.0.15"/>
    <property name="os.name" value="Linux"/>
  </properties>
  <testcase name="testAdd" classname="com.example.CalcTest" time="0.012">
    <failure message="expected: &lt;5&gt; but was: &lt;-1&gt;" \
type="org.opentest4j.AssertionFailedError"><![CDATA[org.opentest4j.AssertionFailedError: \
expected: <5> but was: <-1>
\tat org.junit.jupiter.api.AssertionFailureBuilder.build(AssertionFailureBuilder.java:151)
\tat org.junit.jupiter.api.AssertionFailureBuilder.buildAndThrow(AssertionFailureBuilder.java:132)
\tat org.junit.jupiter.api.AssertEquals.failNotEqual(AssertEquals.java:197)
\tat org.junit.jupiter.api.AssertEquals.assertEquals(AssertEquals.java:150)
\tat org.junit.jupiter.api.AssertEquals.assertEquals(AssertEquals.java:145)
\tat org.junit.jupiter.api.Assertions.assertEquals(Assertions.java:531)
\tat com.example.CalcTest.testAdd(CalcTest.java:12)
\tat java.base/jdk.internal.reflect.NativeMethodAccessorImpl.invoke0(Native Method)
\tat java.base/java.lang.reflect.Method.invoke(Method.java:568)
\tat java.base/java.util.ArrayList.forEach(ArrayList.java:1511)
]]></failure>
    <system-out><![CDATA[adding 2 and 3
]]></system-out>
  </testcase>
  <testcase name="testLoad" classname="com.example.CalcTest" time="0.003">
    <error message="config broken" type="java.lang.IllegalStateException">\
<![CDATA[java.lang.IllegalStateException: config broken
\tat com.example.Config.load(Config.java:31)
\tat com.example.CalcTest.testLoad(CalcTest.java:20)
\tat java.base/java.lang.reflect.Method.invoke(Method.java:568)
Caused by: java.lang.NumberFormatException: For input string: "x"
\tat java.base/java.lang.NumberFormatException.forInputString(NumberFormatException.java:67)
\tat java.base/java.lang.Integer.parseInt(Integer.java:668)
\tat com.example.Config$Parser.parse(Config.java:12)
\tat com.example.Config.load(Config.java:29)
\t... 2 more
]]></error>
  </testcase>
  <testcase name="testSub" classname="com.example.CalcTest" time="0.001"/>
  <testcase name="testLater" classname="com.example.CalcTest" time="0">
    <skipped message="not yet"/>
  </testcase>
</testsuite>
"""


def test_surefire_junit() -> None:
    run = parse_junit(SUREFIRE_JUNIT)
    add, load = run.failures
    assert add.test == "com.example.CalcTest::testAdd"
    assert add.message == "org.opentest4j.AssertionFailedError: expected: <5> but was: <-1>"
    # Java prints innermost first; frames come outermost first, native frames dropped.
    assert add.frames[0] == Frame("java/util/ArrayList.java", 1511, "java.util.ArrayList.forEach")
    assert Frame("com/example/CalcTest.java", 12, "com.example.CalcTest.testAdd") in add.frames
    assert not any(f.function.endswith("invoke0") for f in add.frames)
    assert add.frames[-1].function == "org.junit.jupiter.api.AssertionFailureBuilder.build"
    # An <error> is a failure too; the innermost cause carries the deepest frame, and its
    # "... 2 more" frames are the outer trace's last two.
    assert load.test == "com.example.CalcTest::testLoad"
    assert load.message == 'java.lang.NumberFormatException: For input string: "x"'
    assert lines_of(load) == [
        ("java/lang/reflect/Method.java", 568),
        ("com/example/CalcTest.java", 20),
        ("com/example/Config.java", 29),
        ("com/example/Config.java", 12),
        ("java/lang/Integer.java", 668),
        ("java/lang/NumberFormatException.java", 67),
    ]
    assert run.passed == ("com.example.CalcTest::testSub",)


# --- JUnit XML: Go ---------------------------------------------------------------------------

GO_JUNIT_REPORT = b"""\
<?xml version="1.0" encoding="UTF-8"?>
<testsuites tests="3" failures="1" skipped="1">
\t<testsuite name="example.com/calc" tests="3" failures="1" errors="0" id="0" hostname="dev" \
skipped="1" time="0.003" timestamp="2025-05-01T10:00:00Z">
\t\t<properties>
\t\t\t<property name="go.version" value="go1.22.2 linux/amd64"></property>
\t\t</properties>
\t\t<testcase name="TestAdd" classname="example.com/calc" time="0.000">
\t\t\t<failure message="Failed"><![CDATA[    calc_test.go:12: Add(2, 3) = -1, want 5]]></failure>
\t\t</testcase>
\t\t<testcase name="TestSub" classname="example.com/calc" time="0.000"></testcase>
\t\t<testcase name="TestSkip" classname="example.com/calc" time="0.000">
\t\t\t<skipped message="Skipped"><![CDATA[    calc_test.go:25: not ready]]></skipped>
\t\t</testcase>
\t</testsuite>
</testsuites>
"""

GOTESTSUM_JUNIT = b"""\
<?xml version="1.0" encoding="UTF-8"?>
<testsuites tests="2" failures="1" errors="0" time="0.412000">
\t<testsuite tests="2" failures="1" time="0.004000" name="example.com/calc" \
timestamp="2025-05-01T10:00:00Z">
\t\t<properties>
\t\t\t<property name="go.version" value="go1.22.2 linux/amd64"></property>
\t\t</properties>
\t\t<testcase classname="example.com/calc" name="TestSub" time="0.000000"></testcase>
\t\t<testcase classname="example.com/calc" name="TestAdd" time="0.000000">
\t\t\t<failure message="Failed" type="">=== RUN   TestAdd&#xA;    calc_test.go:11: checking&#xA;\
    calc_test.go:12: Add(2, 3) = -1, want 5&#xA;--- FAIL: TestAdd (0.00s)&#xA;</failure>
\t\t</testcase>
\t</testsuite>
</testsuites>
"""


@pytest.mark.parametrize(
    ("report", "frames"),
    [
        pytest.param(GO_JUNIT_REPORT, [("calc_test.go", 12)], id="go-junit-report"),
        pytest.param(GOTESTSUM_JUNIT, [("calc_test.go", 11), ("calc_test.go", 12)], id="gotestsum"),
    ],
)
def test_go_junit(report: bytes, frames: list[tuple[str, int]]) -> None:
    run = parse_junit(report)
    (failure,) = run.failures
    assert failure.test == "example.com/calc::TestAdd"
    assert failure.message == "Add(2, 3) = -1, want 5"
    assert lines_of(failure) == frames
    assert run.passed == ("example.com/calc::TestSub",)


# googletest's `--gtest_output=xml`: one <failure> per failed assertion, file/line attributes.
GTEST_JUNIT = b"""\
<?xml version="1.0" encoding="UTF-8"?>
<testsuites tests="3" failures="1" disabled="1" errors="0" time="0." \
timestamp="2025-05-01T10:00:00.000" name="AllTests">
  <testsuite name="CalcTest" tests="3" failures="1" disabled="1" skipped="0" errors="0" \
time="0." timestamp="2025-05-01T10:00:00.000">
    <testcase name="Add" file="/home/dev/calc/calc_test.cc" line="6" status="run" \
result="completed" time="0." timestamp="2025-05-01T10:00:00.000" classname="CalcTest">
      <failure message="/home/dev/calc/calc_test.cc:8&#x0A;Expected equality of these \
values:&#x0A;  add(2, 3)&#x0A;    Which is: -1&#x0A;  5&#x0A;" type=""><![CDATA[\
/home/dev/calc/calc_test.cc:8
Expected equality of these values:
  add(2, 3)
    Which is: -1
  5
]]></failure>
    </testcase>
    <testcase name="Sub" file="/home/dev/calc/calc_test.cc" line="11" status="run" \
result="completed" time="0." timestamp="2025-05-01T10:00:00.000" classname="CalcTest" />
    <testcase name="DISABLED_Mul" file="/home/dev/calc/calc_test.cc" line="15" status="notrun" \
result="suppressed" time="0." timestamp="2025-05-01T10:00:00.000" classname="CalcTest" />
  </testsuite>
</testsuites>
"""


def test_gtest_junit() -> None:
    run = parse_junit(GTEST_JUNIT)
    (failure,) = run.failures
    assert failure.test == "CalcTest::Add"
    assert failure.frames == (Frame("/home/dev/calc/calc_test.cc", 8),)
    assert failure.message == "Expected equality of these values: add(2, 3) Which is: -1 5"
    assert (failure.file, failure.line) == ("/home/dev/calc/calc_test.cc", 6)
    assert run.passed == ("CalcTest::Sub",)


def test_junit_root_testsuite_nested_and_bare_failures() -> None:
    report = b"""<?xml version="1.0"?>
<testsuite name="outer">
  <testsuite name="inner" file="spec/calc.spec.js">
    <testcase name="adds" classname="calc">
      <failure message="boom" type="AssertionError"/>
    </testcase>
    <testcase name="no class"><error type="TimeoutError"/></testcase>
    <testcase name="subtracts" classname="calc"/>
  </testsuite>
  <testcase name="top" classname="outer"/>
</testsuite>"""
    run = parse_junit(report)
    adds, timeout = run.failures
    assert (adds.test, adds.message, adds.frames) == ("calc::adds", "AssertionError: boom", ())
    assert adds.file == "spec/calc.spec.js"
    assert (timeout.test, timeout.message) == ("inner::no class", "TimeoutError")
    assert run.passed == ("calc::subtracts", "outer::top")


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b"", id="empty"),
        pytest.param(b"<testsuites><testsuite>", id="truncated"),
        pytest.param(b"not xml at all", id="text"),
        pytest.param(b"<testsuite><testcase name='a'></testsuite>", id="mismatched"),
        pytest.param(b"<html><body/></html>", id="not-junit"),
    ],
)
def test_junit_malformed(data: bytes) -> None:
    with pytest.raises(ReportError):
        parse_junit(data)


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(
            b'<?xml version="1.0"?>\n<!DOCTYPE lolz [\n <!ENTITY lol "lol">\n'
            b' <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">\n]>\n'
            b'<testsuite><testcase name="a"><failure message="&lol2;"/></testcase></testsuite>',
            id="billion-laughs",
        ),
        pytest.param(
            b'<!-- generated -->\n<!doctype testsuite SYSTEM "file:///etc/passwd">\n<testsuite/>',
            id="external-after-comment",
        ),
    ],
)
def test_junit_doctype_refused(data: bytes) -> None:
    with pytest.raises(ReportError, match="DOCTYPE"):
        parse_junit(data)


def test_junit_doctype_text_inside_cdata_is_fine() -> None:
    report = b"""<testsuite><testcase classname="t" name="html"><failure><![CDATA[\
AssertionError: '<!DOCTYPE html>' != '<html>'
]]></failure></testcase></testsuite>"""
    (failure,) = parse_junit(report).failures
    assert failure.message == "AssertionError: '<!DOCTYPE html>' != '<html>'"


# --- logs: Python ----------------------------------------------------------------------------

PY_CHAINED = """\
Traceback (most recent call last):
  File "/work/proj/app/config.py", line 6, in load
    return json.loads(text)
           ^^^^^^^^^^^^^^^^
  File "/usr/lib/python3.11/json/__init__.py", line 346, in loads
    return _default_decoder.decode(s)
           ^^^^^^^^^^^^^^^^^^^^^^^^^^
  File "/usr/lib/python3.11/json/decoder.py", line 353, in raw_decode
    obj, end = self.scan_once(s, idx)
               ^^^^^^^^^^^^^^^^^^^^^^
json.decoder.JSONDecodeError: Expecting property name enclosed in double quotes: \
line 1 column 2 (char 1)

The above exception was the direct cause of the following exception:

Traceback (most recent call last):
  File "/work/proj/main.py", line 11, in <module>
    load("{")
  File "/work/proj/app/config.py", line 8, in load
    raise RuntimeError("bad config") from exc
RuntimeError: bad config
"""

# `pytest -v` console output (pytest 9, default long tracebacks).
PYTEST_CONSOLE = """\
============================= test session starts ==============================
platform linux -- Python 3.11.7, pytest-9.2.0, pluggy-1.7.0 -- /work/proj/.venv/bin/python
rootdir: /work/proj
collecting ... collected 5 items

tests/test_calc.py::test_add FAILED                                      [ 20%]
tests/test_calc.py::test_div FAILED                                      [ 40%]
tests/test_calc.py::test_ok PASSED                                       [ 60%]
tests/test_calc.py::test_skip SKIPPED (later)                            [ 80%]
tests/test_calc.py::TestK::test_m FAILED                                 [100%]

=================================== FAILURES ===================================
___________________________________ test_add ___________________________________

    def test_add():
>       assert add(2, 3) == 5
E       assert -1 == 5
E        +  where -1 = add(2, 3)

tests/test_calc.py:6: AssertionError
___________________________________ test_div ___________________________________

    def test_div():
>       assert div(1, 0) == 0
               ^^^^^^^^^

tests/test_calc.py:10: \n\
_ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ \n\
calc.py:6: in div
    return helper(a, b)
           ^^^^^^^^^^^^
_ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ \n\

a = 1, b = 0

    def helper(a, b):
>       return a / b
               ^^^^^
E       ZeroDivisionError: division by zero

calc.py:10: ZeroDivisionError
----------------------------- Captured stdout call -----------------------------
dividing tests/fake.py:99: in nowhere
_________________________________ TestK.test_m _________________________________

self = <test_calc.TestK object at 0x7f2eb4c45650>

    def test_m(self):
        x = {"a": 1}
>       assert x == {"a": 2}
E       AssertionError: assert {'a': 1} == {'a': 2}
E         \n\
E         Differing items:
E         {'a': 1} != {'a': 2}
E         Use -v to get more diff

tests/test_calc.py:25: AssertionError
=========================== short test summary info ============================
FAILED tests/test_calc.py::test_add - assert -1 == 5
FAILED tests/test_calc.py::test_div - ZeroDivisionError: division by zero
FAILED tests/test_calc.py::TestK::test_m - AssertionError: assert {'a': 1} ==...
ERROR tests/test_other.py::test_db - RuntimeError: no database
==================== 3 failed, 1 passed, 1 skipped, 1 error in 0.07s ====================
"""

PYTEST_SHORT = """\
=================================== FAILURES ===================================
___________________________________ test_div ___________________________________
tests/test_calc.py:10: in test_div
    assert div(1, 0) == 0
calc.py:6: in div
    return helper(a, b)
calc.py:10: in helper
    return a / b
E   ZeroDivisionError: division by zero
=========================== short test summary info ============================
FAILED tests/test_calc.py::test_div - ZeroDivisionError: division by zero
============================== 1 failed in 0.03s ===============================
"""

PYTEST_NATIVE = """\
=================================== FAILURES ===================================
___________________________________ test_div ___________________________________
Traceback (most recent call last):
  File "/work/proj/tests/test_calc.py", line 10, in test_div
    assert div(1, 0) == 0
           ^^^^^^^^^
  File "/work/proj/calc.py", line 6, in div
    return helper(a, b)
           ^^^^^^^^^^^^
  File "/work/proj/calc.py", line 10, in helper
    return a / b
           ~~^~~
ZeroDivisionError: division by zero
============================== 1 failed in 0.03s ===============================
"""

UNITTEST = """\
test_add (tests.test_calc.CalcTest.test_add) ... FAIL
test_div (tests.test_calc.CalcTest.test_div) ... ERROR
test_ok (tests.test_calc.CalcTest.test_ok) ... ok

======================================================================
ERROR: test_div (tests.test_calc.CalcTest.test_div)
----------------------------------------------------------------------
Traceback (most recent call last):
  File "/work/proj/tests/test_calc.py", line 10, in test_div
    self.assertEqual(div(1, 0), 0)
                     ^^^^^^^^^
  File "/work/proj/calc.py", line 6, in div
    return helper(a, b)
           ^^^^^^^^^^^^
  File "/work/proj/calc.py", line 10, in helper
    return a / b
           ~~^~~
ZeroDivisionError: division by zero

======================================================================
FAIL: test_add (tests.test_calc.CalcTest.test_add)
----------------------------------------------------------------------
Traceback (most recent call last):
  File "/work/proj/tests/test_calc.py", line 7, in test_add
    self.assertEqual(add(2, 3), 5)
AssertionError: -1 != 5

----------------------------------------------------------------------
Ran 3 tests in 0.001s

FAILED (failures=1, errors=1)
"""


def test_log_python_chained_traceback_takes_the_last() -> None:
    run = parse_log("2025-05-01 10:00:00 ERROR startup failed\n" + PY_CHAINED)
    (failure,) = run.failures
    assert failure.message == "RuntimeError: bad config"
    assert failure.frames == (
        Frame("/work/proj/main.py", 11, "<module>"),
        Frame("/work/proj/app/config.py", 8, "load"),
    )
    assert failure.test == "RuntimeError@/work/proj/app/config.py::load"
    assert "JSONDecodeError" in failure.details  # the whole chain is kept as text
    assert run.passed == ()


def test_log_two_separate_tracebacks() -> None:
    second = (
        'Traceback (most recent call last):\n  File "/w/a.py", line 3, in f\n    g()\nKeyError: 1\n'
    )
    run = parse_log(PY_CHAINED + "\nretrying\n" + second)
    assert [f.message for f in run.failures] == ["RuntimeError: bad config", "KeyError: 1"]


def test_log_pytest_console() -> None:
    run = parse_log(PYTEST_CONSOLE)
    assert [f.test for f in run.failures] == [
        "tests/test_calc.py::test_add",
        "tests/test_calc.py::test_div",
        "tests/test_calc.py::TestK::test_m",
        "tests/test_other.py::test_db",
    ]
    add, div, method, db = run.failures
    assert add.message == "AssertionError: assert -1 == 5"
    assert add.frames == (Frame("tests/test_calc.py", 6, "test_add"),)
    # Captured output after the traceback is not a frame.
    assert lines_of(div) == [("tests/test_calc.py", 10), ("calc.py", 6), ("calc.py", 10)]
    assert method.message == "AssertionError: assert {'a': 1} == {'a': 2}"
    assert lines_of(method) == [("tests/test_calc.py", 25)]
    assert method.details.startswith("_____")
    # A summary line with no section is still a failure, placed by its file.
    assert (db.message, db.frames, db.file) == (
        "RuntimeError: no database",
        (),
        "tests/test_other.py",
    )
    assert run.passed == ("tests/test_calc.py::test_ok",)


@pytest.mark.parametrize(
    ("text", "frames"),
    [
        pytest.param(
            PYTEST_SHORT,
            [("tests/test_calc.py", 10), ("calc.py", 6), ("calc.py", 10)],
            id="tb-short",
        ),
        pytest.param(
            PYTEST_NATIVE,
            [
                ("/work/proj/tests/test_calc.py", 10),
                ("/work/proj/calc.py", 6),
                ("/work/proj/calc.py", 10),
            ],
            id="tb-native",
        ),
    ],
)
def test_log_pytest_other_traceback_styles(text: str, frames: list[tuple[str, int]]) -> None:
    (failure,) = parse_log(text).failures
    assert failure.message == "ZeroDivisionError: division by zero"
    assert lines_of(failure) == frames
    assert failure.frames[-1].function == "helper"


# pytest's ERRORS section: a collection error, and setup errors (a raising fixture, and a
# missing one, whose location line has no message).
PYTEST_COLLECTION_ERROR = """\
==================================== ERRORS ====================================
______________________ ERROR collecting tests/test_bad.py ______________________
ImportError while importing test module '/work/proj/tests/test_bad.py'.
Hint: make sure your test modules/packages have valid Python names.
Traceback:
/usr/lib/python3.11/importlib/__init__.py:126: in import_module
    return _bootstrap._gcd_import(name[level:], package, level)
           ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^
tests/test_bad.py:1: in <module>
    import nonexistent_module
E   ModuleNotFoundError: No module named 'nonexistent_module'
=========================== short test summary info ============================
ERROR tests/test_bad.py
!!!!!!!!!!!!!!!!!!!! Interrupted: 1 error during collection !!!!!!!!!!!!!!!!!!!!
=============================== 1 error in 0.14s ===============================
"""

PYTEST_SETUP_ERRORS = """\
tests/test_e.py EE                                                       [100%]

==================================== ERRORS ====================================
__________________________ ERROR at setup of test_db ___________________________

    @pytest.fixture
    def db():
>       raise RuntimeError("no database")
E       RuntimeError: no database

tests/test_e.py:6: RuntimeError
________________________ ERROR at setup of test_missing ________________________
file /work/proj/tests/test_e.py, line 13
  def test_missing(nothing):
E       fixture 'nothing' not found
>       available fixtures: capfd, capsys, caplog, db, monkeypatch, tmp_path
>       use 'pytest --fixtures [testpath]' for help on them.

/work/proj/tests/test_e.py:13
=========================== short test summary info ============================
ERROR tests/test_e.py::test_db - RuntimeError: no database
ERROR tests/test_e.py::test_missing
============================== 2 errors in 0.03s ===============================
"""


def test_log_pytest_errors() -> None:
    (collect,) = parse_log(PYTEST_COLLECTION_ERROR).failures
    assert collect.test == "tests/test_bad.py"
    assert collect.message == "ModuleNotFoundError: No module named 'nonexistent_module'"
    assert collect.frames[-1] == Frame("tests/test_bad.py", 1, "<module>")
    db, missing = parse_log(PYTEST_SETUP_ERRORS).failures
    assert (db.test, db.message) == ("tests/test_e.py::test_db", "RuntimeError: no database")
    assert db.frames == (Frame("tests/test_e.py", 6, "db"),)
    assert (missing.test, missing.message) == (
        "tests/test_e.py::test_missing",
        "fixture 'nothing' not found",
    )
    assert missing.frames == (Frame("/work/proj/tests/test_e.py", 13, "test_missing"),)


def test_log_repeated_runs_are_not_doubled() -> None:
    run = parse_log(GO_TEST_VERBOSE + GO_TEST_VERBOSE + PYTEST_CONSOLE + PYTEST_CONSOLE)
    assert [f.test for f in run.failures].count("TestAdd") == 1
    assert [f.test for f in run.failures].count("tests/test_calc.py::test_div") == 1
    add = next(f for f in run.failures if f.test == "TestAdd")
    assert lines_of(add) == [("calc_test.go", 11), ("calc_test.go", 12)]


def test_log_unittest() -> None:
    run = parse_log(UNITTEST)
    div, add = run.failures
    assert div.test == "tests.test_calc.CalcTest::test_div"
    assert div.message == "ZeroDivisionError: division by zero"
    assert lines_of(div)[-1] == ("/work/proj/calc.py", 10)
    assert add.test == "tests.test_calc.CalcTest::test_add"
    assert add.message == "AssertionError: -1 != 5"
    assert run.passed == ("tests.test_calc.CalcTest::test_ok",)


# --- logs: Java ------------------------------------------------------------------------------

# `java -cp out com.example.Calc` (OpenJDK 17): a cause with a suppressed exception, and a
# cause of the cause.
JAVA_MAIN = """\
Exception in thread "main" java.lang.RuntimeException: run failed
\tat com.example.Calc.run(Calc.java:24)
\tat com.example.Calc.main(Calc.java:29)
Caused by: java.lang.IllegalStateException: bad config value: x
\tat com.example.Calc.load(Calc.java:16)
\tat com.example.Calc.lambda$run$1(Calc.java:22)
\tat java.base/java.lang.Iterable.forEach(Iterable.java:75)
\tat com.example.Calc.run(Calc.java:22)
\t... 1 more
\tSuppressed: java.io.IOException: close failed
\t\tat com.example.Calc.lambda$run$0(Calc.java:21)
\t\tat com.example.Calc.run(Calc.java:21)
\t\t... 1 more
Caused by: java.lang.NumberFormatException: For input string: "x"
\tat java.base/java.lang.NumberFormatException.forInputString(NumberFormatException.java:67)
\tat java.base/java.lang.Integer.parseInt(Integer.java:668)
\tat java.base/java.lang.Integer.parseInt(Integer.java:786)
\tat com.example.Calc$Parser.parse(Calc.java:8)
\tat com.example.Calc.load(Calc.java:14)
\t... 4 more
"""

SUREFIRE_CONSOLE = """\
[INFO] -------------------------------------------------------
[INFO]  T E S T S
[INFO] -------------------------------------------------------
[INFO] Running com.example.CalcTest
[ERROR] Tests run: 2, Failures: 1, Errors: 0, Skipped: 0, Time elapsed: 0.041 s \
<<< FAILURE! -- in com.example.CalcTest
[ERROR] com.example.CalcTest.testAdd -- Time elapsed: 0.012 s <<< FAILURE!
org.opentest4j.AssertionFailedError: expected: <5> but was: <-1>
\tat org.junit.jupiter.api.AssertionFailureBuilder.build(AssertionFailureBuilder.java:151)
\tat org.junit.jupiter.api.AssertionFailureBuilder.buildAndThrow(AssertionFailureBuilder.java:132)
\tat org.junit.jupiter.api.AssertEquals.failNotEqual(AssertEquals.java:197)
\tat org.junit.jupiter.api.AssertEquals.assertEquals(AssertEquals.java:150)
\tat org.junit.jupiter.api.AssertEquals.assertEquals(AssertEquals.java:145)
\tat org.junit.jupiter.api.Assertions.assertEquals(Assertions.java:531)
\tat com.example.CalcTest.testAdd(CalcTest.java:12)
\tat java.base/java.lang.reflect.Method.invoke(Method.java:580)
\tat java.base/java.util.ArrayList.forEach(ArrayList.java:1596)

[INFO] \n\
[INFO] Results:
[INFO] \n\
[ERROR] Failures: \n\
[ERROR]   CalcTest.testAdd:12 expected: <5> but was: <-1>
[INFO] \n\
[ERROR] Tests run: 2, Failures: 1, Errors: 0, Skipped: 0
"""

SUREFIRE_CONSOLE_OLD = """\
Running com.example.CalcTest
Tests run: 2, Failures: 1, Errors: 0, Skipped: 0, Time elapsed: 0.05 sec <<< FAILURE!
testAdd(com.example.CalcTest)  Time elapsed: 0.01 sec  <<< FAILURE!
java.lang.AssertionError: expected:<5> but was:<-1>
\tat org.junit.Assert.fail(Assert.java:89)
\tat org.junit.Assert.failNotEquals(Assert.java:835)
\tat org.junit.Assert.assertEquals(Assert.java:647)
\tat com.example.CalcTest.testAdd(CalcTest.java:12)
\tat sun.reflect.NativeMethodAccessorImpl.invoke0(Native Method)
\tat sun.reflect.NativeMethodAccessorImpl.invoke(NativeMethodAccessorImpl.java:62)
"""

GRADLE_SHORT = """\
> Task :app:test FAILED

CalcTest > testAdd() FAILED
    org.opentest4j.AssertionFailedError at CalcTest.java:12

2 tests completed, 1 failed
"""


def test_log_java_innermost_cause_outermost_first() -> None:
    (failure,) = parse_log(JAVA_MAIN).failures
    assert failure.message == 'java.lang.NumberFormatException: For input string: "x"'
    assert failure.test == "java.lang.RuntimeException@com.example.Calc.run"
    assert lines_of(failure) == [
        ("com/example/Calc.java", 29),
        ("com/example/Calc.java", 22),
        ("java/lang/Iterable.java", 75),
        ("com/example/Calc.java", 22),
        ("com/example/Calc.java", 14),
        ("com/example/Calc.java", 8),
        ("java/lang/Integer.java", 786),
        ("java/lang/Integer.java", 668),
        ("java/lang/NumberFormatException.java", 67),
    ]
    assert failure.frames[5].function == "com.example.Calc$Parser.parse"
    assert "Suppressed" in failure.details


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param(
            SUREFIRE_CONSOLE,
            "org.opentest4j.AssertionFailedError: expected: <5> but was: <-1>",
            id="surefire-3",
        ),
        pytest.param(
            SUREFIRE_CONSOLE_OLD,
            "java.lang.AssertionError: expected:<5> but was:<-1>",
            id="surefire-2",
        ),
    ],
)
def test_log_surefire(text: str, message: str) -> None:
    (failure,) = parse_log(text).failures
    assert failure.test == "com.example.CalcTest::testAdd"
    assert failure.message == message
    assert ("com/example/CalcTest.java", 12) in lines_of(failure)
    assert "Native Method" not in str(failure.frames)


def test_log_gradle_short() -> None:
    (failure,) = parse_log(GRADLE_SHORT).failures
    assert failure.test == "CalcTest::testAdd()"
    assert failure.message == "org.opentest4j.AssertionFailedError"
    assert failure.frames == (Frame("CalcTest.java", 12),)


@pytest.mark.parametrize(
    ("func", "src", "frame"),
    [
        pytest.param(
            "com.example.Foo.bar",
            "Foo.java:42",
            Frame("com/example/Foo.java", 42, "com.example.Foo.bar"),
            id="plain",
        ),
        pytest.param(
            "com.example.Foo$Inner.lambda$run$0",
            "Foo.java:7",
            Frame("com/example/Foo.java", 7, "com.example.Foo$Inner.lambda$run$0"),
            id="inner-class",
        ),
        pytest.param("Main.main", "Main.java:3", Frame("Main.java", 3, "Main.main"), id="no-pkg"),
        pytest.param("jdk.internal.Foo.invoke0", "Native Method", None, id="native"),
        pytest.param("com.example.Gen.x", "Unknown Source", None, id="unknown"),
    ],
)
def test_java_frame(func: str, src: str, frame: Frame | None) -> None:
    assert java_frame(func, src) == frame


def test_log_java_module_and_loader_prefixes() -> None:
    text = (
        "java.lang.NullPointerException: boom\n"
        "\tat app//com.example.Svc.call(Svc.java:9) ~[classes/:?]\n"
        "\tat java.base@17.0.2/java.lang.Thread.run(Thread.java:833)\n"
    )
    (failure,) = parse_log(text).failures
    assert failure.frames == (
        Frame("java/lang/Thread.java", 833, "java.lang.Thread.run"),
        Frame("com/example/Svc.java", 9, "com.example.Svc.call"),
    )


# --- logs: Go --------------------------------------------------------------------------------

GO_TEST = """\
--- FAIL: TestAdd (0.00s)
    calc_test.go:12: Add(2, 3) = -1, want 5
--- FAIL: TestSplit (0.00s)
    --- FAIL: TestSplit/empty (0.00s)
        split_test.go:20: got [], want [""]
FAIL
FAIL\texample.com/calc\t0.002s
FAIL
"""

GO_TEST_VERBOSE = """\
=== RUN   TestAdd
    calc_test.go:11: checking
    calc_test.go:12: Add(2, 3) = -1, want 5
--- FAIL: TestAdd (0.00s)
=== RUN   TestSub
--- PASS: TestSub (0.00s)
=== RUN   TestSkip
    calc_test.go:25: not ready
--- SKIP: TestSkip (0.00s)
=== RUN   TestEqual
    calc_test.go:31: \n\
        \tError Trace:\t/home/dev/calc/calc_test.go:31
        \tError:      \tNot equal: \n\
        \t            \texpected: 5
        \t            \tactual  : -1
        \tTest:       \tTestEqual
--- FAIL: TestEqual (0.00s)
FAIL
exit status 1
FAIL\texample.com/calc\t0.002s
"""

GO_PANIC_IN_TEST = """\
=== RUN   TestGet
--- FAIL: TestGet (0.00s)
panic: runtime error: index out of range [5] with length 3 [recovered]
\tpanic: runtime error: index out of range [5] with length 3

goroutine 18 [running]:
testing.tRunner.func1.2({0x5283a0, 0xc0000160f0})
\t/usr/local/go/src/testing/testing.go:1631 +0x24a
testing.tRunner.func1()
\t/usr/local/go/src/testing/testing.go:1634 +0x377
panic({0x5283a0?, 0xc0000160f0?})
\t/usr/local/go/src/runtime/panic.go:770 +0x132
example.com/calc.Get(...)
\t/home/dev/calc/calc.go:8
example.com/calc.TestGet(0xc0000a8820?)
\t/home/dev/calc/calc_test.go:15 +0x1d
testing.tRunner(0xc0000a8820, 0x55c6e8)
\t/usr/local/go/src/testing/testing.go:1689 +0xfb
created by testing.(*T).Run in goroutine 1
\t/usr/local/go/src/testing/testing.go:1742 +0x390
exit status 2
FAIL\texample.com/calc\t0.004s
"""

GO_PANIC_MAIN = """\
panic: runtime error: invalid memory address or nil pointer dereference
[signal SIGSEGV: segmentation violation code=0x1 addr=0x0 pc=0x45d1f4]

goroutine 1 [running]:
main.(*Server).handle(0x0, {0x4b8e2a, 0x3})
\t/home/dev/srv/server.go:42 +0x14
main.main()
\t/home/dev/srv/main.go:13 +0x1d
exit status 2
"""


def test_log_go_test() -> None:
    run = parse_log(GO_TEST)
    # The parent of a failing subtest says nothing of its own: only the subtest is listed.
    assert [(f.test, f.message) for f in run.failures] == [
        ("TestAdd", "Add(2, 3) = -1, want 5"),
        ("TestSplit/empty", 'got [], want [""]'),
    ]
    assert run.failures[0].frames == (Frame("calc_test.go", 12),)
    assert run.failures[1].frames == (Frame("split_test.go", 20),)


def test_log_go_test_verbose() -> None:
    run = parse_log(GO_TEST_VERBOSE)
    add, equal = run.failures
    assert add.test == "TestAdd"
    # Log lines in print order; the last one (the failing check) is the deepest.
    assert lines_of(add) == [("calc_test.go", 11), ("calc_test.go", 12)]
    assert add.message == "Add(2, 3) = -1, want 5"
    assert add.details.splitlines()[0] == "    calc_test.go:11: checking"
    assert add.details.splitlines()[-1] == "--- FAIL: TestAdd (0.00s)"
    assert equal.message == "Not equal:"  # testify: the Error: line, not the trace line
    assert lines_of(equal) == [("calc_test.go", 31)]
    assert run.passed == ("TestSub",)


def test_log_go_panic_in_test() -> None:
    (failure,) = parse_log(GO_PANIC_IN_TEST).failures
    assert failure.test == "TestGet"
    assert failure.message == "panic: runtime error: index out of range [5] with length 3"
    assert lines_of(failure) == [
        ("/usr/local/go/src/testing/testing.go", 1689),
        ("/home/dev/calc/calc_test.go", 15),
        ("/home/dev/calc/calc.go", 8),
        ("/usr/local/go/src/runtime/panic.go", 770),
        ("/usr/local/go/src/testing/testing.go", 1634),
        ("/usr/local/go/src/testing/testing.go", 1631),
    ]
    assert failure.frames[2].function == "example.com/calc.Get"


def test_log_go_panic_main() -> None:
    (failure,) = parse_log(GO_PANIC_MAIN).failures
    assert failure.test == "panic@main.(*Server).handle"
    assert failure.frames == (
        Frame("/home/dev/srv/main.go", 13, "main.main"),
        Frame("/home/dev/srv/server.go", 42, "main.(*Server).handle"),
    )


# --- logs: C / C++ ---------------------------------------------------------------------------

GTEST = """\
Running main() from /build/googletest/src/gtest_main.cc
[==========] Running 3 tests from 1 test suite.
[----------] Global test environment set-up.
[----------] 3 tests from CalcTest
[ RUN      ] CalcTest.Add
/home/dev/calc/calc_test.cc:8: Failure
Expected equality of these values:
  add(2, 3)
    Which is: -1
  5
/home/dev/calc/calc_test.cc:9: Failure
Value of: add(0, 0) > 0
  Actual: false
Expected: true
[  FAILED  ] CalcTest.Add (0 ms)
[ RUN      ] CalcTest.Sub
[       OK ] CalcTest.Sub (0 ms)
[ RUN      ] CalcTest.Crash
[  FAILED  ] CalcTest.Crash (1 ms)
[----------] 3 tests from CalcTest (1 ms total)

[----------] Global test environment tear-down
[==========] 3 tests from 1 test suite ran. (1 ms total)
[  PASSED  ] 1 test.
[  FAILED  ] 2 tests, listed below:
[  FAILED  ] CalcTest.Add
[  FAILED  ] CalcTest.Crash

 2 FAILED TESTS
"""

# gcc 12 `-fsanitize=address`, real output.
ASAN = """\
=================================================================
==3060==ERROR: AddressSanitizer: heap-buffer-overflow on address 0x602000000020 \
at pc 0x5606e56ac1d4 bp 0x7ffe8389c000 sp 0x7ffe8389bff8
READ of size 4 at 0x602000000020 thread T0
    #0 0x5606e56ac1d3 in get /home/dev/cc/buf.c:4
    #1 0x5606e56ac1fe in main /home/dev/cc/buf.c:9
    #2 0x7f3c59e45249 in __libc_start_call_main ../sysdeps/nptl/libc_start_call_main.h:58
    #3 0x7f3c59e45304 in __libc_start_main_impl ../csu/libc-start.c:360
    #4 0x5606e56ac0b0 in _start (/home/dev/cc/buf+0x10b0)

0x602000000020 is located 0 bytes to the right of 16-byte region [0x602000000010,0x602000000020)
allocated by thread T0 here:
    #0 0x7f3c5a0b89cf in __interceptor_malloc \
../../../../src/libsanitizer/asan/asan_malloc_linux.cpp:69
    #1 0x5606e56ac1e9 in main /home/dev/cc/buf.c:8

SUMMARY: AddressSanitizer: heap-buffer-overflow /home/dev/cc/buf.c:4 in get
Shadow bytes around the buggy address:
  0x0c047fff7ff0: 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00
=>0x0c047fff8000: fa fa 00 00[fa]fa fa fa fa fa fa fa fa fa fa fa
==3060==ABORTING
"""

# clang, C++ frames with column numbers.
ASAN_CPP = """\
==41==ERROR: AddressSanitizer: heap-use-after-free on address 0x603000000010 \
at pc 0x55d4 bp 0x7ffd sp 0x7ffd
READ of size 4 at 0x603000000010 thread T0
    #0 0x55d4c8 in Store::get(int) const /home/dev/kv/store.cc:42:7
    #1 0x55d5a1 in StoreTest_Get_Test::TestBody() /home/dev/kv/store_test.cc:17:3
    #2 0x7f00aa in void testing::internal::HandleExceptionsInMethodIfSupported<testing::Test, void>\
(testing::Test*, void (testing::Test::*)(), char const*) (/usr/lib/libgtest.so+0x5a)
"""

UBSAN_AND_ASSERT = """\
ub.c:3:34: runtime error: signed integer overflow: 2147483647 + 1 cannot be represented \
in type 'int'
ub: ub.c:4: check: Assertion `x > 0' failed.
Aborted (core dumped)
"""


def test_log_gtest() -> None:
    run = parse_log(GTEST)
    # One failure per failed assertion; a test that failed with no location is still listed.
    assert [(f.test, f.frames) for f in run.failures] == [
        ("CalcTest.Add", (Frame("/home/dev/calc/calc_test.cc", 8),)),
        ("CalcTest.Add", (Frame("/home/dev/calc/calc_test.cc", 9),)),
        ("CalcTest.Crash", ()),
    ]
    assert run.failures[0].message == "Expected equality of these values: add(2, 3) Which is: -1 5"
    assert run.failures[1].message == "Value of: add(0, 0) > 0 Actual: false Expected: true"
    assert run.passed == ("CalcTest.Sub",)


def test_log_asan() -> None:
    (failure,) = parse_log(ASAN).failures
    assert failure.message == ("AddressSanitizer: heap-buffer-overflow on address 0x602000000020")
    assert failure.test == "AddressSanitizer: heap-buffer-overflow@get"
    assert lines_of(failure) == [
        ("../csu/libc-start.c", 360),
        ("../sysdeps/nptl/libc_start_call_main.h", 58),
        ("/home/dev/cc/buf.c", 9),
        ("/home/dev/cc/buf.c", 4),
    ]
    assert failure.details.rstrip().endswith("in get")


def test_log_asan_cpp() -> None:
    (failure,) = parse_log(ASAN_CPP).failures
    assert failure.frames == (
        Frame("/home/dev/kv/store_test.cc", 17, "StoreTest_Get_Test::TestBody()"),
        Frame("/home/dev/kv/store.cc", 42, "Store::get(int) const"),
    )


def test_log_ubsan_and_assert() -> None:
    ub, check = parse_log(UBSAN_AND_ASSERT).failures
    assert ub.message.startswith("runtime error: signed integer overflow")
    assert ub.frames == (Frame("ub.c", 3),)
    assert check.message == "Assertion `x > 0' failed."
    assert check.frames == (Frame("ub.c", 4, "check"),)


# --- logs: odds and ends ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("", id="empty"),
        pytest.param("Compiling...\nBuild succeeded.\n3 warnings\n", id="build-log"),
        pytest.param("ok  \texample.com/calc\t0.002s\n", id="go-ok"),
        pytest.param("see com.example.Foo: nothing to do\n", id="dotted-name"),
    ],
)
def test_log_unknown_text_has_no_failures(text: str) -> None:
    assert parse_log(text).failures == ()


def test_log_colours_and_ci_timestamps_are_ignored() -> None:
    text = "\n".join(
        f"2025-05-01T10:00:00.1234567Z {line}" for line in PY_CHAINED.splitlines()
    ).replace("RuntimeError: bad config", "\x1b[31mRuntimeError: bad config\x1b[0m")
    (failure,) = parse_log(text).failures
    assert failure.message == "RuntimeError: bad config"
    assert failure.frames[-1] == Frame("/work/proj/app/config.py", 8, "load")


def test_details_keep_the_end_and_message_is_one_short_line() -> None:
    frames = "".join(
        f'  File "/w/m{k}.py", line {k}, in f{k}\n    f{k + 1}()\n' for k in range(1, 400)
    )
    text = f"Traceback (most recent call last):\n{frames}ValueError: {'x' * 1000}\n"
    (failure,) = parse_log(text).failures
    assert len(failure.details) <= MAX_DETAILS
    assert failure.details.startswith("...\n")
    assert failure.details.endswith("x" * 100)
    assert len(failure.message) == MAX_MESSAGE and "\n" not in failure.message
    assert len(failure.frames) == 399  # frames come from the whole text


# --- placing frames in the workspace ---------------------------------------------------------


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    root = tmp_path / "ws"
    make(
        root,
        {
            "calc.py": "def add(a, b):\n    return a - b\n",
            "tests/test_calc.py": "def test_add():\n    assert add(2, 3) == 5\n",
            "src/test/java/com/example/FooTest.java": "class FooTest {}\n",
            "src/main/java/com/example/Foo.java": "class Foo {}\n",
            ".venv/lib/python3.11/site-packages/lib/core.py": "x = 1\n",
            "vendor/node_modules/pkg/index.js": "x\n",
            "generated/api.py": "x = 1\n",
            "a/x/Dup.java": "",
            "b/x/Dup.java": "",
            "target/classes/com/example/Only.java": "",
        },
    )
    return root


def test_resolve_absolute_relative_and_java(workspace: Path) -> None:
    r = FrameResolver([workspace])
    calc = workspace / "calc.py"
    assert r.resolve(Frame(str(calc), 2)) == calc
    assert r.resolve(Frame(str(workspace / "tests" / ".." / "calc.py"), 2)) == calc
    assert r.resolve(Frame("calc.py", 2)) == calc  # relative to a root
    assert r.resolve(Frame("test_calc.py", 5), base=workspace / "tests") == (
        workspace / "tests" / "test_calc.py"
    )
    assert r.resolve(Frame("com/example/FooTest.java", 1)) == (
        workspace / "src/test/java/com/example/FooTest.java"
    )
    assert r.resolve(Frame("Foo.java", 1)) == workspace / "src/main/java/com/example/Foo.java"


@pytest.mark.parametrize(
    "path",
    [
        pytest.param("/usr/lib/python3.11/json/decoder.py", id="outside"),
        pytest.param("{ws}/missing.py", id="missing"),
        pytest.param("{ws}", id="the-root"),
        pytest.param("{ws}/.venv/lib/python3.11/site-packages/lib/core.py", id="venv"),
        pytest.param("{ws}/vendor/node_modules/pkg/index.js", id="node-modules"),
        pytest.param("{ws}/generated/api.py", id="excluded"),
        pytest.param("generated/api.py", id="excluded-relative"),
        pytest.param("x/Dup.java", id="ambiguous"),
        pytest.param("com/example/Only.java", id="build-output-not-indexed"),
        pytest.param("<frozen importlib._bootstrap>", id="pseudo"),
        pytest.param("", id="empty"),
    ],
)
def test_resolve_rejects(workspace: Path, path: str) -> None:
    r = FrameResolver([workspace], exclude=["generated/"])
    assert r.resolve(Frame(path.format(ws=workspace), 1)) is None


def test_resolve_ambiguous_tail_prefers_the_report_directory(workspace: Path) -> None:
    r = FrameResolver([workspace])
    assert r.resolve(Frame("x/Dup.java", 1), base=workspace / "a") == workspace / "a/x/Dup.java"


def test_resolve_builds_the_name_index_once(
    workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    walks: list[Path] = []
    real_walk = os.walk

    def counting(top: Path, *args: Any, **kwargs: Any) -> Any:
        walks.append(top)
        return real_walk(top, *args, **kwargs)

    monkeypatch.setattr(os, "walk", counting)
    r = FrameResolver([workspace])
    for name in ("com/example/FooTest.java", "Foo.java", "Nope.java", "example/Foo.java"):
        r.resolve(Frame(name, 1))
    assert walks == [workspace]
    make(workspace, {"src/main/java/com/example/Nope.java": ""})
    assert r.resolve(Frame("Nope.java", 1)) is None  # the index is not walked again...
    r.invalidate()
    assert r.resolve(Frame("Nope.java", 1)) == workspace / "src/main/java/com/example/Nope.java"
    assert walks == [workspace, workspace]  # ...until invalidated


def test_deepest_skips_dependency_frames(workspace: Path) -> None:
    failure = Failure(
        test="tests/test_calc.py::test_add",
        message="ValueError",
        details="",
        frames=(
            Frame(str(workspace / "tests/test_calc.py"), 5, "test_add"),
            Frame(str(workspace / "calc.py"), 2, "add"),
            Frame(str(workspace / ".venv/lib/python3.11/site-packages/lib/core.py"), 1, "f"),
            Frame("/usr/lib/python3.11/json/decoder.py", 353, "raw_decode"),
        ),
    )
    assert FrameResolver([workspace]).deepest(failure) == (workspace / "calc.py", 2)


def test_deepest_falls_back_to_the_report_file(workspace: Path) -> None:
    r = FrameResolver([workspace])
    bare = Failure("t", "m", "", (Frame("/elsewhere/x.py", 3),), file="tests/test_calc.py", line=4)
    assert r.deepest(bare) == (workspace / "tests/test_calc.py", 4)
    no_line = Failure("t", "m", "", (), file="tests/test_calc.py")
    assert r.deepest(no_line) == (workspace / "tests/test_calc.py", 1)
    assert r.deepest(Failure("t", "m", "", ())) is None


def test_deepest_java_report(workspace: Path) -> None:
    run = parse_junit(
        SUREFIRE_JUNIT.replace(b"CalcTest.java:12", b"FooTest.java:12").replace(
            b"com.example.CalcTest.testAdd(", b"com.example.FooTest.testAdd("
        )
    )
    where = FrameResolver([workspace]).deepest(run.failures[0], base=workspace / "target")
    assert where == (workspace / "src/test/java/com/example/FooTest.java", 12)


# --- a real pytest run -----------------------------------------------------------------------

CALC = """\
def add(a, b):
    return a - b


def ratio(a, b):
    return scale(a) / b


def scale(a):
    return a * {"x": 2}["y"]
"""

TEST_CALC = """\
from calc import add, ratio


def test_add():
    assert add(2, 3) == 5


def test_ratio():
    assert ratio(1, 2) == 1


def test_fine():
    assert add(1, 0) == 1
"""


@pytest.mark.parametrize("tb", ["long", "native"])
def test_real_pytest_report(tmp_path: Path, tb: str) -> None:
    project = tmp_path / "proj"
    make(project, {"calc.py": CALC, "tests/test_calc.py": TEST_CALC, "conftest.py": ""})
    report = tmp_path / "out" / "report.xml"
    env = dict(os.environ, PYTEST_DISABLE_PLUGIN_AUTOLOAD="1")
    env.pop("PYTEST_ADDOPTS", None)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            f"--tb={tb}",
            "--junitxml",
            str(report),
            str(project),
        ],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    run = parse_junit(report.read_bytes())
    assert run.passed == ("tests.test_calc::test_fine",)
    add, ratio = run.failures
    resolver = FrameResolver([project])
    test_file = project / "tests" / "test_calc.py"
    assert_line = TEST_CALC.splitlines().index("    assert add(2, 3) == 5") + 1
    assert add.message == "AssertionError: assert -1 == 5"
    assert resolver.deepest(add, report.parent) == (test_file, assert_line)
    bug_line = CALC.splitlines().index('    return a * {"x": 2}["y"]') + 1
    assert ratio.message == "KeyError: 'y'"
    assert resolver.deepest(ratio, report.parent) == (project / "calc.py", bug_line)
    assert [f.function for f in ratio.frames][-3:] == ["test_ratio", "ratio", "scale"]
