"""Where generated unit tests go (per ecosystem layout) and how they merge into a test file."""

from __future__ import annotations

from pathlib import Path

import pytest

from lsp_server.completion.syntax import error_count
from lsp_server.fixes import test_files as tf

# The module's functions are named test_*: call them through the module so that pytest does
# not collect them from this file's namespace.
TestTarget = tf.TestTarget


def make(root: Path, files: dict[str, str]) -> None:
    for rel, content in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)


def parses(language_id: str, text: str) -> bool:
    return error_count(language_id, text) == 0


# ---------------------------------------------------------------------------------------------
# test_file_for


LAYOUTS = [
    # Python: an existing test file anywhere usual wins.
    pytest.param(
        {"shapes/geometry.py": "", "tests/test_geometry.py": ""},
        "shapes/geometry.py",
        "python",
        "tests/test_geometry.py",
        id="py-existing-tests-dir",
    ),
    pytest.param(
        {"shapes/geometry.py": "", "test/test_geometry.py": ""},
        "shapes/geometry.py",
        "python",
        "test/test_geometry.py",
        id="py-existing-test-dir",
    ),
    pytest.param(
        {"src/shapes/geometry.py": "", "tests/shapes/test_geometry.py": "", "tests/x.py": ""},
        "src/shapes/geometry.py",
        "python",
        "tests/shapes/test_geometry.py",
        id="py-existing-mirrored-package-path",
    ),
    pytest.param(
        {"src/shapes/solid/cube.py": "", "tests/solid/test_cube.py": ""},
        "src/shapes/solid/cube.py",
        "python",
        "tests/solid/test_cube.py",
        id="py-existing-mirrored-below-top-package",
    ),
    pytest.param(
        {"shapes/geometry.py": "", "shapes/test_geometry.py": "", "tests/x.py": ""},
        "shapes/geometry.py",
        "python",
        "shapes/test_geometry.py",
        id="py-existing-same-dir-test-prefix",
    ),
    pytest.param(
        {"shapes/geometry.py": "", "shapes/geometry_test.py": "", "tests/x.py": ""},
        "shapes/geometry.py",
        "python",
        "shapes/geometry_test.py",
        id="py-existing-same-dir-test-suffix",
    ),
    # Python: none yet.
    pytest.param(
        {"src/shapes/geometry.py": "", "tests/conftest.py": ""},
        "src/shapes/geometry.py",
        "python",
        "tests/test_geometry.py",
        id="py-new-in-tests-dir",
    ),
    pytest.param(
        {"shapes/geometry.py": "", "test/conftest.py": ""},
        "shapes/geometry.py",
        "python",
        "test/test_geometry.py",
        id="py-new-in-test-dir",
    ),
    pytest.param(
        {"shapes/geometry.py": "", "tests/shapes/test_other.py": ""},
        "shapes/geometry.py",
        "python",
        "tests/shapes/test_geometry.py",
        id="py-new-in-existing-mirror-dir",
    ),
    pytest.param(
        {"shapes/geometry.py": ""},
        "shapes/geometry.py",
        "python",
        "shapes/test_geometry.py",
        id="py-new-next-to-source",
    ),
    pytest.param(
        {"shapes/__init__.py": "", "tests/conftest.py": ""},
        "shapes/__init__.py",
        "python",
        "tests/test_shapes.py",
        id="py-package-init",
    ),
    pytest.param(
        {"tests/test_geometry.py": ""},
        "tests/test_geometry.py",
        "python",
        "tests/test_geometry.py",
        id="py-source-is-test-prefix",
    ),
    pytest.param(
        {"shapes/geometry_test.py": ""},
        "shapes/geometry_test.py",
        "python",
        "shapes/geometry_test.py",
        id="py-source-is-test-suffix",
    ),
    # Java.
    pytest.param(
        {"src/main/java/com/acme/Calc.java": "", "src/test/java/com/acme/.keep": ""},
        "src/main/java/com/acme/Calc.java",
        "java",
        "src/test/java/com/acme/CalcTest.java",
        id="java-maven",
    ),
    pytest.param(
        {"svc/src/main/java/com/acme/Calc.java": ""},
        "svc/src/main/java/com/acme/Calc.java",
        "java",
        "svc/src/test/java/com/acme/CalcTest.java",
        id="java-gradle-module-new",
    ),
    pytest.param(
        {"a/src/main/java/x/src/main/java/p/Calc.java": ""},
        "a/src/main/java/x/src/main/java/p/Calc.java",
        "java",
        "a/src/main/java/x/src/test/java/p/CalcTest.java",
        id="java-nearest-main-segment",
    ),
    pytest.param(
        {"src/main/java/p/Calc.java": "", "src/test/java/p/CalcTests.java": ""},
        "src/main/java/p/Calc.java",
        "java",
        "src/test/java/p/CalcTests.java",
        id="java-existing-tests-suffix",
    ),
    pytest.param(
        {"lib/Calc.java": ""},
        "lib/Calc.java",
        "java",
        "lib/CalcTest.java",
        id="java-outside-layout",
    ),
    pytest.param(
        {"src/test/java/p/CalcTest.java": ""},
        "src/test/java/p/CalcTest.java",
        "java",
        "src/test/java/p/CalcTest.java",
        id="java-source-is-test",
    ),
    # JavaScript / TypeScript.
    pytest.param({"web/foo.ts": ""}, "web/foo.ts", "typescript", "web/foo.test.ts", id="ts-new"),
    pytest.param(
        {"web/Foo.tsx": ""},
        "web/Foo.tsx",
        "typescriptreact",
        "web/Foo.test.tsx",
        id="tsx-new",
    ),
    pytest.param({"web/foo.js": ""}, "web/foo.js", "javascript", "web/foo.test.js", id="js-new"),
    pytest.param(
        {"web/foo.mjs": ""}, "web/foo.mjs", "javascript", "web/foo.test.mjs", id="mjs-new"
    ),
    pytest.param(
        {"web/Foo.jsx": ""},
        "web/Foo.jsx",
        "javascriptreact",
        "web/Foo.test.jsx",
        id="jsx-new",
    ),
    pytest.param(
        {"web/foo.ts": "", "web/foo.spec.ts": ""},
        "web/foo.ts",
        "typescript",
        "web/foo.spec.ts",
        id="ts-existing-spec",
    ),
    pytest.param(
        {"web/foo.ts": "", "web/__tests__/foo.test.ts": ""},
        "web/foo.ts",
        "typescript",
        "web/__tests__/foo.test.ts",
        id="ts-existing-dunder-tests",
    ),
    pytest.param(
        {"web/foo.test.ts": ""},
        "web/foo.test.ts",
        "typescript",
        "web/foo.test.ts",
        id="ts-source-is-test",
    ),
    # Go, C/C++, others.
    pytest.param({"calc/calc.go": ""}, "calc/calc.go", "go", "calc/calc_test.go", id="go"),
    pytest.param(
        {"src/foo.cpp": "", "tests/CMakeLists.txt": ""},
        "src/foo.cpp",
        "cpp",
        "tests/test_foo.cpp",
        id="cpp-tests-dir",
    ),
    pytest.param(
        {"src/foo.h": "", "test/x.txt": ""}, "src/foo.h", "c", "test/test_foo.c", id="c-test-dir"
    ),
    pytest.param({"src/foo.cc": ""}, "src/foo.cc", "cpp", "src/test_foo.cc", id="cpp-no-tests"),
    pytest.param(
        {"src/foo.hpp": ""}, "src/foo.hpp", "cpp", "src/test_foo.cpp", id="cpp-header-no-tests"
    ),
    pytest.param(
        {"src/foo.c": "", "src/foo_test.c": "", "tests/x.txt": ""},
        "src/foo.c",
        "c",
        "src/foo_test.c",
        id="c-existing-next-to-source",
    ),
    pytest.param({"lua/foo.lua": ""}, "lua/foo.lua", "lua", "lua/foo_test.lua", id="other"),
]


@pytest.mark.parametrize(("files", "source", "language_id", "expected"), LAYOUTS)
def test_layout(
    tmp_path: Path, files: dict[str, str], source: str, language_id: str, expected: str
) -> None:
    make(tmp_path, files)
    target = tf.test_file_for(tmp_path / source, language_id, tmp_path)
    assert target.path == tmp_path / expected
    assert target.exists == (expected in files)
    assert not target.same_file


@pytest.mark.parametrize(
    ("source", "language_id", "test_language"),
    [
        pytest.param("foo.py", "python", "python", id="python"),
        pytest.param("foo.tsx", "typescriptreact", "typescriptreact", id="tsx"),
        pytest.param("foo.mjs", "javascript", "javascript", id="mjs"),
        pytest.param("foo.h", "cpp", "cpp", id="cpp-header"),
        pytest.param("foo.zig", "zig", "zig", id="unknown-extension-keeps-language"),
    ],
)
def test_language_id_of_test_file(
    tmp_path: Path, source: str, language_id: str, test_language: str
) -> None:
    make(tmp_path, {source: ""})
    target = tf.test_file_for(tmp_path / source, language_id, tmp_path)
    assert target.language_id == test_language


def test_rust_tests_live_in_the_source_file(tmp_path: Path) -> None:
    make(tmp_path, {"src/lib.rs": "pub fn f() {}\n"})
    target = tf.test_file_for(tmp_path / "src/lib.rs", "rust", tmp_path)
    assert target == TestTarget(tmp_path / "src/lib.rs", True, "rust", same_file=True)


def test_without_root_only_the_source_directory_counts(tmp_path: Path) -> None:
    make(tmp_path, {"shapes/geometry.py": "", "tests/test_geometry.py": "", "test/x.txt": ""})
    assert tf.test_file_for(tmp_path / "shapes/geometry.py", "python", None).path == (
        tmp_path / "shapes/test_geometry.py"
    )
    assert tf.test_file_for(tmp_path / "shapes/geometry.py", "python", tmp_path / "other").path == (
        tmp_path / "shapes/test_geometry.py"
    )
    make(tmp_path, {"src/foo.c": ""})
    assert tf.test_file_for(tmp_path / "src/foo.c", "c", None).path == tmp_path / "src/test_foo.c"


def test_exists_reflects_the_disk_at_call_time(tmp_path: Path) -> None:
    make(tmp_path, {"calc.go": "package calc\n"})
    assert not tf.test_file_for(tmp_path / "calc.go", "go", tmp_path).exists
    make(tmp_path, {"calc_test.go": "package calc\n"})
    assert tf.test_file_for(tmp_path / "calc.go", "go", tmp_path).exists


def test_not_collected_by_pytest() -> None:
    assert tf.__test__ is False
    assert TestTarget.__test__ is False
    assert getattr(tf.test_file_for, "__test__", True) is False


# ---------------------------------------------------------------------------------------------
# import_hint


HINTS = [
    pytest.param(
        {"src/shapes/__init__.py": "", "src/shapes/geometry.py": ""},
        "src/shapes/geometry.py",
        "python",
        "shapes.geometry",
        id="py-src-layout",
    ),
    pytest.param(
        {"shapes/__init__.py": "", "shapes/solid/__init__.py": "", "shapes/solid/cube.py": ""},
        "shapes/solid/cube.py",
        "python",
        "shapes.solid.cube",
        id="py-nested-packages",
    ),
    pytest.param(
        {"src/shapes/geometry.py": ""},
        "src/shapes/geometry.py",
        "python",
        "shapes.geometry",
        id="py-namespace-src",
    ),
    pytest.param(
        {"shapes/geometry.py": ""}, "shapes/geometry.py", "python", "shapes.geometry", id="py-ns"
    ),
    pytest.param(
        {"apps/api/app/__init__.py": "", "apps/api/app/models.py": ""},
        "apps/api/app/models.py",
        "python",
        "app.models",
        id="py-package-below-plain-dirs",
    ),
    pytest.param({"geometry.py": ""}, "geometry.py", "python", "geometry", id="py-top-level"),
    pytest.param(
        {"__init__.py": "", "shapes/__init__.py": "", "shapes/geometry.py": ""},
        "shapes/geometry.py",
        "python",
        "shapes.geometry",
        id="py-stops-at-root",
    ),
    pytest.param(
        {"shapes/__init__.py": ""}, "shapes/__init__.py", "python", "shapes", id="py-init"
    ),
    pytest.param(
        {"my-app/geometry.py": ""}, "my-app/geometry.py", "python", "geometry", id="py-bad-dir"
    ),
    pytest.param(
        {"src/main/java/com/acme/Calc.java": "// c\npackage com.acme;\n\nclass Calc {}\n"},
        "src/main/java/com/acme/Calc.java",
        "java",
        "com.acme",
        id="java-package",
    ),
    pytest.param({"Calc.java": "class Calc {}\n"}, "Calc.java", "java", "", id="java-default"),
    pytest.param(
        {"calc/calc.go": "// Package calc adds.\npackage calc\n"},
        "calc/calc.go",
        "go",
        "calc",
        id="go",
    ),
    pytest.param({"web/foo.ts": ""}, "web/foo.ts", "typescript", "./foo", id="ts"),
    pytest.param({"web/foo.mjs": ""}, "web/foo.mjs", "javascript", "./foo.mjs", id="mjs"),
    pytest.param(
        {"web/Foo.tsx": "", "web/__tests__/Foo.test.tsx": ""},
        "web/Foo.tsx",
        "typescriptreact",
        "../Foo",
        id="tsx-dunder-tests",
    ),
    pytest.param({"src/lib.rs": ""}, "src/lib.rs", "rust", "", id="rust"),
    pytest.param({"src/foo.c": ""}, "src/foo.c", "c", "", id="c"),
]


@pytest.mark.parametrize(("files", "source", "language_id", "expected"), HINTS)
def test_import_hint(
    tmp_path: Path, files: dict[str, str], source: str, language_id: str, expected: str
) -> None:
    make(tmp_path, files)
    assert tf.import_hint(tmp_path / source, language_id, tmp_path) == expected


def test_import_hint_without_root_follows_packages(tmp_path: Path) -> None:
    make(tmp_path, {"src/shapes/__init__.py": "", "src/shapes/geometry.py": ""})
    assert tf.import_hint(tmp_path / "src/shapes/geometry.py", "python", None) == (
        "shapes.geometry"
    )
    assert tf.import_hint(tmp_path / "missing/Calc.java", "java", None) == ""


# ---------------------------------------------------------------------------------------------
# merge_tests

PY_EXISTING = '''\
"""Tests for shapes.geometry."""

from __future__ import annotations

import math

import pytest

from shapes.geometry import area


def helper() -> int:
    return 1


def test_area() -> None:
    assert area(1) == pytest.approx(math.pi)
'''

PY_GENERATED = '''\
"""Generated tests for shapes.geometry."""
import math
import pytest
from shapes.geometry import area, perimeter
from shapes import geometry as geo
import pytest


def helper() -> int:
    return 1


def test_area() -> None:
    assert area(2) == pytest.approx(4 * math.pi)


@pytest.mark.parametrize("r", [1, 2])
def test_perimeter(r: float) -> None:
    assert perimeter(r) == pytest.approx(2 * math.pi * r)
    assert geo.perimeter is perimeter
'''

PY_MERGED = '''\
"""Tests for shapes.geometry."""

from __future__ import annotations

import math

import pytest

from shapes.geometry import area, perimeter
from shapes import geometry as geo


def helper() -> int:
    return 1


def test_area() -> None:
    assert area(1) == pytest.approx(math.pi)


def test_area_2() -> None:
    assert area(2) == pytest.approx(4 * math.pi)


@pytest.mark.parametrize("r", [1, 2])
def test_perimeter(r: float) -> None:
    assert perimeter(r) == pytest.approx(2 * math.pi * r)
    assert geo.perimeter is perimeter
'''

JAVA_EXISTING = """\
package com.acme;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;

public class CalculatorTest {
    private final Calculator calc = new Calculator();

    @Test
    void add() {
        assertEquals(2, calc.add(1, 1));
    }
}
"""

JAVA_GENERATED = """\
package com.acme;

import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

class CalculatorTest {
    private Calculator calculator;

    @BeforeEach
    void setUp() {
        calculator = new Calculator();
    }

    @Test
    @DisplayName("adds negative numbers")
    void add() {
        assertEquals(-3, calculator.add(-1, -2));
    }

    @Test
    void divideByZeroThrows() {
        assertThrows(ArithmeticException.class, () -> calculator.divide(1, 0));
    }
}
"""

JAVA_MERGED = """\
package com.acme;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.DisplayName;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

public class CalculatorTest {
    private final Calculator calc = new Calculator();

    @Test
    void add() {
        assertEquals(2, calc.add(1, 1));
    }

    private Calculator calculator;

    @BeforeEach
    void setUp() {
        calculator = new Calculator();
    }

    @Test
    @DisplayName("adds negative numbers")
    void add_2() {
        assertEquals(-3, calculator.add(-1, -2));
    }

    @Test
    void divideByZeroThrows() {
        assertThrows(ArithmeticException.class, () -> calculator.divide(1, 0));
    }
}
"""

GO_EXISTING = """\
package calc

import "testing"

func TestAdd(t *testing.T) {
\tif Add(1, 1) != 2 {
\t\tt.Fatal("1+1")
\t}
}
"""

GO_GENERATED = """\
package calc

import (
\t"fmt"
\t"testing"
)

func TestAdd(t *testing.T) {
\tif got := Add(2, 3); got != 5 {
\t\tt.Errorf("Add(2, 3) = %d", got)
\t}
}

func TestSub(t *testing.T) {
\tt.Log(fmt.Sprint(Sub(2, 1)))
}
"""

GO_MERGED = """\
package calc

import (
\t"testing"
\t"fmt"
)

func TestAdd(t *testing.T) {
\tif Add(1, 1) != 2 {
\t\tt.Fatal("1+1")
\t}
}

func TestAdd_2(t *testing.T) {
\tif got := Add(2, 3); got != 5 {
\t\tt.Errorf("Add(2, 3) = %d", got)
\t}
}

func TestSub(t *testing.T) {
\tt.Log(fmt.Sprint(Sub(2, 1)))
}
"""

RUST_SOURCE = """\
pub fn add(a: i32, b: i32) -> i32 {
    a + b
}
"""

RUST_GENERATED = """\
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adds_small_numbers() {
        assert_eq!(add(1, 2), 3);
    }
}
"""

RUST_WITH_TESTS = """\
pub fn add(a: i32, b: i32) -> i32 {
    a + b
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adds_small_numbers() {
        assert_eq!(add(1, 1), 2);
    }
}
"""

RUST_BARE_FNS = """\
use super::*;
use std::collections::HashSet;

#[test]
fn adds_small_numbers() {
    assert_eq!(add(2, 2), 4);
}

#[test]
fn add_is_commutative() {
    let sums: HashSet<i32> = [add(1, 2), add(2, 1)].into_iter().collect();
    assert_eq!(sums.len(), 1);
}
"""

RUST_MERGED = """\
pub fn add(a: i32, b: i32) -> i32 {
    a + b
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn adds_small_numbers() {
        assert_eq!(add(1, 1), 2);
    }

    #[test]
    fn adds_small_numbers_2() {
        assert_eq!(add(2, 2), 4);
    }

    #[test]
    fn add_is_commutative() {
        let sums: HashSet<i32> = [add(1, 2), add(2, 1)].into_iter().collect();
        assert_eq!(sums.len(), 1);
    }
}
"""

TS_EXISTING = """\
import { describe, expect, it } from "vitest";
import { add } from "./math";

describe("add", () => {
  it("adds", () => {
    expect(add(1, 2)).toBe(3);
  });
});
"""

TS_GENERATED = """\
import { describe, expect, it, vi } from "vitest";
import { add, sub } from "./math";
import type { Op } from "./types";

const ops: Op[] = [add, sub];

describe("sub", () => {
  it("subtracts", () => {
    expect(sub(2, 1)).toBe(1);
    expect(vi.isMockFunction(ops[0])).toBe(false);
  });
});
"""

TS_MERGED = """\
import { describe, expect, it, vi } from "vitest";
import { add, sub } from "./math";
import type { Op } from "./types";

describe("add", () => {
  it("adds", () => {
    expect(add(1, 2)).toBe(3);
  });
});

const ops: Op[] = [add, sub];

describe("sub", () => {
  it("subtracts", () => {
    expect(sub(2, 1)).toBe(1);
    expect(vi.isMockFunction(ops[0])).toBe(false);
  });
});
"""

MERGES = [
    pytest.param(PY_EXISTING, PY_GENERATED, "python", PY_MERGED, id="python-pytest"),
    pytest.param(JAVA_EXISTING, JAVA_GENERATED, "java", JAVA_MERGED, id="java-junit5-class"),
    pytest.param(GO_EXISTING, GO_GENERATED, "go", GO_MERGED, id="go-single-import"),
    pytest.param(
        RUST_SOURCE, RUST_GENERATED, "rust", RUST_SOURCE + "\n" + RUST_GENERATED, id="rust-new-mod"
    ),
    pytest.param(RUST_WITH_TESTS, RUST_BARE_FNS, "rust", RUST_MERGED, id="rust-existing-mod"),
    pytest.param(TS_EXISTING, TS_GENERATED, "typescript", TS_MERGED, id="ts-vitest"),
]


@pytest.mark.parametrize(("existing", "generated", "language_id", "expected"), MERGES)
def test_merge(existing: str, generated: str, language_id: str, expected: str) -> None:
    assert parses(language_id, existing)
    assert parses(language_id, generated)
    merged = tf.merge_tests(existing, generated, language_id)
    assert merged == expected
    assert parses(language_id, merged)


@pytest.mark.parametrize(
    ("generated", "expected"),
    [
        pytest.param("def test_a():\n    pass", "def test_a():\n    pass\n", id="adds-newline"),
        pytest.param("def test_a():\n    pass\n\n\n", "def test_a():\n    pass\n", id="trims"),
    ],
)
def test_merge_into_no_file(generated: str, expected: str) -> None:
    assert tf.merge_tests(None, generated, "python") == expected
    assert tf.merge_tests("  \n", generated, "python") == expected


MORE_MERGES = [
    pytest.param(
        "#!/usr/bin/env python\n# -*- coding: utf-8 -*-\ndef test_a():\n    pass\n",
        "import pytest\n\n\n@pytest.fixture\ndef test_a():\n    return 1\n\n\n"
        "def test_b(test_a):\n    assert test_a == 1\n",
        "python",
        [
            "# -*- coding: utf-8 -*-\n\nimport pytest\n\ndef test_a():",
            "def test_a_2():\n    return 1",
            "def test_b(test_a_2):\n    assert test_a_2 == 1",
        ],
        id="py-no-imports-shebang-and-fixture-rename",
    ),
    pytest.param(
        '"""Doc."""\ndef test_x():\n    pass\n',
        "from __future__ import annotations\nimport os\n\ndef test_y():\n    assert os.sep\n",
        "python",
        ['"""Doc."""\n\nfrom __future__ import annotations\n\nimport os\n\ndef test_x():'],
        id="py-future-after-docstring",
    ),
    pytest.param(
        "import unittest\n\n\nclass TestA(unittest.TestCase):\n    def test_a(self):\n"
        '        pass\n\n\nif __name__ == "__main__":\n    unittest.main()\n',
        "import unittest\n\nclass TestA(unittest.TestCase):\n    def test_b(self):\n"
        "        self.assertTrue(True)\n\nif __name__ == '__main__':\n    unittest.main()\n",
        "python",
        [
            "class TestA_2(unittest.TestCase):",
            '        self.assertTrue(True)\n\n\nif __name__ == "__main__":\n    unittest.main()\n',
        ],
        id="py-unittest-main-block-stays-last",
    ),
    pytest.param(
        "import pytest\n",
        "    import pytest\n\n    class TestShape:\n        def test_x(self):\n"
        "            assert pytest\n",
        "python",
        ["import pytest\n\n\nclass TestShape:\n    def test_x(self):\n"],
        id="py-indented-model-output",
    ),
    pytest.param(
        "package com.acme;\n\nimport org.junit.jupiter.api.Test;\n\nclass FooTest {\n"
        "    @Test\n    void a() {}\n}\n",
        "import static org.junit.jupiter.api.Assertions.assertTrue;\n\n@Test\nvoid b() {\n"
        "    assertTrue(new Foo().ok());\n}\n",
        "java",
        [
            "import org.junit.jupiter.api.Test;\n"
            "import static org.junit.jupiter.api.Assertions.assertTrue;\n",
            "    void a() {}\n\n    @Test\n    void b() {\n"
            "        assertTrue(new Foo().ok());\n    }\n}\n",
        ],
        id="java-bare-methods",
    ),
    pytest.param(
        "package com.acme;\n",
        "package com.acme;\n\nimport org.junit.jupiter.api.Test;\n\nclass FooTest {\n"
        "    @Test\n    void b() {}\n}\n",
        "java",
        ["package com.acme;\n\nimport org.junit.jupiter.api.Test;\n\nclass FooTest {\n"],
        id="java-existing-without-class",
    ),
    pytest.param(
        'package calc\n\nimport (\n\t"testing"\n)\n\nfunc TestA(t *testing.T) {}\n',
        'package calc\n\nimport (\n\t"strings"\n\tstr "strconv"\n\t"testing"\n)\n\n'
        "func TestB(t *testing.T) { _ = strings.ToUpper(str.Itoa(1)) }\n",
        "go",
        ['import (\n\t"testing"\n\t"strings"\n\tstr "strconv"\n)\n'],
        id="go-import-block",
    ),
    pytest.param(
        "package calc\n",
        'package calc\n\nimport "testing"\n\nfunc TestB(t *testing.T) {}\n',
        "go",
        ['package calc\n\nimport "testing"\n\nfunc TestB(t *testing.T) {}\n'],
        id="go-no-imports",
    ),
    pytest.param(
        "pub fn f() {}\n\n#[cfg(test)]\nmod tests;\n",
        "#[test]\nfn it_works() {\n    f();\n}\n",
        "rust",
        ["mod tests;\n\n#[cfg(test)]\nmod tests_2 {\n    use super::*;\n\n    #[test]\n"],
        id="rust-external-tests-module",
    ),
    pytest.param(
        'const { add } = require("./math");\n\ntest("add", () => expect(add(1, 1)).toBe(2));\n',
        'const { add, sub } = require("./math");\nconst assert = require("assert");\n\n'
        'test("sub", () => assert.equal(sub(1, 1), 0));\n',
        "javascript",
        ['const { add } = require("./math");\nconst { sub } = require("./math");\n'],
        id="js-require",
    ),
    pytest.param(
        '#include <gtest/gtest.h>\n#include "foo.h"\n\nTEST(Foo, A) { EXPECT_EQ(foo(), 1); }\n',
        '#include <gtest/gtest.h>\n#include <vector>\n#include "foo.h"\n\n'
        "TEST(Foo, B) { EXPECT_EQ(foo(), 2); }\n",
        "cpp",
        ['#include "foo.h"\n#include <vector>\n\nTEST(Foo, A)', "}\n\nTEST(Foo, B)"],
        id="cpp-includes",
    ),
]


@pytest.mark.parametrize(("existing", "generated", "language_id", "fragments"), MORE_MERGES)
def test_merge_fragments(
    existing: str, generated: str, language_id: str, fragments: list[str]
) -> None:
    merged = tf.merge_tests(existing, generated, language_id)
    for fragment in fragments:
        assert fragment in merged
    assert merged.endswith("\n") and not merged.endswith("\n\n")
    if parses(language_id, existing) and parses(language_id, generated):
        assert parses(language_id, merged)


def test_merge_keeps_crlf_line_endings() -> None:
    existing = "import pytest\r\n\r\n\r\ndef test_a():\r\n    pass\r\n"
    merged = tf.merge_tests(existing, "import os\n\n\ndef test_b():\n    assert os\n", "python")
    assert merged == (
        "import pytest\r\nimport os\r\n\r\n\r\ndef test_a():\r\n    pass\r\n\r\n\r\n"
        "def test_b():\r\n    assert os\r\n"
    )


def test_merge_drops_generated_tests_already_present() -> None:
    existing = "def test_a():\n    assert 1\n"
    assert tf.merge_tests(existing, "def test_a():\n    assert 1\n", "python") == existing


def test_merge_other_language_appends() -> None:
    merged = tf.merge_tests("local M = {}\n", "\nlocal t = require('t')\n", "lua")
    assert merged == "local M = {}\n\nlocal t = require('t')\n"


@pytest.mark.parametrize(("existing", "generated", "language_id", "expected"), MERGES)
def test_merging_the_same_tests_twice_adds_them_once(
    existing: str, generated: str, language_id: str, expected: str
) -> None:
    once = tf.merge_tests(existing, generated, language_id)
    assert tf.merge_tests(once, generated, language_id) == once


def test_merge_partial_type_import_keeps_type_keyword() -> None:
    existing = 'import { a } from "./m";\n\ntest("a", () => a);\n'
    generated = 'import type { T } from "./t";\nimport * as ns from "./n";\n\nlet x: T = ns.v;\n'
    merged = tf.merge_tests(existing, generated, "typescript")
    assert merged.startswith(
        'import { a } from "./m";\nimport type { T } from "./t";\nimport * as ns from "./n";\n\n'
    )
    assert parses("typescript", merged)


def test_merge_renames_references_to_a_renamed_helper() -> None:
    existing = "def make():\n    return 1\n\n\ndef test_a():\n    assert make() == 1\n"
    generated = "def make():\n    return 2\n\n\ndef test_b():\n    assert make() == 2\n"
    merged = tf.merge_tests(existing, generated, "python")
    assert "def make_2():\n    return 2" in merged
    assert "def test_b():\n    assert make_2() == 2\n" in merged
    assert "assert make() == 1" in merged
